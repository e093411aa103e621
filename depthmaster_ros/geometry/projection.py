"""Pinhole geometry in the camera optical frame (REP 103: x right, y down, z forward), written once.

* :func:`pixel_rays`: the ray through a pixel, as (x/z, y/z);
* :func:`backproject`: a depth image to x, y, z per pixel (the organised point cloud, the sparse depth sensor's
  points, the sample LiDAR); tensors stay on their device, numpy stays numpy;
* :func:`image_positions`: 3-D points to sub-pixel image positions; :func:`project_points`: the same for the
  points that land in the image, nearest point per pixel;
* :func:`transform_points`: a static extrinsic [x, y, z, qx, qy, qz, qw] applied to points.

The 3x3 ``matrix`` is [[fx, s, cx], [0, fy, cy], [0, 0, 1]]: K, or P's left 3x3 where the ROS convention asks for
P (depth_image_proc projects depth with P); distortion is ignored, as depth_image_proc does.
"""

from __future__ import annotations

import math

import numpy as np


def pinhole_entries(matrix) -> tuple[float, float, float, float, float]:
    """(fx, skew, cx, fy, cy) of a 3x3 pinhole matrix."""
    m = np.asarray(matrix, dtype=np.float64)
    return float(m[0, 0]), float(m[0, 1]), float(m[0, 2]), float(m[1, 1]), float(m[1, 2])


def pixel_rays(matrix, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x/z, y/z) of the rays through pixels (u, v) (pixel centres at integers)."""
    fx, skew, cx, fy, cy = pinhole_entries(matrix)
    ray_y = (v - cy) / fy
    return (u - cx - skew * ray_y) / fx, ray_y


def backproject(depth, matrix, stride: int = 1, origin: tuple[int, int] = (0, 0)):
    """``ceil(H/stride) x ceil(W/stride) x 3`` x, y, z of every ``stride``-th pixel of a depth image (z = the
    depth; non-finite depth gives non-finite coordinates). ``origin``: (row, column) of the depth image's first
    pixel when it is a crop of the camera image."""
    import torch  # here, not at import: the scale sources import this module and the CLIs' --help must be quick

    from .arrays import as_tensor, like_input

    values, was_numpy = as_tensor(depth)
    fx, skew, cx, fy, cy = pinhole_entries(matrix)
    z = values[::stride, ::stride]
    height, width = values.shape
    u = torch.arange(origin[1], origin[1] + width, stride, device=z.device, dtype=z.dtype)
    v = torch.arange(origin[0], origin[0] + height, stride, device=z.device, dtype=z.dtype)
    du = (u - cx)[None, :]
    if skew:
        du = du - skew * ((v - cy)[:, None] / fy)
    x = du * (z * (1.0 / fx))
    y = (v - cy)[:, None] * (z * (1.0 / fy))
    return like_input(torch.stack([x, y, z], dim=-1), was_numpy)


def depth_image_points(depth: np.ndarray, matrix) -> np.ndarray:
    """N x 3 float64 points of the valid pixels (finite, > 0) of a metric depth image."""
    depth = np.asarray(depth, dtype=np.float64)
    xyz = backproject(depth, matrix)
    return xyz[np.isfinite(depth) & (depth > 0)]


def quaternion_matrix(qx: float, qy: float, qz: float, qw: float) -> np.ndarray:
    norm = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
    if not norm > 0:
        raise ValueError("the extrinsic's quaternion has zero length")
    x, y, z, w = qx / norm, qy / norm, qz / norm, qw / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


IDENTITY_EXTRINSIC = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)


def transform_points(points: np.ndarray, extrinsic) -> np.ndarray:
    """``extrinsic`` = [x, y, z, qx, qy, qz, qw]: X_target = R X_source + t."""
    values = [float(v) for v in extrinsic]
    if len(values) != 7:
        raise ValueError(f"an extrinsic is [x, y, z, qx, qy, qz, qw]; got {len(values)} values")
    rotation = quaternion_matrix(*values[3:])
    return points @ rotation.T + np.asarray(values[:3])


def image_positions(points: np.ndarray, matrix) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel (u, v) of every point (``... x 3``, in front of the camera), none dropped: the pinhole
    projection, pixel centres at integers."""
    fx, skew, cx, fy, cy = pinhole_entries(matrix)
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    return (fx * x + skew * y) / z + cx, fy * y / z + cy


def project_points(points: np.ndarray, matrix, width: int, height: int, min_depth: float = 1e-3):
    """Points in the optical frame -> (u, v, z) of those that land in a ``width`` x ``height`` image, at
    sub-pixel precision, keeping per pixel only the nearest (an occluded LiDAR point behind a foreground object
    must not pair with the foreground's prediction). Points behind the camera or outside the image are dropped."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1) & (points[:, 2] > min_depth)]
    z = points[:, 2]
    u, v = image_positions(points, matrix)
    iu, iv = np.round(u).astype(np.int64), np.round(v).astype(np.int64)
    inside = (iu >= 0) & (iu < width) & (iv >= 0) & (iv < height)
    u, v, z, pixel = u[inside], v[inside], z[inside], (iv * width + iu)[inside]
    order = np.lexsort((z, pixel))  # by pixel, nearest first
    keep = order[np.unique(pixel[order], return_index=True)[1]]
    return u[keep], v[keep], z[keep]


def sample_bilinear(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``image`` at sub-pixel positions (pixel centres at integers), clamped at the border."""
    h, w = image.shape
    u = np.clip(u, 0, w - 1)
    v = np.clip(v, 0, h - 1)
    u0 = np.clip(np.floor(u).astype(np.int64), 0, max(w - 2, 0))
    v0 = np.clip(np.floor(v).astype(np.int64), 0, max(h - 2, 0))
    u1, v1 = np.minimum(u0 + 1, w - 1), np.minimum(v0 + 1, h - 1)
    fu, fv = u - u0, v - v0
    top = image[v0, u0] * (1 - fu) + image[v0, u1] * fu
    bottom = image[v1, u0] * (1 - fu) + image[v1, u1] * fu
    return top * (1 - fv) + bottom * fv
