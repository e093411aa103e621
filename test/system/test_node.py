"""The depthmaster node as a separate process, driven from this process over a real (localhost) ROS graph."""

import time
from pathlib import Path

import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from sensor_msgs.msg import CompressedImage, Image

from depthmaster_ros.colormap import colorize
from depthmaster_ros.geometry.pointcloud import unpack_rgb
from depthmaster_ros.messages.conversions import make_header
from depthmaster_ros.ros.client import DepthMasterClient
from depthmaster_ros.messages.conversions import cloud_to_points, intrinsics_to_camera_info, stamp_to_ns

from node_process import NodeProcess, image_array, lifecycle, lifecycle_when, now_ns, sample_frame

SCALE, SHIFT, MIN_RANGE, MAX_RANGE = 0.6, 0.15, 3.0, 10.0
CONFIG = Path(__file__).resolve().parents[2] / "config" / "depthmaster.yaml"


def start_node(tmp_path_factory, namespace, **params):
    log = tmp_path_factory.mktemp("node") / f"{namespace.strip('/')}.log"
    return NodeProcess(namespace, log, **{"processing_res": 64, **params})


@pytest.fixture(scope="module")
def node(ros, tiny_checkpoint, tmp_path_factory):
    process = start_node(tmp_path_factory, "/serve", checkpoint=tiny_checkpoint, scale_mode="fixed", scale=SCALE,
                         shift=SHIFT, min_range=MIN_RANGE, max_range=MAX_RANGE, cloud_stride=2)
    yield process
    assert process.stop() == 0, process.log()  # clean shutdown on SIGINT


def make_client(node, **kwargs):
    client = DepthMasterClient(namespace=node.namespace, **kwargs)
    assert client.wait_for_node(60), node.log()
    return client


@pytest.fixture
def client(node):
    client = make_client(node)
    yield client
    client.destroy_node()


def request(client, rgb, camera, topics=("depth/relative",), timeout=180.0, **publish_args):
    """Publish a frame with a fresh stamp every 3 s until the node answers one of them on every topic in
    ``topics`` (the node keeps the newest frame: on a busy machine it answers an earlier one than the last sent);
    returns that stamp and {topic: message with that stamp} for all topics received."""
    deadline = time.monotonic() + timeout
    sent = []

    def answered():
        for stamp in sent:
            if all(any(stamp_to_ns(m.header.stamp) == stamp for m in client.received[t]) for t in topics):
                return stamp
        return None

    while time.monotonic() < deadline:
        sent.append(now_ns(client))
        client.publish_frame(rgb, camera, sent[-1], **publish_args)
        if client.spin_until(lambda: answered() is not None, 3.0):
            stamp = answered()
            client.spin_until(lambda: False, 0.3)  # let the other outputs of this frame arrive
            return stamp, {t: m for t, ms in client.received.items() for m in ms
                           if hasattr(m, "header") and stamp_to_ns(m.header.stamp) == stamp}
    raise AssertionError(f"no answer on {topics} within {timeout} s")


def diagnostics_when(client, condition, timeout=15.0):
    client.received["/diagnostics"].clear()
    assert client.spin_until(lambda: condition(client.latest_diagnostics()), timeout), client.latest_diagnostics()
    return client.latest_diagnostics()


def expected_depth(relative, scale=SCALE, shift=SHIFT):
    a = np.maximum(scale * relative.astype(np.float64) + shift, 0.0)
    depth = 1.0 / np.maximum(a * a, 1e-6)
    depth[depth < MIN_RANGE] = -np.inf
    depth[depth > MAX_RANGE] = np.inf
    return depth


