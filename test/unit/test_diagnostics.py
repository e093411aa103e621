import math

from depthmaster_ros.ros.diagnostics import FrameStats, diagnostic_array, diagnostic_status


def test_counts_percentiles_and_recent_problems():
    stats = FrameStats(window=5.0)
    assert math.isnan(stats.snapshot()["latency_p50_ms"]) and stats.snapshot()["recent_problems"] == []
    for latency in [0.010, 0.020, 0.030, 0.040, 0.100]:
        stats.received()
        stats.published(latency)
    stats.problem("image", "bad encoding")
    snap = stats.snapshot()
    assert snap["received"] == 5 and snap["processed"] == 5 and snap["rejected"] == 1
    assert snap["latency_p50_ms"] == 30.0 and abs(snap["latency_p95_ms"] - 88.0) < 1e-9
    assert snap["input_rate_hz"] == 1.0 and snap["last_rejection"] == "bad encoding"
    assert snap["recent_problems"] == ["bad encoding"]


def test_message():
    from builtin_interfaces.msg import Time
    from diagnostic_msgs.msg import DiagnosticStatus

    statuses = [diagnostic_status("n: depth", "cpu", DiagnosticStatus.WARN, "m", {"a": 1.234, "b": "x"}),
                diagnostic_status("n: depth rear", "cpu", DiagnosticStatus.OK, "ok", {})]
    array = diagnostic_array(Time(sec=3), statuses)
    assert [s.name for s in array.status] == ["n: depth", "n: depth rear"]
    status = array.status[0]
    assert status.level == DiagnosticStatus.WARN and status.name == "n: depth" and array.header.stamp.sec == 3
    assert [(kv.key, kv.value) for kv in status.values] == [("a", "1.23"), ("b", "x")]


def test_drops_are_counted_apart_from_rejections():
    stats = FrameStats(window=5.0)
    for _ in range(10):
        stats.received()
    for _ in range(6):
        stats.dropped()
    stats.problem("image", "image is 7000x7000 = 49,000,000 pixels, more than max_image_pixels 1,000,000")
    snap = stats.snapshot()
    assert snap["frames_dropped"] == 6 and snap["rejected"] == 1 and snap["processed"] == 0
    assert snap["dropped_rate_hz"] == 6 / 5.0 and snap["input_rate_hz"] == 10 / 5.0
    assert stats.last_received is not None


def states():
    from depthmaster_ros.ros.diagnostics import CameraFacts, NodeSummary

    return NodeSummary("active", "ckpt"), CameraFacts(), {"input_rate_hz": 10.0, "output_rate_hz": 2.0,
                                                           "dropped_rate_hz": 0.0}


def test_each_state_is_named_and_the_first_that_holds_wins():
    from depthmaster_ros.ros.diagnostics import ERROR, OK, WARN, camera_state

    summary, facts, stats = states()
    assert camera_state(summary, facts, stats, []) == (OK, "serving")
    stats["dropped_rate_hz"] = 8.0
    assert camera_state(summary, facts, stats, []) == (
        OK, "serving 2.0 of 10.0 frames/s; 8.0/s dropped while the model was busy (newest frame wins)")
    facts.metric_missing = "no camera_info received yet"
    assert camera_state(summary, facts, stats, []) == (WARN, "no camera_info received yet")
    facts.idle = True
    assert camera_state(summary, facts, stats, []) == (OK, "idle: no subscriber to any output")
    summary.parameter_problems = ["scale must be finite"]
    assert camera_state(summary, facts, stats, [])[1] == "parameters refused at start-up: scale must be finite"
    assert camera_state(summary, facts, stats, ["image rejected: too big"]) == (WARN, "image rejected: too big")
    facts.no_input = "no publisher on /cam/image (sensor_msgs/msg/Image) for 6 s; no topic of that type exists"
    assert camera_state(summary, facts, stats, ["image rejected: too big"]) == (WARN, facts.no_input)
    facts.busy_for, facts.busy_detail = 4.9, "640x480 at processing_res 2048 on cpu"
    assert camera_state(summary, facts, stats, [])[1] == facts.no_input  # a pass shorter than SLOW_PASS_S
    facts.busy_for = 42.4
    assert camera_state(summary, facts, stats, []) == (
        OK, "processing one frame for 42 s (640x480 at processing_res 2048 on cpu)")
    summary.lifecycle_state = "inactive"
    assert camera_state(summary, facts, stats, []) == (WARN, "node is inactive, not serving")
    facts.configuring_for = 12.2
    assert camera_state(summary, facts, stats, []) == (WARN, "configuring: loading the model for 12 s")
    summary.problem = "configure failed: out of memory"
    assert camera_state(summary, facts, stats, []) == (ERROR, "configure failed: out of memory")


def test_silence_is_explained_by_what_the_graph_shows():
    from depthmaster_ros.ros.input_subscription import input_silence

    image = "sensor_msgs/msg/Image"
    assert input_silence("/cam/image", image, [], ["/camera/image_raw"], {}, 4.0, 5.0) == ""  # too early to say
    assert input_silence("/cam/imag_raw", image, [], ["/cam/imag_raw", "/camera/image_raw"], {}, 9.6, 5.0) == (
        "no publisher on /cam/imag_raw (sensor_msgs/msg/Image) for 10 s; topics of that type: /camera/image_raw "
        "(remap the input, e.g. -r image:=/camera/image_raw)")
    assert input_silence("/cam/image", image, [], [], {}, 6.0, 5.0) == (
        "no publisher on /cam/image (sensor_msgs/msg/Image) for 6 s; no topic of that type exists")
    wrong_type = input_silence("/cam/image", image, ["sensor_msgs/msg/CompressedImage"], [], {}, 6.0, 5.0)
    assert wrong_type.startswith("/cam/image is published as sensor_msgs/msg/CompressedImage, but the node "
                                 "subscribes sensor_msgs/msg/Image")
    # a publisher that never delivered: the QoS advice only where it applies (a best-effort subscription)
    assert input_silence("/cam/image", image, [image], [], {}, 6.0, 5.0, hint="make it reliable") == (
        "1 publisher(s) on /cam/image but no image for 6 s; make it reliable")
    assert input_silence("/cam/image", image, [image], [], {}, 6.0, 5.0) == (
        "1 publisher(s) on /cam/image but no image for 6 s")
    # images came and went: say what became of them, not a QoS hint
    counts = {"received": 200, "processed": 44, "frames_dropped": 150, "rejected": 6}
    assert input_silence("/cam/image", image, [image], [], counts, 12.0, 5.0) == (
        "1 publisher(s) on /cam/image but no image for 12 s: the camera stopped publishing (200 received before: "
        "44 processed, 150 dropped while busy, 6 rejected)")
