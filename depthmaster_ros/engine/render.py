"""From a frame's relative map and scale to the wanted outputs, on the map's device (the GPU in the fast path):

1. resize to the output size (``output_scale``), with the intrinsics rescaled to match;
2. ``colored``: the relative map through the colormap (RGB);
3. metric ``depth``: ``1 / max((s p + t)^2, eps)`` with REP 117 codes: +Inf for sky (``p < sky_threshold``) and
   beyond ``max_range``, -Inf closer than ``min_range``, NaN for flying pixels;
4. ``points``: the organised cloud of that depth (depth_image_proc's math), ``cloud_stride``, optional colour.

Only the wanted outputs are computed; a wanted one that cannot be made gets its reason in ``missing``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..colormap import colorize
from ..geometry.depth_conversion import apply_range_limits, flying_pixels, sqrt_disparity_to_depth
from ..geometry.pointcloud import depth_to_points
from .frame_memory import output_size
from .job import FrameProducts, Missing, Why


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-averaging resize of a numpy image to (height, width); a no-op at the same size."""
    if image.shape[:2] == size:
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def resize_map(values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-averaging resize of an ``H x W`` tensor on its device; a no-op at the same size."""
    if tuple(values.shape) == tuple(size):
        return values
    return F.interpolate(values[None, None], size=size, mode="area")[0, 0]


def render(frame) -> FrameProducts:
    job, config = frame.job, frame.job.config
    outputs = job.outputs
    relative = frame.relative
    height, width = relative.shape
    size = output_size(height, width, config.output_scale)
    resized = resize_map(relative.float(), size)
    camera = frame.camera
    products = FrameProducts(job=job, relative=resized.cpu().numpy(),
                             camera=None if camera is None else camera.scaled(size[1], size[0]),
                             scale=frame.scale, scale_status=frame.scale_status, stage_reports=frame.reports)
    if "colored" in outputs:
        products.colored = colorize(resized, config.colormap).cpu().numpy()
    metric = [name for name in ("depth", "points", "scale") if name in outputs]
    if not metric:
        return products
    if frame.scale is None:
        reason = frame.no_scale or Missing(Why.NO_FIT, frame.scale_status or "no scale for this frame")
        products.missing.update({name: reason for name in metric})
        return products
    wanted = [name for name in ("depth", "points") if name in outputs]
    if products.camera is None:
        reason = Missing(Why.NO_CAMERA_INFO, job.camera_missing
                         or "no camera info for this frame: metric depth and points wait for it")
        products.missing.update({name: reason for name in wanted})
        return products
    if not wanted:
        return products
    depth = sqrt_disparity_to_depth(resized, frame.scale.scale, frame.scale.shift)
    if config.sky_threshold > 0:
        depth[resized < config.sky_threshold] = math.inf
    depth = apply_range_limits(depth, config.min_range, config.max_range)
    if config.flying_pixel_threshold > 0:
        depth[flying_pixels(depth, config.flying_pixel_threshold)] = math.nan
    products.depth = depth.cpu().numpy()
    if "points" in outputs:
        colour = resize_to(job.rgb, size) if config.cloud_color else None
        products.points = depth_to_points(depth, products.camera, config.cloud_stride, colour)
    return products