def test_outputs_follow_ros_conventions(client):
    rgb, camera = sample_frame(64, 48)
    stamp, msgs = request(client, rgb, camera, ("depth", "points", "depth/colored"), frame_id="cam_optical",
                          encoding="bgr8")
    assert set(msgs) == {"depth", "depth/camera_info", "depth/relative", "depth/colored", "points"}
    for msg in msgs.values():
        assert stamp_to_ns(msg.header.stamp) == stamp and msg.header.frame_id == "cam_optical"

    info = msgs["depth/camera_info"]
    assert (info.width, info.height) == (64, 48)
    assert np.allclose(np.reshape(info.k, (3, 3)), camera.K) and np.allclose(np.reshape(info.p, (3, 4)), camera.P)

    relative = image_array(msgs["depth/relative"])
    assert msgs["depth/relative"].encoding == "32FC1" and relative.shape == (48, 64)
    assert 0.0 <= relative.min() and relative.max() <= 1.0 and relative.std() > 1e-3

    colored = msgs["depth/colored"]
    assert colored.encoding == "bgr8"
    assert np.array_equal(image_array(colored), colorize(relative, "turbo")[..., ::-1])

    depth = image_array(msgs["depth"])
    assert msgs["depth"].encoding == "32FC1" and depth.shape == (48, 64)
    expected = expected_depth(relative)
    assert np.isneginf(depth).any() and np.isposinf(depth).any() and np.isfinite(depth).any()  # all REP 117 codes
    assert np.array_equal(np.isneginf(depth), np.isneginf(expected))
    assert np.array_equal(np.isposinf(depth), np.isposinf(expected))
    finite = np.isfinite(expected)
    assert np.allclose(depth[finite], expected[finite], rtol=1e-5)

    cloud_msg = msgs["points"]
    assert not cloud_msg.is_dense and [f.name for f in cloud_msg.fields] == ["x", "y", "z", "rgb"]
    cloud = cloud_to_points(cloud_msg)
    assert cloud.shape == (24, 32)  # cloud_stride 2
    v, u = np.mgrid[0:48:2, 0:64:2]
    z = depth[v, u]
    fx, cx, fy, cy = info.p[0], info.p[2], info.p[5], info.p[6]
    ok = np.isfinite(z)
    assert np.isnan(cloud["z"][~ok]).all() and np.isnan(cloud["x"][~ok]).all()
    assert np.allclose(cloud["z"][ok], z[ok])
    assert np.allclose(cloud["x"][ok], ((u - cx) * z / fx)[ok], rtol=1e-5, atol=1e-6)
    assert np.allclose(cloud["y"][ok], ((v - cy) * z / fy)[ok], rtol=1e-5, atol=1e-6)
    assert np.array_equal(unpack_rgb(cloud["rgb"]), rgb[v, u])  # bgr8 input came back as the true colours


