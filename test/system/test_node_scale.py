"""Scale recovery in the node: the node runs in this process with the model swapped for a test double that
returns the simulated prediction of a synthetic scene, so the published metric depth can be checked against the
scene's exact depth. (test_node.py drives the real node process with the real model.)"""

import math

import numpy as np
import pytest
from rclpy.parameter import Parameter

from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.ros.client import DepthMasterClient
from depthmaster_ros.engine.temporal_stage import TEMPORAL_LAYOUT
from depthmaster_ros.messages.conversions import SCALE_LAYOUT, stamp_to_ns
from depthmaster_ros.samples.sample_scene import FLOOR_Y, PinholeCamera

from fake_backend import A, B, node_with_fake_model
from node_process import image_array
from test_node import diagnostics_when

PINHOLE = PinholeCamera.with_size(96, 72)
CAMERA = CameraIntrinsics.from_K(96, 72, PINHOLE.K)
SECOND = 1_000_000_000


@pytest.fixture(scope="module")
def node(ros):
    overrides = [Parameter("scale_mode", value="sparse_depth"), Parameter("max_range", value=1000.0),
                 Parameter("scale_hold_s", value=0.5), Parameter("scale_time_constant", value=0.0)]
    with node_with_fake_model("/metric", overrides) as node:
        yield node


@pytest.fixture
def client(node):
    client = DepthMasterClient(namespace="/metric")
    assert client.wait_for_node(30)
    yield client
    client.destroy_node()


def serve(client, rgb, stamp, topics=("depth/relative",), timeout=10.0):
    """Publish the frame with ``stamp``; the messages with that stamp on each topic that answered."""
    client.publish_frame(rgb, CAMERA, stamp)
    client.spin_until(lambda: all(any(stamp_to_ns(m.header.stamp) == stamp for m in client.received[t])
                                  for t in topics), timeout)
    client.spin_until(lambda: False, 0.3)
    return {t: m for t, ms in client.received.items() for m in ms if hasattr(m, "header")
            and stamp_to_ns(m.header.stamp) == stamp}


def abs_rel(depth, truth, exclude=None):
    ok = np.isfinite(depth) & np.isfinite(truth)
    if exclude is not None:
        ok &= ~exclude
    assert ok.sum() > 1000
    return float(np.mean(np.abs(depth[ok] - truth[ok]) / truth[ok]))


def latest_scale(client, stamp):
    for msg in reversed(client.received["depth/scale"]):
        if abs(msg.data[0] - stamp / SECOND) < 1e-6:
            return dict(zip(SCALE_LAYOUT + TEMPORAL_LAYOUT, msg.data))
    raise AssertionError("no depth/scale message for that frame")


def test_sparse_depth_gives_true_depth_at_held_out_pixels(node, client):
    rgb, truth, _ = node.fake.frame(PINHOLE, 1.0)
    measured = np.random.default_rng(0).random(truth.shape) < 0.05
    stamp = 100 * SECOND
    client.publish_sparse_depth(np.where(measured, truth, np.nan), CAMERA, stamp)
    client.spin_until(lambda: False, 0.3)
    msgs = serve(client, rgb, stamp, ("depth", "points"))
    assert abs_rel(image_array(msgs["depth"]), truth, exclude=measured) < 1e-4
    scale = latest_scale(client, stamp)
    assert abs(scale["scale"] - 1 / A) < 1e-4 and abs(scale["shift"] + B / A) < 1e-4
    assert scale["inlier_ratio"] > 0.99 and scale["pairs"] >= 100 and scale["age"] == 0.0


