"""The one processing path: an RGB frame (+ camera intrinsics, + metric hints) in, every depth product out.

Used unchanged by the ROS node, the bag tool and the benchmarks; no ROS imports. Steps for one frame:

1. the model: relative map ``p`` (normalised sqrt-disparity, 1 = near) at the input size;
2. the scale: per ``scale_mode`` (none, fixed, sparse_depth, pointcloud, ground_plane; see
   ``geometry/scale_recovery.py``), fitted at the input size and smoothed/held over time;
3. resize to the output size (``output_scale``), with the intrinsics rescaled to match;
4. ``colored``: ``p`` through the colormap (RGB);
5. metric ``depth``: ``1 / max((s p + t)^2, eps)`` with REP 117 codes: +Inf for sky (``p < sky_threshold``) and
   beyond ``max_range``, -Inf closer than ``min_range``, NaN for flying pixels;
6. ``points``: the organised cloud of that depth (depth_image_proc math), ``cloud_stride``, optional colour.

Only the requested outputs are computed. When an output cannot be made (no intrinsics, no scale), ``notes`` says
why, so the node can report it on /diagnostics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .colormap import colorize
from .geometry.depth_conversion import apply_range_limits, flying_pixels, sqrt_disparity_to_depth
from .geometry.intrinsics import CameraIntrinsics
from .geometry.pointcloud import depth_to_points
from .geometry.scale_recovery import (
    FitOutcome,
    FitSettings,
    ScaleFit,
    ScaleTracker,
    fixed_scale,
    pairs_from_ground_plane,
    pairs_from_points,
    pairs_from_sparse_depth,
    robust_fit,
    transform_points,
)
from .parameters import PARAMETERS_BY_NAME, check_values

OUTPUTS = frozenset({"relative", "colored", "depth", "points", "scale"})


def _default(name: str):
    default = PARAMETERS_BY_NAME[name].default
    return field(default=tuple(default) if isinstance(default, list) else default)


@dataclass(frozen=True)
class ProcessingConfig:
    """The live-changeable processing parameters (names, defaults and meaning: ``parameters.py``)."""

    processing_res: int = _default("processing_res")
    scale_mode: str = _default("scale_mode")
    scale: float = _default("scale")
    shift: float = _default("shift")
    sparse_depth_to_camera: tuple = _default("sparse_depth_to_camera")
    lidar_to_camera: tuple = _default("lidar_to_camera")
    camera_height: float = _default("camera_height")
    camera_pitch: float = _default("camera_pitch")
    camera_roll: float = _default("camera_roll")
    ground_region: tuple = _default("ground_region")
    scale_min_pairs: int = _default("scale_min_pairs")
    scale_min_p_spread: float = _default("scale_min_p_spread")
    scale_inlier_threshold: float = _default("scale_inlier_threshold")
    scale_min_inlier_ratio: float = _default("scale_min_inlier_ratio")
    scale_time_constant: float = _default("scale_time_constant")
    scale_jump_threshold: float = _default("scale_jump_threshold")
    scale_hold_s: float = _default("scale_hold_s")
    min_range: float = _default("min_range")
    max_range: float = _default("max_range")
    sky_threshold: float = _default("sky_threshold")
    flying_pixel_threshold: float = _default("flying_pixel_threshold")
    output_scale: float = _default("output_scale")
    cloud_stride: int = _default("cloud_stride")
    cloud_color: bool = _default("cloud_color")
    colormap: str = _default("colormap")

    def __post_init__(self):
        for f in fields(self):  # lists (ROS arrays, YAML) are stored as tuples
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
        problems = check_values({f.name: getattr(self, f.name) for f in fields(self)})
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_parameters(cls, values: dict[str, Any]) -> "ProcessingConfig":
        """Pick this config's fields out of a full parameter dict (extra names are ignored)."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def updated(self, **changes: Any) -> "ProcessingConfig":
        return replace(self, **changes)

    @property
    def fit_settings(self) -> FitSettings:
        return FitSettings(min_pairs=self.scale_min_pairs, min_p_spread=self.scale_min_p_spread,
                           inlier_threshold=self.scale_inlier_threshold, min_inlier_ratio=self.scale_min_inlier_ratio)


