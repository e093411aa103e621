"""The node where it still let things through, as a separate process on a localhost ROS graph: --help, params
files rcl cannot parse, invalid start-up values, a read-only value, a second node of the same name, a model
whose output is NaN, compressed data of another format than declared, a camera info of
another frame, a LiDAR cloud naming a field twice, and the latency with use_sim_time but no /clock.

The pure logic of these cases is in test/unit/test_hostile_values.py."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from sensor_msgs.msg import CompressedImage, PointCloud2, PointField

from depthmaster_ros.messages.conversions import intrinsics_to_camera_info, make_header, stamp_to_ns
from depthmaster_ros.parameters import specs
from depthmaster_ros.ros.client import DepthMasterClient

from node_process import NodeProcess, lifecycle, now_ns, sample_frame

BIN = Path(sys.executable).parent


def run_node(*args, timeout=120):
    """depthmaster-node as a command that must end by itself; a node that starts instead is a failure."""
    try:
        return subprocess.run([str(BIN / "depthmaster-node"), *map(str, args)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"depthmaster-node {' '.join(map(str, args))} did not end: {exc.stderr}") from exc


def wait_log(process: NodeProcess, text: str, timeout: float = 180.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in process.log():
            return process.log()
        if not process.alive():
            break
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the log:\n{process.log()}")


def status_of(client, node_name: str, condition, timeout: float = 30.0) -> dict:
    """The key/values (with 'message') of the newest /diagnostics status of ``node_name`` meeting ``condition``."""
    def latest():
        for array in reversed(client.received["/diagnostics"]):
            for status in array.status:
                if status.name == f"{node_name}: depth":
                    return {**{kv.key: kv.value for kv in status.values}, "message": status.message}
        return {}

    client.received["/diagnostics"].clear()
    assert client.spin_until(lambda: condition(latest()), timeout), latest()
    return latest()


# ------------------------------------------------------------------------------------ the command line


def test_help_prints_the_usage_and_starts_nothing():
    code = ("import sys; from depthmaster_ros.ros.run_node import main; code = main(['depthmaster-node', '--help']); "
            "assert 'torch' not in sys.modules and 'rclpy' not in sys.modules, 'heavy imports'; sys.exit(code)")
    try:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"--help started a node: {exc.stderr}") from exc
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("usage: depthmaster-node") and "Examples:" in text and "-r image:=" in text
    for topic in ("image", "image/compressed", "camera_info", "lidar_points", "depth", "points", "/diagnostics"):
        assert f"\n  {topic} " in text, topic
    for item in specs():
        assert f"    {item.name} = " in text, item.name
    assert "processing_res = 768  [0, 4096] (0 or at least 64)" in text
    short = run_node("-h", timeout=60)
    assert short.returncode == 0 and short.stdout == text


@pytest.mark.parametrize("content, expected", [
    ("/**:\n  ros__parameters:\n    scale_mode: fixed\n    scale: [0.5\n", "not valid YAML"),
    ("/**:\n  ros__parameters:\n    lidar_to_camera: [0.1, 0, 0, 0, 0, 0, 1]\n",
     "line 3: lidar_to_camera mixes decimal and integer values in one list"),
    ("/**:\n  scale_mode: fixed\n", "line 2: 'scale_mode' must be a node name holding 'ros__parameters:'"),
    (None, "cannot read params file"),
])
def test_a_params_file_ros_cannot_read_stops_the_node_with_one_line(tmp_path, content, expected):
    path = tmp_path / "params.yaml"
    if content is not None:
        path.write_text(content)
    result = run_node("--ros-args", "--params-file", path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    line, = result.stderr.strip().splitlines()
    assert line.startswith(f"depthmaster-node: ") and str(path) in line and expected in line, line


def test_an_invalid_read_only_value_stops_the_node(tmp_path):
    result = run_node("--ros-args", "-r", "__ns:=/readonly", "-p", "input_transport:=mjpeg")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "input_transport must be one of raw, compressed; got 'mjpeg' (input_transport is read-only: restart " \
           "with a valid value)" in result.stderr


# ------------------------------------------------------------------------------------ invalid start-up values


def test_an_invalid_start_up_value_fails_configure_with_the_reason(ros, tiny_checkpoint, tmp_path):
    """-p scale_mode:=lidar must not start a robot in scale_mode none; fixing the values live and configuring
    again serves; a live change keeps refusing with the old value kept."""
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    processing_res: 512.0\n    shift: .nan\n")
    process = NodeProcess("/refused", tmp_path / "node.log", params_file=params, checkpoint=tiny_checkpoint,
                          scale_mode="lidar", lidar_to_camera="[1,2,3]", min_range=500.0)
    client = DepthMasterClient(namespace="/refused")
    try:
        log = wait_log(process, "autostart failed")
        reasons = ("scale_mode must be one of none, fixed, sparse_depth, pointcloud, ground_plane; got 'lidar'",
                   "processing_res must be an integer, got float 512.0; write 512",
                   "shift must be a finite number, got nan", "lidar_to_camera must have 7 values, got 3",
                   "max_range (100.0) must be greater than min_range (500.0)")
        assert "keeping the default" not in log
        configure_failure = next(line for line in log.splitlines() if "configure failed:" in line)
        for reason in reasons:
            assert reason in configure_failure, reason
        assert lifecycle(client, "/refused/depthmaster") == "unconfigured"
        status = status_of(client, "depthmaster", lambda d: "configure failed" in d.get("message", ""))
        assert all(reason in status["message"] for reason in reasons) and status["lifecycle_state"] == "unconfigured"

        assert client.set_node_parameters(scale_mode="fixed", processing_res=64, shift=0.15, min_range=0.1,
                                          lidar_to_camera=[0.0] * 6 + [1.0]) == [(True, "")] * 5
        assert lifecycle(client, "/refused/depthmaster", Transition.TRANSITION_CONFIGURE) == "inactive"
        assert lifecycle(client, "/refused/depthmaster", Transition.TRANSITION_ACTIVATE) == "active"
        ok, why = client.set_node_parameters(scale_mode="lidar")[0]
        assert not ok and "scale_mode must be one of" in why and client.get_node_parameter("scale_mode") == "fixed"
        assert client.wait_for_node(60)
        from test_node import request

        _, messages = request(client, *sample_frame(64, 48), ("depth",))
        assert "depth" in messages  # scale_mode fixed, as asked
    finally:
        client.destroy_node()
        process.stop()


# ------------------------------------------------------------------------------------ a second node of one name


@pytest.fixture(scope="module")
def twin(ros, tiny_checkpoint, tmp_path_factory):
    process = NodeProcess("/twin", tmp_path_factory.mktemp("twin") / "first.log", checkpoint=tiny_checkpoint,
                          processing_res=64)
    client = DepthMasterClient(namespace="/twin")
    assert client.wait_for_node(180), process.log()
    client.destroy_node()
    yield process
    process.stop()


def test_a_second_node_of_the_same_name_is_refused_or_warned(twin, tiny_checkpoint, tmp_path):
    second = run_node("--ros-args", "-r", "__ns:=/twin", "-p", f"checkpoint:={tiny_checkpoint}", timeout=180)
    assert second.returncode == 2, second.stderr
    assert "a node named /twin/depthmaster is already running on this ROS graph" in second.stderr
    assert twin.alive() and "Traceback" not in second.stderr

    warned = NodeProcess("/twin", tmp_path / "warned.log", checkpoint=tiny_checkpoint, processing_res=64,
                         duplicate_name="warn")
    client = DepthMasterClient(namespace="/twin")
    try:
        wait_log(warned, "is already running")
        wait_log(warned, "loaded")
        assert warned.alive()

        def warning_on_diagnostics():
            return any("is already running" in status.message for array in client.received["/diagnostics"]
                       for status in array.status)

        assert client.spin_until(warning_on_diagnostics, 30.0)
    finally:
        client.destroy_node()
        assert warned.stop() == 0


# ------------------------------------------------------------------------------------ a model that gives NaN


def nan_checkpoint(tiny_checkpoint, folder: Path) -> Path:
    """The tiny checkpoint with its VAE decoder's output bias NaN: every pixel of the output is NaN."""
    from safetensors.torch import load_file, save_file

    copy = folder / "nan_checkpoint"
    shutil.copytree(tiny_checkpoint, copy)
    weights = copy / "vae" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(weights)
    tensors["decoder.conv_out.bias"][:] = float("nan")
    save_file(tensors, weights)
    return copy


