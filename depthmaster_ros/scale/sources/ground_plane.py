"""scale_mode ground_plane: the virtual depth of a flat floor, known from the camera's height, pitch and roll,
for the pixels of an image region where floor is expected (objects standing there are outliers for the fit)."""

from __future__ import annotations

import math

import numpy as np

from ...geometry.projection import pixel_rays
from ...parameter_spec import ParameterSpec, region_rule
from ..source import ScaleSource


def gravity_in_camera(pitch: float, roll: float) -> np.ndarray:
    """Unit 'down' vector in the optical frame of a camera looking down by ``pitch`` and rolled by ``roll``
    (radians; roll right-handed about the optical axis, i.e. clockwise as seen from behind)."""
    return np.array([math.sin(roll) * math.cos(pitch), math.cos(roll) * math.cos(pitch), math.sin(pitch)])


def pairs_from_ground_plane(relative: np.ndarray, camera, height: float, pitch: float, roll: float,
                            region=(0.0, 0.6, 1.0, 1.0)):
    """(p, d) pairs from a flat floor ``height`` meters below the camera: the virtual floor depth of each pixel
    inside ``region`` ([x0, y0, x1, y1], fractions of the width and height) whose ray goes down."""
    if not (height > 0 and math.isfinite(height)):
        raise ValueError(f"camera_height must be a positive number of meters, got {height}")
    x0, y0, x1, y1 = (float(v) for v in region)
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise ValueError(f"ground_region {list(region)} is not [x0, y0, x1, y1] with 0 <= x0 < x1 <= 1 and "
                         "0 <= y0 < y1 <= 1")
    c0, r0 = int(x0 * camera.width), int(y0 * camera.height)
    c1, r1 = max(math.ceil(x1 * camera.width), c0 + 1), max(math.ceil(y1 * camera.height), r0 + 1)
    v, u = np.mgrid[r0:r1, c0:c1].astype(np.float64)
    ray_x, ray_y = pixel_rays(camera.K, u, v)
    g = gravity_in_camera(pitch, roll)
    down = g[0] * ray_x + g[1] * ray_y + g[2]  # how far the ray (x, y, 1) descends per meter of depth
    looks_down = down > 1e-6
    if not looks_down.any():
        raise ValueError("no pixel of ground_region looks down at the floor (check camera_pitch and camera_roll)")
    p = np.asarray(relative, dtype=np.float64)[r0:r1, c0:c1]
    return p[looks_down], height / down[looks_down]


class GroundPlane(ScaleSource):
    name = "ground_plane"
    description = "ground_plane (the camera height over a flat floor)"
    parameters = (
        ParameterSpec("camera_height", 1.0, "ground_plane mode: height of the camera's optical centre above the "
                      "floor, meters.", min_value=0.01, max_value=100.0, per_camera=True),
        ParameterSpec("camera_pitch", 0.0, "ground_plane mode: radians the camera looks down (negative: up).",
                      min_value=-1.5, max_value=1.5, per_camera=True),
        ParameterSpec("camera_roll", 0.0, "ground_plane mode: radians of roll about the optical axis, clockwise as "
                      "seen from behind the camera.", min_value=-1.5, max_value=1.5, per_camera=True),
        ParameterSpec("ground_region", [0.0, 0.6, 1.0, 1.0], "ground_plane mode: [x0, y0, x1, y1], fractions of the "
                      "image width and height, where floor is expected (default: the lower 40 %).",
                      per_camera=True, rule=region_rule),
    )

    def pairs(self, relative, camera, measurements, config):
        return pairs_from_ground_plane(relative, camera, config.camera_height, config.camera_pitch,
                                       config.camera_roll, config.ground_region)
