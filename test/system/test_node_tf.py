"""The node takes the LiDAR's pose from TF when tf2_ros is importable (here a stand-in, test/tf2_stand_in: tf2
cannot be installed in the venv), over a wrong lidar_to_camera parameter, and says so on /diagnostics. The node
runs in this process with the test double as its model (as in test_node_scale.py), so the metric depth is checked
against the scene's exact depth."""

import sys
from pathlib import Path

import numpy as np
import pytest
from rclpy.parameter import Parameter

from depthmaster_ros.ros.client import DepthMasterClient

from fake_backend import node_with_fake_model
from node_process import image_array
from test_node_scale import CAMERA, PINHOLE, SECOND, abs_rel, serve

STAND_IN = Path(__file__).resolve().parents[1] / "tf2_stand_in"
MOUNT = [0.0, -0.1, 0.0, 0.5, -0.5, 0.5, 0.5]  # LiDAR 10 cm above the camera, x forward, y left, z up


@pytest.fixture
def tf2_ros(monkeypatch):
    monkeypatch.syspath_prepend(str(STAND_IN))
    monkeypatch.delitem(sys.modules, "tf2_ros", raising=False)
    import tf2_ros

    monkeypatch.setattr(tf2_ros, "TRANSFORMS", {("camera_optical_frame", "lidar"): MOUNT})
    yield tf2_ros
    sys.modules.pop("tf2_ros", None)


def test_lidar_extrinsic_from_tf(ros, tf2_ros):
    overrides = [Parameter("scale_mode", value="pointcloud"), Parameter("max_range", value=1000.0),
                 Parameter("scale_time_constant", value=0.0), Parameter("extrinsics_source", value="auto")]
    with node_with_fake_model("/tf_node", overrides) as node:  # lidar_to_camera: the default identity, wrong here
        assert tf2_ros.LISTENERS and tf2_ros.LISTENERS[-1] is node
        client = DepthMasterClient(namespace="/tf_node")
        try:
            assert client.wait_for_node(30)
            rgb, truth, _ = node.fake.frame(PINHOLE, 0.5)
            rotation = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # the quaternion's matrix
            offset = np.array(MOUNT[:3])
            v, u = np.mgrid[4:72:6, 0:96].reshape(2, -1)
            z = truth[v, u]
            ok = np.isfinite(z)
            in_camera = np.stack([(u[ok] - CAMERA.cx) * z[ok] / CAMERA.fx, (v[ok] - CAMERA.cy) * z[ok] / CAMERA.fy,
                                  z[ok]], axis=1)
            stamp = 50 * SECOND
            client.publish_lidar((in_camera - offset) @ rotation, stamp, frame_id="lidar")
            client.spin_until(lambda: False, 0.3)
            msgs = serve(client, rgb, stamp, ("depth",))
            assert abs_rel(image_array(msgs["depth"]), truth) < 1e-4
            assert ("camera_optical_frame", "lidar") in tf2_ros.LOOKUPS
            client.received["/diagnostics"].clear()
            assert client.spin_until(lambda: "extrinsics" in client.latest_diagnostics(), 10.0)
            assert client.latest_diagnostics()["extrinsics"] == "lidar_to_camera: tf: lidar -> camera_optical_frame"
        finally:
            client.destroy_node()
