"""A short synthetic recording for demos and tests: a camera moving over the sample scene, with its true depth
and a 16-beam "LiDAR" (as a sparse depth image registered to the camera, and as a point cloud in its own frame).

Topics (frame ids in brackets):
  /camera/image_raw         sensor_msgs/Image bgr8            [camera_optical_frame]
  /camera/camera_info       sensor_msgs/CameraInfo            [camera_optical_frame]
  /camera/depth_truth       sensor_msgs/Image 32FC1, meters   [camera_optical_frame]  (exact; +Inf sky)
  /lidar/depth              sensor_msgs/Image 32FC1, meters   [camera_optical_frame]  (16 scan lines, 1 % noise)
  /lidar/points             sensor_msgs/PointCloud2 x,y,z     [lidar]  (x forward, y left, z up; 10 cm above)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..geometry.intrinsics import CameraIntrinsics
from ..geometry.pointcloud import XYZ_DTYPE
from ..geometry.projection import depth_image_points
from ..rosbag.io import ConnectionMap, cdr_bytes, msgtype_of, open_writer
from .sample_scene import PinholeCamera, render

START_NS = 1_700_000_000 * 1_000_000_000
# LiDAR frame -> camera optical frame: X_cam = R X_lidar + t (the node's lidar_to_camera parameter).
LIDAR_ROTATION = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
LIDAR_TRANSLATION = np.array([0.0, -0.1, 0.0])
LIDAR_TO_CAMERA = [0.0, -0.1, 0.0, 0.5, -0.5, 0.5, 0.5]
TOPICS = {"image": "/camera/image_raw", "camera_info": "/camera/camera_info", "truth": "/camera/depth_truth",
          "lidar_depth": "/lidar/depth", "lidar_points": "/lidar/points"}


def lidar_rows(height: int, beams: int = 16) -> np.ndarray:
    return np.linspace(0.4 * height, 0.97 * height, beams).astype(int)


def lidar_depth_image(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The 16-beam "LiDAR" as a depth image registered to the camera: every 2nd pixel of 16 rows of the true
    depth with 1 % noise, NaN elsewhere and where the truth is not finite (sky)."""
    height, width = truth.shape
    lidar = np.full(truth.shape, np.nan, np.float32)
    rows = lidar_rows(height)
    lidar[rows, ::2] = truth[rows, ::2] * (1 + 0.01 * rng.standard_normal((len(rows), len(range(0, width, 2)))))
    lidar[~np.isfinite(lidar)] = np.nan
    return lidar


def write_sample_bag(out: str | Path, frames: int = 20, rate: float = 10.0, width: int = 320, height: int = 240,
                     storage: str = "mcap", seed: int = 0, times=None) -> Path:
    """``frames`` frames at ``rate`` Hz, or (``times``) frames at these seconds from the start, e.g. with gaps
    (dropped frames)."""
    from ..messages.conversions import array_to_image, intrinsics_to_camera_info, make_header, points_to_cloud

    pinhole = PinholeCamera.with_size(width, height)
    camera = CameraIntrinsics.from_K(width, height, pinhole.K)
    rng = np.random.default_rng(seed)
    writer = open_writer(out, storage)
    bag = ConnectionMap(writer)
    try:
        for t in ([index / rate for index in range(frames)] if times is None else times):
            stamp = START_NS + int(round(t * 1e9))
            rgb, truth = render(pinhole, t=t)
            header = make_header(stamp, "camera_optical_frame")
            lidar = lidar_depth_image(truth, rng)
            in_camera = depth_image_points(lidar, camera.K)
            cloud = np.zeros((1, len(in_camera)), XYZ_DTYPE)
            in_lidar = (in_camera - LIDAR_TRANSLATION) @ LIDAR_ROTATION
            for axis, name in enumerate("xyz"):
                cloud[name] = in_lidar[:, axis]
            messages = [
                (TOPICS["image"], array_to_image(np.ascontiguousarray(rgb[..., ::-1]), "bgr8", header), 0),
                (TOPICS["camera_info"], intrinsics_to_camera_info(camera, header), 1),
                (TOPICS["truth"], array_to_image(truth, "32FC1", header), 2),
                (TOPICS["lidar_depth"], array_to_image(lidar, "32FC1", header), 3),
                (TOPICS["lidar_points"], points_to_cloud(cloud, make_header(stamp, "lidar")), 4),
            ]
            for topic, message, offset_ms in messages:
                bag.write(topic, msgtype_of(message), stamp + offset_ms * 1_000_000, cdr_bytes(message))
    finally:
        writer.close()
    return Path(out)
