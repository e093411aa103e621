"""What a sensor, a user or a crash sends must not take the node's memory, silence a camera or kill it: the real
node process, driven over a localhost ROS graph. Decompression bombs under a memory cap, LiDAR clouds with broken
layouts, a processing size that would wedge the model, a large frame with its camera info after it, parameters
typed the way ROS users type them (and mistyped), and every way of ending the process."""

import signal
import struct
import time
import zlib

import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from sensor_msgs.msg import CompressedImage, PointCloud2, PointField

from depthmaster_ros.messages.conversions import intrinsics_to_camera_info, make_header, stamp_to_ns
from depthmaster_ros.geometry.intrinsics import CameraIntrinsics

from node_process import NodeProcess, lifecycle, now_ns, sample_frame
from test_node import diagnostics_when, make_client, request

GIB = 2**30


def png_bomb(width: int, height: int) -> bytes:
    """A valid grayscale PNG of ``width`` x ``height`` zeros: a few hundred kB that decode to width x height x 3
    bytes (BGR)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" * (width + 1)  # filter byte + pixels
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def cloud(points: np.ndarray, point_step: int = 12, x_offset: int = 0, stamp_ns: int = 0) -> PointCloud2:
    msg = PointCloud2(header=make_header(stamp_ns, "lidar"), height=1, width=len(points), is_bigendian=False,
                      point_step=point_step, row_step=point_step * len(points), is_dense=True)
    msg.fields = [PointField(name="x", offset=x_offset, datatype=PointField.FLOAT32, count=1),
                  PointField(name="y", offset=4, datatype=PointField.FLOAT32, count=1),
                  PointField(name="z", offset=8, datatype=PointField.FLOAT32, count=1)]
    msg.data = np.ascontiguousarray(points, dtype=np.float32).tobytes()
    return msg


@pytest.fixture(scope="module")
def node(ros, tiny_checkpoint, tmp_path_factory):
    """Under a 3.5 GiB address-space cap (the node needs about 1.8 GiB of address space to run)."""
    log = tmp_path_factory.mktemp("hostile") / "node.log"
    process = NodeProcess("/hostile", log, memory_limit=int(3.5 * GIB), checkpoint=tiny_checkpoint,
                          processing_res=64, scale_mode="pointcloud", max_range=1000.0, scale_hold_s=60.0,
                          input_transport="compressed")
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture(scope="module")
def client(node):
    client = make_client(node)
    yield client
    client.destroy_node()


def test_a_decompression_bomb_is_refused_from_its_header(node, client):
    rgb, camera = sample_frame(64, 48)
    request(client, rgb, camera, compressed="png")
    before = node.peak_rss_mb()
    bomb = png_bomb(20000, 20000)  # 400 MP: 1.2 GB as BGR, from a ~0.4 MB file
    assert len(bomb) < 2_000_000
    client.compressed_pub.publish(CompressedImage(header=make_header(now_ns(client), "cam"), format="png",
                                                  data=bomb))
    diagnostics = diagnostics_when(client, lambda d: "max_image_pixels" in d.get("last_rejection", ""), 30.0)
    assert "20000x20000 = 400,000,000 pixels" in diagnostics["last_rejection"]
    request(client, rgb, camera, compressed="png")  # still serving
    assert node.alive() and node.peak_rss_mb() < before + 100, (before, node.peak_rss_mb())


def test_broken_lidar_clouds_cost_only_their_scan(node, client):
    """point_step 4 or 0, a field beyond point_step: the scan is rejected (logged, fresh on /diagnostics); the
    frame still gets every output it can (relative and coloured maps, and metric depth from the held fit)."""
    rgb, camera = sample_frame(64, 48)
    request(client, rgb, camera, ("depth/relative",), compressed="png")
    points = np.array([[x, 0.5 * y, 4.0 + x + y] for x in np.linspace(-1, 1, 20) for y in np.linspace(-1, 1, 20)])
    broken = [(dict(point_step=4), "point_step 4 does not hold its fields"),
              (dict(point_step=0), "point_step 0 does not hold its fields"),
              (dict(point_step=12, x_offset=12), "point_step 12 does not hold its fields")]
    for fields, reason in broken:
        stamp = now_ns(client)
        client.lidar_pub.publish(cloud(points, stamp_ns=stamp, **fields))
        client.spin_until(lambda: False, 0.3)
        client.publish_frame(rgb, camera, stamp, compressed="png")
        assert client.spin_until(lambda: any(stamp_to_ns(m.header.stamp) == stamp
                                             for m in client.received["depth/colored"]), 30.0)
        diagnostics = diagnostics_when(client, lambda d: reason in d.get("message", ""), 15.0)
        assert reason in diagnostics["last_metric_source_rejection"]
    assert "does not hold its fields" in node.log()  # logged, not only counted


def test_a_processing_size_that_would_wedge_the_model_is_refused_per_frame(node, client):
    rgb, camera = sample_frame(160, 120)
    assert client.set_node_parameters(processing_res=4096) == [(True, "")]
    try:
        client.publish_frame(rgb, camera, now_ns(client), compressed="png")
        diagnostics = diagnostics_when(client, lambda d: "max_processing_pixels" in d.get("last_rejection", ""),
                                       30.0)
        assert "runs at 4096x3072 = 12,582,912 pixels" in diagnostics["last_rejection"]
        assert "lower processing_res" in diagnostics["message"]
    finally:
        assert client.set_node_parameters(processing_res=64) == [(True, "")]
    thin = np.zeros((1, 400, 3), np.uint8)  # 400x1: resized to 0 rows at any processing size
    client.publish_frame(thin, None, now_ns(client), compressed="png")
    diagnostics = diagnostics_when(client, lambda d: "cannot be processed" in d.get("last_rejection", ""), 30.0)
    assert int(diagnostics["errors"]) == 0  # a rejection, not an error
    request(client, *sample_frame(64, 48), compressed="png")


def test_a_large_frame_with_its_camera_info_after_it_gets_metric_outputs(node, client):
    width, height = 2400, 1800
    camera = CameraIntrinsics.from_K(width, height, np.array([[1800.0, 0, 1199.5], [0, 1800.0, 899.5], [0, 0, 1]]))
    rgb = np.random.default_rng(2).integers(0, 256, (height, width, 3), dtype=np.uint8)
    assert client.set_node_parameters(scale_mode="fixed") == [(True, "")]
    try:
        for _ in range(2):
            stamp = now_ns(client)
            header = make_header(stamp, "cam")
            import cv2

            ok, jpeg = cv2.imencode(".jpg", rgb)
            client.compressed_pub.publish(CompressedImage(header=header, format="jpeg", data=jpeg.tobytes()))
            client.info_pub.publish(intrinsics_to_camera_info(camera, header))  # the driver's order: image first

            def served():
                return all(any(stamp_to_ns(m.header.stamp) == stamp for m in client.received[t])
                           for t in ("depth", "depth/camera_info"))

            assert client.spin_until(served, 120.0), client.latest_diagnostics()
    finally:
        client.set_node_parameters(scale_mode="pointcloud")


@pytest.fixture(scope="module")
def forgiving(ros, tiny_checkpoint, tmp_path_factory):
    """A node started the way ROS users type: an integer for a double on the command line and in YAML, a replaced
    name, a misspelled name. (Values that cannot be used, a double for an integer, a list of the wrong length, a
    NaN, fail configure: test_hostile_start.py.)"""
    folder = tmp_path_factory.mktemp("forgiving")
    params = folder / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    camera_height: 1\n    scale_mod: fixed\n    compile: false\n")
    process = NodeProcess("/forgiving", folder / "node.log", params_file=params, checkpoint=tiny_checkpoint,
                          scale=2, processing_res=64)
    yield process
    if process.alive():
        process.stop()


def test_parameters_as_ros_users_type_them(forgiving):
    client = make_client(forgiving, outputs=("depth/relative",))
    try:
        assert client.get_node_parameter("scale") == 2.0 and isinstance(client.get_node_parameter("scale"), float)
        assert client.get_node_parameter("camera_height") == 1.0
        assert "parameter 'compile' was replaced by 'backend'" in forgiving.log()
        problems = diagnostics_when(client, lambda d: "parameter_problems" in d)["parameter_problems"]
        for reason in ("unknown parameter 'scale_mod' ignored (did you mean scale_mode?)",):
            assert reason in problems and reason in forgiving.log()
        assert client.set_node_parameters(scale=3, camera_height=2) == [(True, ""), (True, "")]  # ints, live
        assert client.get_node_parameter("camera_height") == 2.0
        ok, why = client.set_node_parameters(scale=float("nan"))[0]
        assert not ok and "finite" in why
        request(client, *sample_frame(64, 48))  # and it serves
    finally:
        client.destroy_node()


def test_the_lifecycle_shutdown_ends_the_process(forgiving):
    from lifecycle_msgs.srv import ChangeState

    client = make_client(forgiving, outputs=("depth/relative",))
    try:
        assert lifecycle(client, "/forgiving/depthmaster") == "active"
        service = client.create_client(ChangeState, "/forgiving/depthmaster/change_state")
        assert service.wait_for_service(timeout_sec=20.0)
        future = service.call_async(ChangeState.Request(transition=Transition(
            id=Transition.TRANSITION_ACTIVE_SHUTDOWN)))
        assert client.spin_until(lambda: future.done() or not forgiving.alive(), 30.0)
    finally:
        client.destroy_node()
    deadline = time.monotonic() + 30
    while forgiving.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not forgiving.alive() and forgiving.process.returncode == 0, forgiving.log()
    assert "Traceback" not in forgiving.log()


@pytest.mark.parametrize("sig, after", [(signal.SIGTERM, "active"), (signal.SIGINT, "start-up")])
def test_signals_end_the_process_cleanly(ros, tiny_checkpoint, tmp_path, sig, after):
    process = NodeProcess("/signals", tmp_path / "node.log", checkpoint=tiny_checkpoint, processing_res=64)
    if after == "active":
        client = make_client(process, outputs=("depth/relative",))
        try:
            request(client, *sample_frame(64, 48))
        finally:
            client.destroy_node()
    else:
        time.sleep(0.5)  # importing torch and loading the model take longer than this
    assert process.stop(sig=sig) == 0
    log = process.log()
    assert "Traceback" not in log and "Failed to publish" not in log and "context is invalid" not in log, log
