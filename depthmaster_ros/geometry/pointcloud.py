"""Depth image -> organised point cloud, with the same math as depth_image_proc.

``X = (u - cx) Z / fx``, ``Y = (v - cy) Z / fy``, ``Z = depth`` with fx, fy, cx, cy from the P matrix; any
non-finite depth (NaN invalid, +/-Inf out of range) gives a NaN point. ``stride`` keeps every stride-th pixel in
both directions starting at (0, 0): the cloud is what depth_image_proc would give for the depth image decimated
with CameraInfo binning = stride. Points are in the camera's optical frame (REP 103: x right, y down, z forward).

The projection runs where the depth is (a tensor on the GPU in the node's fast path, or numpy); the result is a
structured numpy array ready to become PointCloud2 bytes: fields ``x, y, z`` float32 (12 bytes a point) or
``x, y, z, rgb`` (16 bytes; ``rgb`` is a float32 whose bits are 0x00RRGGBB, the PCL/RViz convention).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .arrays import as_tensor
from .projection import backproject
from .intrinsics import CameraIntrinsics

XYZ_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
XYZRGB_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<f4")])


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """``... x 3`` uint8 RGB -> float32 carrying the bits 0x00RRGGBB."""
    rgb = rgb.astype(np.uint32)
    return ((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]).view(np.float32)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(packed, dtype=np.float32).view(np.uint32)
    return np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], axis=-1).astype(np.uint8)


def project_depth(depth: torch.Tensor, camera: CameraIntrinsics, stride: int = 1) -> torch.Tensor:
    """``ceil(H/stride) x ceil(W/stride) x 3`` float32 x, y, z on the depth's device (NaN for no point)."""
    z = depth.float()
    z = torch.where(torch.isfinite(z), z, torch.full_like(z, math.nan))
    return backproject(z, camera.P[:, :3], stride)


def depth_to_points(depth, camera: CameraIntrinsics, stride: int = 1, rgb: np.ndarray | None = None) -> np.ndarray:
    """Organised cloud of shape ``(ceil(H/stride), ceil(W/stride))`` as a structured array (see module doc)."""
    values, _ = as_tensor(depth)
    if tuple(values.shape) != (camera.height, camera.width):
        raise ValueError(f"depth image is {values.shape[1]}x{values.shape[0]} but the camera info is "
                         f"{camera.width}x{camera.height}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    xyz = project_depth(values, camera, stride).cpu().numpy()
    cloud = np.empty(xyz.shape[:2], dtype=XYZ_DTYPE if rgb is None else XYZRGB_DTYPE)
    fields = cloud.view(np.float32).reshape(*xyz.shape[:2], -1)
    fields[..., :3] = xyz
    if rgb is not None:
        if rgb.shape[:2] != tuple(values.shape):
            raise ValueError(f"colour image {rgb.shape[:2]} and depth {tuple(values.shape)} differ in size")
        fields[..., 3] = pack_rgb(rgb[::stride, ::stride])
    return cloud