def test_outputs_go_through_a_32_mb_shared_memory_segment(node, client):
    """The node starts Fast DDS with the package's profile (ros/middleware_profile.py): the shared-memory segment
    its outputs go through is 32 MB (Fast DDS's default is 0.5 MB: a 4.9 MB cloud then goes a piece at a time)."""
    assert "Fast DDS profile" in node.log() and "fastdds_large_data.xml" in node.log()
    sizes = []
    for line in Path(f"/proc/{node.process.pid}/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[5].startswith("/dev/shm/fastdds_") and not fields[5].endswith("_el"):
            start, end = (int(value, 16) for value in fields[0].split("-"))
            sizes.append(end - start)
    assert sizes and max(sizes) >= 32 * 2**20, sizes


def test_output_scale_rescales_camera_info(client, node):
    assert client.set_node_parameters(output_scale=0.5) == [(True, "")]
    try:
        rgb, camera = sample_frame(64, 48)
        _, msgs = request(client, rgb, camera, ("depth", "depth/camera_info"))
        info = msgs["depth/camera_info"]
        assert (info.width, info.height) == (32, 24) and image_array(msgs["depth"]).shape == (24, 32)
        k = np.reshape(info.k, (3, 3))
        assert np.allclose([k[0, 0], k[0, 2], k[1, 1], k[1, 2]],
                           [camera.K[0, 0] / 2, camera.K[0, 2] / 2, camera.K[1, 1] / 2, camera.K[1, 2] / 2])
        assert np.allclose(info.p[0], camera.P[0, 0] / 2) and np.allclose(info.p[6], camera.P[1, 2] / 2)
    finally:
        client.set_node_parameters(output_scale=1.0)


def test_live_parameter_change_and_rejection(client, node):
    rgb, camera = sample_frame(64, 48)
    assert client.set_node_parameters(scale=0.9) == [(True, "")]
    try:
        _, msgs = request(client, rgb, camera, ("depth",))
        expected = expected_depth(image_array(msgs["depth/relative"]), scale=0.9)
        depth = image_array(msgs["depth"])
        assert np.array_equal(np.isfinite(depth), np.isfinite(expected))
        assert np.allclose(depth[np.isfinite(depth)], expected[np.isfinite(expected)], rtol=1e-5)
    finally:
        client.set_node_parameters(scale=SCALE)

    for change, reason in [({"max_range": 1.0}, "max_range (1.0) must be greater than min_range"),
                           ({"scale_mode": "bogus"}, "scale_mode must be one of none, fixed"),
                           ({"colormap": "nope"}, "unknown colormap 'nope'"),
                           ({"cloud_stride": 0}, "cloud_stride"),
                           ({"checkpoint": "/elsewhere"}, "change it while the node is unconfigured"),
                           ({"input_depth": 3}, "read-only"),
                           ({"scale": float("nan")}, "scale must be a finite number, got nan"),
                           ({"max_range": float("inf")}, "max_range must be a finite number"),
                           ({"ground_region": [0.0, 0.9, 1.0, 0.5]}, "ground_region: [0.0, 0.9, 1.0, 0.5] is not"),
                           ({"lidar_to_camera": [0.0] * 7}, "quaternion [qx, qy, qz, qw] = [0.0, 0.0, 0.0, 0.0]"),
                           ({"processing_res": 512.0}, "processing_res must be an integer, got float 512.0; "
                                                       "write 512")]:
        (name, value), = change.items()
        before = client.get_node_parameter(name)
        successful, why = client.set_node_parameters(**change)[0]
        assert not successful and reason in why, why
        assert client.get_node_parameter(name) == before


def test_without_camera_info_relative_flows_and_metric_waits(client):
    rgb, camera = sample_frame(64, 48)
    request(client, rgb, camera, ("depth",))  # a good frame first
    stamp, msgs = request(client, rgb, None, ("depth/relative",))
    assert "depth" not in msgs and "points" not in msgs and "depth/camera_info" not in msgs
    diagnostics = diagnostics_when(client, lambda d: "camera_info" in d.get("metric_state", ""))
    assert "no camera_info within camera_info_tolerance" in diagnostics["metric_state"]
    assert diagnostics["level"] == "1"  # WARN: metric outputs waiting


def bad_image(header, **fields):
    msg = Image(header=header, height=48, width=64, encoding="rgb8", step=192, data=bytes(64 * 48 * 3))
    for key, value in fields.items():
        setattr(msg, key, value)
    return msg


def test_bad_inputs_are_rejected_and_the_next_frame_is_served(client):
    rgb, camera = sample_frame(64, 48)
    bad_images = [
        ({"encoding": "yuv422"}, "image encoding 'yuv422' is not supported"),
        ({"encoding": "16UC1", "step": 128, "data": bytes(64 * 48 * 2)}, "depth/single-channel"),
        ({"width": 0, "step": 0, "data": b""}, "image is 0x48"),
        ({"data": bytes(100)}, "image data has 100 bytes; expected step x height = 9216"),
        ({"step": 10}, "step 10 is smaller than width x bytes per pixel = 192"),
    ]
    rejected = int(diagnostics_when(client, lambda d: "rejected" in d)["rejected"])
    for fields, reason in bad_images:
        client.image_pub.publish(bad_image(make_header(now_ns(client), "cam"), **fields))
        rejected += 1
        diagnostics = diagnostics_when(client, lambda d: int(d.get("rejected", 0)) >= rejected)
        assert reason in diagnostics["last_rejection"], diagnostics
        request(client, rgb, camera, ("depth",))  # the node still serves

    bad_infos = [
        (camera.__class__.from_K(64, 48, np.zeros((3, 3))), "K is all zeros"),
        (camera.scaled(32, 24), "camera_info is 32x24 but the image is 64x48"),
    ]
    for bad_camera, reason in bad_infos:
        stamp = now_ns(client) + 10_000_000_000  # far from every earlier camera_info
        header = make_header(stamp, "cam")
        client.info_pub.publish(intrinsics_to_camera_info(bad_camera, header))
        client.spin_until(lambda: False, 0.2)
        client.image_pub.publish(bad_image(header, data=np.ascontiguousarray(rgb).tobytes()))
        diagnostics = diagnostics_when(client, lambda d: reason in d.get("last_camera_info_rejection", ""))
        assert int(diagnostics["camera_info_rejected"]) >= 1
        client.spin_until(lambda: any(stamp_to_ns(m.header.stamp) == stamp for m in client.received["depth/relative"]),
                          10.0)
        assert not any(stamp_to_ns(m.header.stamp) == stamp for m in client.received["depth"])
        request(client, rgb, camera, ("depth",))


def test_newest_frame_wins(client, node):
    assert client.set_node_parameters(processing_res=384) == [(True, "")]  # slow the model down
    try:
        rgb, camera = sample_frame(64, 48)
        request(client, rgb, camera, ("depth/relative",))
        dropped_before = int(diagnostics_when(client, lambda d: "frames_dropped" in d)["frames_dropped"])
        client.clear()
        stamps = []
        for _ in range(8):
            stamps.append(now_ns(client))
            client.publish_frame(rgb, camera, stamps[-1])
            client.spin_until(lambda: False, 0.02)
        served = lambda: {stamp_to_ns(m.header.stamp) for m in client.received["depth/relative"]}  # noqa: E731
        assert client.spin_until(lambda: stamps[-1] in served(), 60.0)
        assert len(served()) < len(stamps)
        diagnostics = diagnostics_when(client, lambda d: int(d.get("frames_dropped", 0)) > dropped_before)
        assert int(diagnostics["frames_dropped"]) - dropped_before >= len(stamps) - len(served()) - 1
    finally:
        client.set_node_parameters(processing_res=64)


def test_no_inference_without_subscribers(node):
    client = make_client(node, outputs=())
    try:
        before = diagnostics_when(client, lambda d: "processed" in d)
        rgb, camera = sample_frame(64, 48)
        for _ in range(3):
            client.publish_frame(rgb, camera, now_ns(client))
            client.spin_until(lambda: False, 0.1)
        after = diagnostics_when(client, lambda d: int(d.get("received", 0)) >= int(before["received"]) + 3)
        assert after["processed"] == before["processed"]
    finally:
        client.destroy_node()


@pytest.fixture(scope="module")
def lifecycle_node(ros, tiny_checkpoint, tmp_path_factory):
    """Configured from a copy of config/depthmaster.yaml (its '/**' block must reach a namespaced node)."""
    params = tmp_path_factory.mktemp("params") / "params.yaml"
    params.write_text(CONFIG.read_text().replace('colormap: "turbo"', 'colormap: "viridis"'))
    process = start_node(tmp_path_factory, "/life", params_file=params, checkpoint=tiny_checkpoint)
    yield process
    assert process.stop() == 0, process.log()


def test_lifecycle_transitions(lifecycle_node):
    client = make_client(lifecycle_node, outputs=("depth/relative",))
    target = f"{lifecycle_node.namespace}/depthmaster"
    rgb, camera = sample_frame(64, 48)
    try:
        assert lifecycle_when(client, target, "active") == "active"  # autostart (its services answer meanwhile)
        assert client.get_node_parameter("colormap") == "viridis"  # from the params file
        request(client, rgb, camera)
        assert lifecycle(client, target, Transition.TRANSITION_DEACTIVATE) == "inactive"
        client.clear()
        client.publish_frame(rgb, camera, now_ns(client))
        assert not client.spin_until(lambda: client.received["depth/relative"], 2.0)
        assert lifecycle(client, target, Transition.TRANSITION_ACTIVATE) == "active"
        request(client, rgb, camera)
        for transition, state in [(Transition.TRANSITION_DEACTIVATE, "inactive"),
                                  (Transition.TRANSITION_CLEANUP, "unconfigured"),
                                  (Transition.TRANSITION_CONFIGURE, "inactive"),
                                  (Transition.TRANSITION_ACTIVATE, "active")]:
            assert lifecycle(client, target, transition) == state
        request(client, rgb, camera)
    finally:
        client.destroy_node()


def test_bad_checkpoint_fails_configure_with_reason_and_is_fixed_without_restart(ros, tiny_checkpoint, tmp_path,
                                                                                   tmp_path_factory):
    process = start_node(tmp_path_factory, "/bad", checkpoint=str(tmp_path / "no_such_checkpoint"))
    client = DepthMasterClient(namespace="/bad", outputs=("depth/relative",))
    try:
        diagnostics = diagnostics_when(client, lambda d: d.get("level") == "2", timeout=60.0)
        assert "configure failed" in diagnostics["message"] and "does not exist" in diagnostics["message"]
        assert "hf download zysong212/DepthMaster" in diagnostics["message"]
        assert lifecycle_when(client, "/bad/depthmaster", "unconfigured") == "unconfigured"
        assert process.alive()
        # the model parameters change while unconfigured: no restart needed
        assert client.set_node_parameters(checkpoint=str(tiny_checkpoint)) == [(True, "")]
        assert lifecycle(client, "/bad/depthmaster", Transition.TRANSITION_CONFIGURE) == "inactive"
        assert lifecycle(client, "/bad/depthmaster", Transition.TRANSITION_ACTIVATE) == "active"
        rgb, camera = sample_frame(64, 48)
        request(client, rgb, camera)
    finally:
        client.destroy_node()
        assert process.stop() == 0, process.log()
    assert "does not exist" in process.log()


def test_compressed_input_and_corrupt_jpeg(ros, tiny_checkpoint, tmp_path_factory):
    process = start_node(tmp_path_factory, "/jpeg", checkpoint=tiny_checkpoint, input_transport="compressed")
    client = make_client(process, outputs=("depth/relative",))
    try:
        rgb, camera = sample_frame(64, 48)
        _, msgs = request(client, rgb, camera, compressed="png")
        assert image_array(msgs["depth/relative"]).shape == (48, 64)
        client.compressed_pub.publish(CompressedImage(header=make_header(now_ns(client), "cam"), format="jpeg",
                                                      data=b"\xff\xd8\xff\xe0 definitely not a jpeg"))
        diagnostics = diagnostics_when(client, lambda d: "could not be decoded" in d.get("last_rejection", ""))
        assert int(diagnostics["rejected"]) == 1
        request(client, rgb, camera, compressed="jpeg")
    finally:
        client.destroy_node()
        assert process.stop() == 0, process.log()


def test_sparse_depth_mode_across_processes(client):
    """The real node process fits the scale to a sparse depth topic (values built from the model's own relative
    map with s = 0.5, t = 0.1, so the right answer is known)."""
    rgb, camera = sample_frame(64, 48)
    _, msgs = request(client, rgb, camera, ("depth/relative",))
    relative = image_array(msgs["depth/relative"]).astype(np.float64)
    truth = 1.0 / (0.5 * relative + 0.1) ** 2
    measured = np.random.default_rng(5).random(truth.shape) < 0.2
    assert client.set_node_parameters(scale_mode="sparse_depth", min_range=0.1, max_range=1000.0) == [(True, "")] * 3
    try:
        stamp = now_ns(client)
        client.publish_sparse_depth(np.where(measured, truth, np.nan), camera, stamp)
        client.spin_until(lambda: False, 0.3)
        client.publish_frame(rgb, camera, stamp)
        assert client.spin_until(lambda: any(stamp_to_ns(m.header.stamp) == stamp for m in client.received["depth"]),
                                 30.0)
        depth = next(image_array(m) for m in client.received["depth"] if stamp_to_ns(m.header.stamp) == stamp)
        assert np.allclose(depth, truth, rtol=1e-3)
        client.spin_until(lambda: any(abs(m.data[0] - stamp / 1e9) < 1e-6 for m in client.received["depth/scale"]),
                          5.0)
        scale = next(m.data for m in client.received["depth/scale"] if abs(m.data[0] - stamp / 1e9) < 1e-6)
        assert abs(scale[1] - 0.5) < 1e-3 and abs(scale[2] - 0.1) < 1e-3 and scale[5] == measured.sum()
    finally:
        client.set_node_parameters(scale_mode="fixed", min_range=MIN_RANGE, max_range=MAX_RANGE)