def test_a_model_output_of_nan_is_refused_never_published_as_free_space(ros, tiny_checkpoint, tmp_path):
    process = NodeProcess("/nan", tmp_path / "node.log", checkpoint=nan_checkpoint(tiny_checkpoint, tmp_path),
                          processing_res=64, scale_mode="fixed", max_range=1e6)
    client = DepthMasterClient(namespace="/nan")
    try:
        assert client.wait_for_node(180), process.log()
        rgb, camera = sample_frame(64, 48)

        def refused():
            client.publish_frame(rgb, camera, now_ns(client))
            return "of the model's output is not finite" in client.latest_diagnostics().get("last_error", "")

        assert client.spin_until(refused, 120.0), client.latest_diagnostics()
        diagnostics = client.latest_diagnostics()
        assert "100.0% of the model's output is not finite (NaN/Inf): the frame is refused" in \
            diagnostics["last_error"]
        assert not client.received["depth"] and not client.received["points"]  # nothing, never +Inf
        assert "of the model's output is not finite" in process.log()
    finally:
        client.destroy_node()
        assert process.stop() == 0


# ------------------------------------------------------------------------------------ boundaries while serving


@pytest.fixture(scope="module")
def boundary(ros, tiny_checkpoint, tmp_path_factory):
    process = NodeProcess("/boundary", tmp_path_factory.mktemp("boundary") / "node.log", checkpoint=tiny_checkpoint,
                          processing_res=64, scale_mode="pointcloud", scale_hold_s=60.0, max_range=1000.0,
                          input_transport="compressed")
    client = DepthMasterClient(namespace="/boundary")
    assert client.wait_for_node(180), process.log()
    yield process, client
    client.destroy_node()
    assert process.stop() == 0, process.log()


