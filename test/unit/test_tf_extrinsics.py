"""Extrinsics from TF (ros/tf_extrinsics.py) with the lookup injected, and through a tf2_ros stand-in on sys.path
(tf2 cannot be installed here); the pairing hands them to the job. The node with them: test/system/test_node_tf.py."""

import functools
import sys
from pathlib import Path

import numpy as np
import pytest

from depthmaster_ros.processing_config import ProcessingConfig
from depthmaster_ros.messages.conversions import make_header, points_to_cloud
from depthmaster_ros.messages.pairing import FramePairing
from depthmaster_ros.geometry.pointcloud import XYZ_DTYPE
from depthmaster_ros.ros.tf_extrinsics import IDENTITY, TfExtrinsics

STAND_IN = Path(__file__).resolve().parents[1] / "tf2_stand_in"
MOUNT = [0.0, -0.1, 0.0, 0.5, -0.5, 0.5, 0.5]  # the sample bag's LiDAR: 10 cm above, x forward, z up
POINTCLOUD = ProcessingConfig(scale_mode="pointcloud")


class Lookups:
    """An injected lookup: the transforms it knows, the calls it got, a clock the test moves."""

    def __init__(self, transforms):
        self.transforms, self.calls, self.now = dict(transforms), [], 0.0

    def __call__(self, target, source):
        self.calls.append((target, source))
        if (target, source) not in self.transforms:
            raise LookupError(f"no path from {source} to {target}")
        return self.transforms[(target, source)]


def test_auto_takes_tf_and_caches_it():
    lookups = Lookups({("cam_optical", "lidar"): MOUNT})
    extrinsics = TfExtrinsics("auto", lookup=lookups, refresh_s=1.0, clock=lambda: lookups.now)
    config, unusable = extrinsics.apply(POINTCLOUD, {"lidar_points": "lidar"}, "cam_optical")
    assert config.lidar_to_camera == tuple(MOUNT) and unusable == {}
    assert config.updated(lidar_to_camera=list(IDENTITY)) == POINTCLOUD  # nothing else changed
    assert extrinsics.report(config) == {"extrinsics": "lidar_to_camera: tf: lidar -> cam_optical"}
    lookups.now = 0.9
    assert extrinsics.apply(POINTCLOUD, {"lidar_points": "lidar"}, "cam_optical")[0] is config  # cached, one config
    assert len(lookups.calls) == 1
    lookups.now, lookups.transforms[("cam_optical", "lidar")] = 1.5, [0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 1.0]
    assert extrinsics.apply(POINTCLOUD, {"lidar_points": "lidar"}, "cam_optical")[0].lidar_to_camera == \
        (0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 1.0)  # refreshed: the mount was recalibrated
    lookups.now, lookups.transforms = 3.0, {}
    assert extrinsics.apply(POINTCLOUD, {"lidar_points": "lidar"}, "cam_optical")[0].lidar_to_camera == \
        (0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 1.0)  # a refresh that fails keeps the last good transform
    assert len(lookups.calls) == 3


def test_registered_depth_needs_no_lookup():
    lookups = Lookups({})
    extrinsics = TfExtrinsics("tf", lookup=lookups)
    sparse = ProcessingConfig(scale_mode="sparse_depth", sparse_depth_to_camera=MOUNT)
    config, unusable = extrinsics.apply(sparse, {"sparse_depth": "cam_optical"}, "cam_optical")
    assert config.sparse_depth_to_camera == IDENTITY and unusable == {} and lookups.calls == []


