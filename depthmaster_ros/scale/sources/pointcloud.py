"""scale_mode pointcloud: LiDAR points moved into the camera optical frame by a static extrinsic and projected
with K, nearest point per pixel, the prediction sampled bilinearly at each point's sub-pixel position."""

from __future__ import annotations

import numpy as np

from ...geometry.projection import project_points, sample_bilinear, transform_points
from ...parameter_spec import EXTRINSIC_NOTE, ParameterSpec, extrinsic_rule
from ..source import MeasurementInput, ScaleSource


def pairs_from_points(relative: np.ndarray, camera, points: np.ndarray):
    """(p, d) pairs for 3-D points in the camera optical frame: p sampled where each point projects."""
    u, v, z = project_points(points, camera.K, camera.width, camera.height)
    return sample_bilinear(np.asarray(relative, dtype=np.float64), u, v), z


class PointCloudScale(ScaleSource):
    name = "pointcloud"
    description = "pointcloud (a LiDAR topic)"
    parameters = (
        ParameterSpec("lidar_to_camera", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], "pointcloud mode: [x, y, z, qx, qy, "
                      "qz, qw] from the LiDAR frame to the camera optical frame (X_cam = R X_lidar + t). Where TF is "
                      "used (extrinsics_source), the fallback.",
                      per_camera=True, rule=extrinsic_rule,
                      note=EXTRINSIC_NOTE),
    )
    inputs = (MeasurementInput("lidar_points", "points", "LiDAR scan", shared=True, option="--lidar-topic",
                               extrinsic="lidar_to_camera"),)

    def pairs(self, relative, camera, measurements, config):
        points = transform_points(np.asarray(measurements["lidar_points"], dtype=np.float64), config.lidar_to_camera)
        p, d = pairs_from_points(relative, camera, points)
        if not len(d):
            raise ValueError(f"none of the {len(points)} LiDAR points projects into the image (behind the camera "
                             "or outside it: check lidar_to_camera)")
        return p, d
