"""Depth image -> organised point cloud, with the same math as depth_image_proc.

``X = (u - cx) Z / fx``, ``Y = (v - cy) Z / fy``, ``Z = depth`` with fx, fy, cx, cy from the P matrix; any
non-finite depth (NaN invalid, +/-Inf out of range) gives a NaN point. ``stride`` keeps every stride-th pixel in
both directions starting at (0, 0): the cloud is what depth_image_proc would give for the depth image decimated
with CameraInfo binning = stride. Points are in the camera's optical frame (REP 103: x right, y down, z forward).

The result is a structured array ready to become PointCloud2 bytes: fields ``x, y, z`` float32 (12 bytes a point)
or ``x, y, z, rgb`` (16 bytes; ``rgb`` is a float32 whose bits are 0x00RRGGBB, the PCL/RViz convention).
"""

from __future__ import annotations

import numpy as np

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


def depth_to_points(
    depth: np.ndarray, camera: CameraIntrinsics, stride: int = 1, rgb: np.ndarray | None = None
) -> np.ndarray:
    """Organised cloud of shape ``(ceil(H/stride), ceil(W/stride))`` as a structured array (see module doc)."""
    if depth.shape != (camera.height, camera.width):
        raise ValueError(
            f"depth image is {depth.shape[1]}x{depth.shape[0]} but the camera info is {camera.width}x{camera.height}"
        )
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    z = depth[::stride, ::stride].astype(np.float32, copy=False)
    u = np.arange(0, camera.width, stride, dtype=np.float32)
    v = np.arange(0, camera.height, stride, dtype=np.float32)
    cloud = np.empty(z.shape, dtype=XYZ_DTYPE if rgb is None else XYZRGB_DTYPE)
    finite = np.isfinite(z)
    z = np.where(finite, z, np.float32(np.nan))
    cloud["x"] = (u - np.float32(camera.cx))[None, :] * (z * np.float32(1.0 / camera.fx))
    cloud["y"] = (v - np.float32(camera.cy))[:, None] * (z * np.float32(1.0 / camera.fy))
    cloud["z"] = z
    if rgb is not None:
        if rgb.shape[:2] != depth.shape:
            raise ValueError(f"colour image {rgb.shape[:2]} and depth {depth.shape} differ in size")
        cloud["rgb"] = pack_rgb(rgb[::stride, ::stride])
    return cloud