@dataclass
class MetricHints:
    """Metric measurements that come with a frame (for the sparse_depth and pointcloud modes)."""

    sparse_depth: np.ndarray | None = None  # H' x W' meters; 0, NaN, Inf = no measurement
    sparse_camera: CameraIntrinsics | None = None  # its intrinsics (needed unless registered to the image)
    lidar_points: np.ndarray | None = None  # N x 3 in the LiDAR frame, meters
    note: str = ""  # why the measurement this mode needs is missing, if it is


@dataclass
class DepthProducts:
    """What one frame produced. Arrays are at the output size; absent outputs are None."""

    relative: np.ndarray  # float32 H x W in [0, 1], 1 = near
    camera: CameraIntrinsics | None  # intrinsics of the outputs (rescaled when output_scale < 1)
    colored: np.ndarray | None = None  # uint8 H x W x 3 RGB
    depth: np.ndarray | None = None  # float32 H x W meters, REP 117 codes
    points: np.ndarray | None = None  # structured (x, y, z[, rgb]) organised cloud
    scale: ScaleFit | None = None
    scale_status: str = ""
    notes: list[str] = field(default_factory=list)


def output_size(height: int, width: int, output_scale: float) -> tuple[int, int]:
    return max(1, round(height * output_scale)), max(1, round(width * output_scale))


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


def infer(pipeline, images: Sequence[np.ndarray], processing_res: int) -> list[torch.Tensor]:
    """The model on a batch of same-size H x W x 3 uint8 frames (several cameras, or the bag tool's batches):
    relative maps as tensors on the model's device (post-processing continues there)."""
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    if pipeline.device.type == "cuda":
        batch = batch.pin_memory().to(pipeline.device, non_blocking=True)
    return list(pipeline.predict(batch, processing_res))


def measured_pairs(relative: np.ndarray, camera: CameraIntrinsics | None, hints: MetricHints | None,
                   config: ProcessingConfig) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """The (prediction, metric depth) pairs the scale is fitted to, or None, None and the reason."""
    mode = config.scale_mode
    if camera is None:
        return None, None, "no camera info for this frame"
    hints = hints or MetricHints()
    try:
        if mode == "sparse_depth":
            if hints.sparse_depth is None:
                return None, None, hints.note or "no sparse depth image for this frame"
            p, d = pairs_from_sparse_depth(relative, camera, hints.sparse_depth, hints.sparse_camera,
                                           config.sparse_depth_to_camera)
        elif mode == "pointcloud":
            if hints.lidar_points is None:
                return None, None, hints.note or "no LiDAR scan for this frame"
            points = transform_points(np.asarray(hints.lidar_points, dtype=np.float64), config.lidar_to_camera)
            p, d = pairs_from_points(relative, camera, points)
            if not len(d):
                return None, None, (f"none of the {len(points)} LiDAR points projects into the image (behind the "
                                    "camera or outside it: check lidar_to_camera)")
        elif mode == "ground_plane":
            p, d = pairs_from_ground_plane(relative, camera, config.camera_height, config.camera_pitch,
                                           config.camera_roll, config.ground_region)
        else:
            raise ValueError(f"scale mode {mode!r} takes no measurements")
    except ValueError as exc:
        return None, None, str(exc)
    return p, d, ""


