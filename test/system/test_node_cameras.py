"""Several cameras in one node (`cameras: [front, rear]`): each camera on its own topics with its own
per-camera parameters and scale, frames taken together batched through the model, one camera's bad input not
affecting the other. The node runs in this process with the model swapped for the test double of
test_node_scale.py, so metric depth is checked against each scene's exact depth."""

import numpy as np
import pytest
from rclpy.parameter import Parameter

from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.messages.conversions import make_header
from depthmaster_ros.ros.client import DepthMasterClient
from depthmaster_ros.messages.conversions import stamp_to_ns
from depthmaster_ros.ros.node import DepthMasterNode
from depthmaster_ros.samples.sample_scene import FLOOR_Y, PinholeCamera

from fake_backend import node_with_fake_model
from node_process import image_array

SECOND = 1_000_000_000
REAR_PITCH = 0.2  # the rear camera looks down; the front one is level (the node-level camera_pitch, 0)
PINHOLE = PinholeCamera.with_size(96, 72)
CAMERA = CameraIntrinsics.from_K(96, 72, PINHOLE.K)


@pytest.fixture(scope="module")
def node(ros):
    overrides = [Parameter("cameras", value=["front", "rear"]), Parameter("scale_mode", value="ground_plane"),
                 Parameter("camera_height", value=FLOOR_Y), Parameter("rear.camera_pitch", value=REAR_PITCH),
                 Parameter("max_range", value=1000.0), Parameter("scale_time_constant", value=0.0),
                 Parameter("batch_wait", value=1.0)]
    with node_with_fake_model("/cams", overrides) as node:
        yield node


@pytest.fixture(scope="module")
def clients(node):
    clients = {name: DepthMasterClient(namespace=f"/cams/{name}", name=f"{name}_client") for name in ("front", "rear")}
    for client in clients.values():
        assert client.wait_for_node(30)
    yield clients
    for client in clients.values():
        client.destroy_node()


def answer(client, stamp, topic="depth", timeout=10.0):
    assert client.spin_until(lambda: any(stamp_to_ns(m.header.stamp) == stamp for m in client.received[topic]),
                             timeout), f"no {topic} for {stamp}"
    return next(m for m in client.received[topic] if stamp_to_ns(m.header.stamp) == stamp)


def abs_rel(depth, truth):
    ok = np.isfinite(depth) & np.isfinite(truth)
    assert ok.sum() > 1000
    return float(np.mean(np.abs(depth[ok] - truth[ok]) / truth[ok]))


def test_each_camera_gets_its_own_metric_depth_from_one_batched_pass(node, clients):
    front_rgb, front_truth, _ = node.fake.frame(PINHOLE, 0.5)
    rear_rgb, rear_truth, _ = node.fake.frame(PINHOLE, 2.0, pitch=REAR_PITCH)
    node.fake.batch_sizes.clear()
    stamp = 10 * SECOND
    clients["front"].publish_frame(front_rgb, CAMERA, stamp, frame_id="front_optical")
    clients["rear"].publish_frame(rear_rgb, CAMERA, stamp + 1000, frame_id="rear_optical")
    front, rear = answer(clients["front"], stamp), answer(clients["rear"], stamp + 1000)
    assert (front.header.frame_id, rear.header.frame_id) == ("front_optical", "rear_optical")
    # Each against its own scene: a swapped camera, or the rear fitted with the node-level pitch, is far off.
    assert abs_rel(image_array(front), front_truth) < 1e-4
    assert abs_rel(image_array(rear), rear_truth) < 1e-4
    assert node.fake.batch_sizes == [2]
    info = answer(clients["rear"], stamp + 1000, "depth/camera_info")
    assert abs(info.k[0] - PINHOLE.fx) < 1e-9 and info.header.frame_id == "rear_optical"

    diagnostics = {}
    for name, client in clients.items():
        client.received["/diagnostics"].clear()
        assert client.spin_until(lambda c=client, n=name: c.latest_diagnostics(n).get("camera") == n, 10.0)
        diagnostics[name] = client.latest_diagnostics(name)
    assert diagnostics["front"]["frames_per_pass"] == "2.00" and diagnostics["rear"]["processed"] == "1"


def test_bad_frame_on_one_camera_does_not_stop_the_other(node, clients):
    rgb, truth, _ = node.fake.frame(PINHOLE, 1.0)
    stamp = 20 * SECOND
    bad = clients["rear"]
    from sensor_msgs.msg import Image

    bad.image_pub.publish(Image(header=make_header(stamp, "rear_optical"), height=72, width=96, encoding="rgb8",
                                step=96 * 3, data=bytes(100)))
    clients["front"].publish_frame(rgb, CAMERA, stamp)
    assert abs_rel(image_array(answer(clients["front"], stamp)), truth) < 1e-4
    bad.received["/diagnostics"].clear()
    assert bad.spin_until(lambda: bad.latest_diagnostics("rear").get("rejected") == "1", 10.0)
    rear = bad.latest_diagnostics("rear")
    assert rear["level"] == "1" and "data" in rear["last_rejection"]
    assert bad.latest_diagnostics("front").get("rejected") == "0"


def test_per_camera_parameters_are_validated_live(node, clients):
    client = clients["front"]
    ok, reason = client.set_node_parameters("/cams/depthmaster", **{"rear.ground_region": [0.0, 0.5, 1.0]})[0]
    assert not ok and "rear.ground_region must have 4 values, got 3" in reason
    assert client.set_node_parameters("/cams/depthmaster", **{"rear.camera_height": 2.0}) == [(True, "")]
    assert node._streams["rear"].config.camera_height == 2.0
    assert node._streams["front"].config.camera_height == FLOOR_Y
    client.set_node_parameters("/cams/depthmaster", **{"rear.camera_height": FLOOR_Y})


def test_camera_names_are_checked_at_start(ros):
    with pytest.raises(ValueError, match="not usable as a topic namespace"):
        DepthMasterNode(namespace="/bad", parameter_overrides=[Parameter("cameras", value=["front", "rear/left"])])
    with pytest.raises(ValueError, match="lists a camera twice"):
        DepthMasterNode(namespace="/bad", parameter_overrides=[Parameter("cameras", value=["a", "a"])])


def test_a_compiled_model_always_runs_at_the_camera_count(node, clients):
    """Static shapes: a lone frame is padded to the camera count (no recompilation), and only its own result is
    published."""
    rgb, truth, _ = node.fake.frame(PINHOLE, 1.5)
    node.fake.batch_sizes.clear()
    node.fake.static_shapes = True
    try:
        stamp = 30 * SECOND
        clients["front"].publish_frame(rgb, CAMERA, stamp)
        assert abs_rel(image_array(answer(clients["front"], stamp)), truth) < 1e-4
        assert node.fake.batch_sizes == [2]
        assert not any(stamp_to_ns(m.header.stamp) == stamp for m in clients["rear"].received["depth"])
    finally:
        node.fake.static_shapes = False