def test_compressed_data_of_another_format_is_rejected(boundary):
    process, client = boundary
    rgb, _ = sample_frame(64, 48)
    jpeg = cv2.imencode(".jpg", rgb)[1].tobytes()
    bmp = cv2.imencode(".bmp", rgb)[1].tobytes()
    for data, found in ((jpeg, "JPEG"), (bmp, "BMP")):
        reason = f"says png but its data is {found}"
        # sent again if need be: the node re-creates its input subscription to match the publisher's QoS once it
        # sees the publisher, and a message published meanwhile is lost (seen under load: no rejection, no error)
        for attempt in range(6):
            client.compressed_pub.publish(CompressedImage(header=make_header(now_ns(client), "cam"), format="png",
                                                          data=data))
            try:
                status = status_of(client, "depthmaster", lambda d: reason in d.get("last_rejection", ""), 10.0)
                break
            except AssertionError:
                if attempt == 5:
                    raise
        assert int(status["errors"]) == 0
    assert not client.received["depth/relative"]  # nothing was decoded as if valid


def test_a_camera_info_of_another_frame_is_rejected_with_both_frames(boundary):
    process, client = boundary
    assert client.set_node_parameters(scale_mode="fixed") == [(True, "")]
    try:
        rgb, camera = sample_frame(64, 48)
        stamp = now_ns(client)
        client.info_pub.publish(intrinsics_to_camera_info(camera, make_header(stamp, "depth_optical_frame")))
        client.publish_frame(rgb, None, stamp, frame_id="color_optical_frame", compressed="png")
        assert client.spin_until(lambda: any(stamp_to_ns(m.header.stamp) == stamp
                                             for m in client.received["depth/relative"]), 120.0)
        status = status_of(client, "depthmaster", lambda d: "frame_id" in d.get("last_camera_info_rejection", ""))
        assert "camera_info frame_id 'depth_optical_frame' is not the image's 'color_optical_frame'" in \
            status["last_camera_info_rejection"]
        assert not any(stamp_to_ns(m.header.stamp) == stamp for m in client.received["depth"])
        assert "is not the image's 'color_optical_frame'" in process.log()
    finally:
        assert client.set_node_parameters(scale_mode="pointcloud") == [(True, "")]


def test_a_cloud_naming_a_field_twice_is_rejected(boundary):
    process, client = boundary
    points = np.array([[0.1 * i, 0.0, 4.0, 9.0] for i in range(10)], np.float32)
    msg = PointCloud2(header=make_header(now_ns(client), "lidar"), height=1, width=len(points), point_step=16,
                      row_step=16 * len(points), is_dense=True, data=points.tobytes())
    msg.fields = [PointField(name=name, offset=offset, datatype=PointField.FLOAT32, count=1)
                  for name, offset in (("x", 0), ("y", 4), ("z", 8), ("z", 12))]
    rgb, camera = sample_frame(64, 48)
    reason = "point cloud lists the field(s) 'z' more than once"

    def rejected():
        msg.header = make_header(now_ns(client), "lidar")
        client.lidar_pub.publish(msg)
        client.publish_frame(rgb, camera, now_ns(client), compressed="png")
        return reason in client.latest_diagnostics().get("last_metric_source_rejection", "")

    assert client.spin_until(rejected, 120.0), client.latest_diagnostics()
    assert reason in process.log()


def test_the_latency_with_use_sim_time_and_no_clock_is_unknown(boundary):
    process, client = boundary
    assert client.set_node_parameters(use_sim_time=True) == [(True, "")]
    try:
        rgb, camera = sample_frame(64, 48)
        stamp = now_ns(client)
        client.publish_frame(rgb, camera, stamp, compressed="png")
        assert client.spin_until(lambda: any(stamp_to_ns(m.header.stamp) == stamp
                                             for m in client.received["depth/relative"]), 120.0)
        # once the latency window (5 s) has forgotten the frames served on the wall clock
        status = status_of(client, "depthmaster", lambda d: "latency" in d and d["processed"] != "0"
                           and d["latency_p50_ms"] == "nan", 60.0)
        assert status["latency_p95_ms"] == "nan"  # not -1.8e12 ms
        assert "no /clock message has arrived" in status["latency"]
    finally:
        assert client.set_node_parameters(use_sim_time=False) == [(True, "")]