class DepthProcessor:
    """Runs the model and turns its output into depth products. ``config`` may be replaced at any time (the
    node does so on parameter changes); each frame uses the config it started with. Frames of one stream must
    come in time order (the scale is smoothed over time)."""

    def __init__(self, pipeline, config: ProcessingConfig | None = None):
        self.pipeline = pipeline
        self.config = config or ProcessingConfig()
        self.tracker = ScaleTracker()

    def infer(self, images: Sequence[np.ndarray], config: ProcessingConfig | None = None) -> list[torch.Tensor]:
        """:func:`infer` with this processor's model at the config's ``processing_res``."""
        return infer(self.pipeline, images, (config or self.config).processing_res)

    def estimate_scale(self, relative, camera: CameraIntrinsics | None, hints: MetricHints | None,
                       config: ProcessingConfig, stamp: float) -> tuple[ScaleFit | None, str]:
        """The (s, t) to use for this frame (full-size relative map and intrinsics) and a status line. The fit
        runs on the CPU: it samples the map at a few thousand measured pixels."""
        mode = config.scale_mode
        if mode == "none":
            return None, "scale_mode none: relative outputs only"
        if mode == "fixed":
            return fixed_scale(config.scale, config.shift), "fixed"
        if self.tracker.mode != mode:
            self.tracker.reset(mode)
        self.tracker.time_constant = config.scale_time_constant
        self.tracker.hold_s = config.scale_hold_s
        self.tracker.jump_threshold = config.scale_jump_threshold
        if isinstance(relative, torch.Tensor):
            relative = relative.cpu().numpy()
        p, d, reason = measured_pairs(relative, camera, hints, config)
        outcome = FitOutcome(None, reason) if p is None else robust_fit(p, d, mode, config.fit_settings, stamp=stamp)
        return self.tracker.update(outcome, stamp)

    def postprocess(
        self,
        rgb: np.ndarray,
        relative,
        camera: CameraIntrinsics | None,
        outputs: Iterable[str] = OUTPUTS,
        config: ProcessingConfig | None = None,
        hints: MetricHints | None = None,
        stamp: float = 0.0,
    ) -> DepthProducts:
        """``relative``: the model's H x W map (a tensor stays on its device for the image work; numpy is
        accepted). The products come back as numpy arrays, ready for messages."""
        config = config or self.config
        outputs = frozenset(outputs)
        if unknown := outputs - OUTPUTS:
            raise ValueError(f"unknown outputs {sorted(unknown)}; choose from {sorted(OUTPUTS)}")
        relative = torch.as_tensor(relative)
        height, width = relative.shape
        if camera is not None and (camera.width, camera.height) != (width, height):
            raise ValueError(
                f"camera info is {camera.width}x{camera.height} but the image is {width}x{height}"
            )
        size = output_size(height, width, config.output_scale)
        resized = resize_map(relative.float(), size)
        products = DepthProducts(
            relative=resized.cpu().numpy(),
            camera=None if camera is None else camera.scaled(size[1], size[0]),
        )
        if "colored" in outputs:
            products.colored = colorize(resized, config.colormap).cpu().numpy()
        if not outputs & {"depth", "points", "scale"}:
            return products
        products.scale, products.scale_status = self.estimate_scale(relative, camera, hints, config, stamp)
        if products.scale is None:
            products.notes.append(products.scale_status)
            return products
        if products.camera is None:
            products.notes.append("no camera info for this frame: metric depth and points wait for it")
            return products
        if not outputs & {"depth", "points"}:
            return products
        depth = sqrt_disparity_to_depth(resized, products.scale.scale, products.scale.shift)
        if config.sky_threshold > 0:
            depth[resized < config.sky_threshold] = math.inf
        depth = apply_range_limits(depth, config.min_range, config.max_range)
        if config.flying_pixel_threshold > 0:
            depth[flying_pixels(depth, config.flying_pixel_threshold)] = math.nan
        products.depth = depth.cpu().numpy()
        if "points" in outputs:
            colour = resize_to(rgb, size) if config.cloud_color else None
            products.points = depth_to_points(depth, products.camera, config.cloud_stride, colour)
        return products

    def process(
        self,
        rgb: np.ndarray,
        camera: CameraIntrinsics | None = None,
        outputs: Iterable[str] = OUTPUTS,
        config: ProcessingConfig | None = None,
        hints: MetricHints | None = None,
        stamp: float = 0.0,
    ) -> DepthProducts:
        """One frame end to end (``rgb``: H x W x 3 uint8; ``stamp`` in seconds, for the scale's smoothing)."""
        config = config or self.config
        relative = self.infer([rgb], config)[0]
        return self.postprocess(rgb, relative, camera, outputs, config, hints, stamp)