def test_modes_switch_live(node, client):
    rgb, truth, _ = node.fake.frame(PINHOLE, 0.5)
    try:
        assert client.set_node_parameters(scale_mode="ground_plane", camera_height=FLOOR_Y) == [(True, ""),
                                                                                                  (True, "")]
        msgs = serve(client, rgb, 200 * SECOND, ("depth",))
        assert abs_rel(image_array(msgs["depth"]), truth) < 1e-4
        assert latest_scale(client, 200 * SECOND)["pairs"] > 500

        # LiDAR 10 cm above the camera with x forward, y left, z up.
        rotation = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
        offset = np.array([0.0, -0.1, 0.0])
        v, u = np.mgrid[4:72:6, 0:96].reshape(2, -1)
        z = truth[v, u]
        ok = np.isfinite(z)
        in_camera = np.stack([(u[ok] - CAMERA.cx) * z[ok] / CAMERA.fx, (v[ok] - CAMERA.cy) * z[ok] / CAMERA.fy,
                              z[ok]], axis=1)
        in_lidar = (in_camera - offset) @ rotation
        assert client.set_node_parameters(scale_mode="pointcloud",
                                          lidar_to_camera=[*offset, 0.5, -0.5, 0.5, 0.5]) == [(True, ""), (True, "")]
        stamp = 300 * SECOND
        client.publish_lidar(in_lidar, stamp)
        client.spin_until(lambda: False, 0.3)
        msgs = serve(client, rgb, stamp, ("depth",))
        assert abs_rel(image_array(msgs["depth"]), truth) < 1e-4

        bad = client.set_node_parameters(lidar_to_camera=[0.0, 0.0, 0.0])[0]
        assert not bad[0] and "must have 7 values" in bad[1]
    finally:
        client.set_node_parameters(scale_mode="sparse_depth")


def test_hold_then_stop(node, client):
    rgb, truth, _ = node.fake.frame(PINHOLE, 1.5)
    start = 400 * SECOND
    client.publish_sparse_depth(np.where(np.isfinite(truth), truth, np.nan), CAMERA, start)
    client.spin_until(lambda: False, 0.3)
    assert "depth" in serve(client, rgb, start, ("depth",))

    held = serve(client, rgb, start + 3 * SECOND // 10, ("depth/relative",))  # no sparse depth within 0.1 s
    assert "depth" in held
    assert abs(latest_scale(client, start + 3 * SECOND // 10)["age"] - 0.3) < 1e-6

    stopped = serve(client, rgb, start + 8 * SECOND // 10, ("depth/relative",))  # past scale_hold_s = 0.5
    assert "depth" not in stopped and "points" not in stopped and "depth/colored" in stopped
    diagnostics = {}
    client.received["/diagnostics"].clear()
    client.spin_until(lambda: "scale_hold_s" in client.latest_diagnostics().get("metric_state", ""), 5.0)
    diagnostics = client.latest_diagnostics()
    assert "no scale fit for 0.8 s" in diagnostics["metric_state"]
    assert "no sparse depth image within metric_source_tolerance" in diagnostics["metric_state"]


def test_the_temporal_stage_on_the_scale_topic_and_diagnostics(node, client):
    """A frame, the same view 2 s later (past temporal_max_gap: a reset), then that view normalised differently
    (gain 0.9, offset 0.05, as a moving camera's next frame would be): the node's temporal stage undoes it, and says
    so in depth/scale and on /diagnostics."""
    rgb, truth, relative = node.fake.frame(PINHOLE, 2.5)
    shifted = rgb.copy()
    shifted[0, 0, 0] ^= 1  # another image for the test double
    node.fake.register(shifted, np.clip(0.9 * relative + 0.05, 0.0, 1.0))
    serve(client, rgb, 500 * SECOND)
    stamps = [502 * SECOND, 502 * SECOND + SECOND // 10]
    maps = []
    for image, stamp in zip((rgb, shifted), stamps):
        client.publish_sparse_depth(np.where(np.isfinite(truth), truth, np.nan), CAMERA, stamp)
        client.spin_until(lambda: False, 0.3)
        maps.append(image_array(serve(client, image, stamp, ("depth/relative", "depth"))["depth/relative"]))
    assert np.abs(maps[1] - maps[0]).max() < 1e-3  # the second frame in the first one's normalisation
    first, second = (latest_scale(client, stamp) for stamp in stamps)
    assert first["temporal_reset"] == 1.0 and math.isnan(first["temporal_inlier_ratio"])
    assert second["temporal_reset"] == 0.0 and second["temporal_inlier_ratio"] > 0.99
    assert abs(second["scale"] - first["scale"]) < 1e-3
    diagnostics = diagnostics_when(client, lambda d: d.get("temporal_state", "").startswith("aligned"))
    assert diagnostics["temporal_mode"] == "align_smooth" and float(diagnostics["temporal_inlier_ratio"]) > 0.99
    assert "2.00 s since the previous frame (> temporal_max_gap 1.0 s)" == diagnostics["temporal_last_reset"]