def test_without_a_transform():
    configured = POINTCLOUD.updated(lidar_to_camera=MOUNT)
    auto = TfExtrinsics("auto", lookup=Lookups({}))
    config, unusable = auto.apply(configured, {"lidar_points": "lidar"}, "cam_optical")
    assert config is configured and unusable == {}  # the parameter, as the fallback
    assert auto.report(config) == {"extrinsics": "lidar_to_camera: parameter (no TF from lidar to cam_optical: "
                                                 "LookupError: no path from lidar to cam_optical)"}
    strict = TfExtrinsics("tf", lookup=Lookups({}))
    config, unusable = strict.apply(configured, {"lidar_points": "lidar"}, "cam_optical")
    assert unusable == {"lidar_points": "extrinsics_source is tf and no TF from lidar to cam_optical: LookupError: "
                                        "no path from lidar to cam_optical"}
    assert strict.apply(configured, {"lidar_points": ""}, "cam_optical")[1]["lidar_points"].endswith(
        "a message without a frame_id (measurement)")
    never = TfExtrinsics("parameters", lookup=Lookups({("cam_optical", "lidar"): IDENTITY}))
    assert never.apply(configured, {"lidar_points": "lidar"}, "cam_optical") == (configured, {})
    assert never.report(configured) == {"extrinsics": "lidar_to_camera: parameter (extrinsics_source is parameters)"}
    assert TfExtrinsics("auto", lookup=Lookups({})).report(ProcessingConfig(scale_mode="fixed")) == {}
    with pytest.raises(ValueError, match="extrinsics_source must be one of auto, tf, parameters, got 'lidar'"):
        TfExtrinsics("lidar")


def test_tf2_ros_when_it_is_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(STAND_IN))
    monkeypatch.delitem(sys.modules, "tf2_ros", raising=False)
    import tf2_ros

    monkeypatch.setattr(tf2_ros, "TRANSFORMS", {("cam_optical", "lidar"): MOUNT})
    node = object()
    extrinsics = TfExtrinsics("auto", node=node)
    assert tf2_ros.LISTENERS[-1] is node and extrinsics.unavailable == ""
    assert extrinsics.apply(POINTCLOUD, {"lidar_points": "lidar"}, "cam_optical")[0].lidar_to_camera == tuple(MOUNT)
    assert tf2_ros.LOOKUPS[-1] == ("cam_optical", "lidar")  # target: the camera; source: the sensor


def test_without_tf2_ros(monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2_ros", None)  # import fails, as in the venv
    extrinsics = TfExtrinsics("auto", node=object())
    assert extrinsics.unavailable.startswith("tf2_ros is not installed")
    configured = POINTCLOUD.updated(lidar_to_camera=MOUNT)
    assert extrinsics.apply(configured, {"lidar_points": "lidar"}, "cam_optical") == (configured, {})
    assert extrinsics.report(configured)["extrinsics"].startswith("lidar_to_camera: parameter (tf2_ros is not "
                                                                  "installed")
    config, unusable = TfExtrinsics("tf", node=object()).apply(configured, {"lidar_points": "lidar"}, "cam_optical")
    assert unusable["lidar_points"].startswith("extrinsics_source is tf and tf2_ros is not installed")


def test_the_pairing_gives_the_job_the_transform_of_the_measurement_it_used():
    pairing = FramePairing()
    cloud = np.zeros((1, 3), dtype=XYZ_DTYPE)
    cloud["z"] = 2.0
    pairing.add("lidar_points", points_to_cloud(cloud, make_header(1_000, "lidar")))
    extrinsics = TfExtrinsics("tf", lookup=Lookups({("cam_optical", "lidar"): MOUNT}))
    rgb = np.zeros((4, 4, 3), np.uint8)
    job, problems = pairing.job("", 1_000, rgb, POINTCLOUD, extrinsics=functools.partial(
        extrinsics.apply, camera_frame="cam_optical"))
    assert job.config.lidar_to_camera == tuple(MOUNT) and problems == [] and "lidar_points" in job.measurements
    strict = TfExtrinsics("tf", lookup=Lookups({}))
    job, problems = pairing.job("", 1_000, rgb, POINTCLOUD, extrinsics=functools.partial(
        strict.apply, camera_frame="cam_optical"))
    assert "lidar_points" not in job.measurements
    assert job.measurement_notes["lidar_points"].startswith("extrinsics_source is tf and no TF from lidar")
    assert problems == [("metric_source", job.measurement_notes["lidar_points"])]
