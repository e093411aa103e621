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
