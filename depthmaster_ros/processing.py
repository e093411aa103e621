"""The one processing path: an RGB frame (+ camera intrinsics) in, every depth product out.

Used unchanged by the ROS node, the bag tool and the benchmarks; no ROS imports. Steps for one frame:

1. the model: relative map ``p`` (normalised sqrt-disparity, 1 = near) at the input size;
2. resize to the output size (``output_scale``), with the intrinsics rescaled to match;
3. ``colored``: ``p`` through the colormap (RGB);
4. metric ``depth`` when the scale mode gives a fit and intrinsics are known: ``1 / max((s p + t)^2, eps)``
   with REP 117 range codes (-Inf closer than ``min_range``, +Inf beyond ``max_range``);
5. ``points``: the organised cloud of that depth (depth_image_proc math), ``cloud_stride``, optional colour.

Only the requested outputs are computed. When an output cannot be made (no intrinsics, no scale), ``notes`` says
why, so the node can report it on /diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from .colormap import colorize
from .geometry.depth_conversion import apply_range_limits, sqrt_disparity_to_depth
from .geometry.intrinsics import CameraIntrinsics
from .geometry.pointcloud import depth_to_points
from .geometry.scale_recovery import ScaleFit, fixed_scale
from .parameters import PARAMETERS_BY_NAME, check_values

OUTPUTS = frozenset({"relative", "colored", "depth", "points"})


def _default(name: str):
    return field(default=PARAMETERS_BY_NAME[name].default)


@dataclass(frozen=True)
class ProcessingConfig:
    """The live-changeable processing parameters (names, defaults and meaning: ``parameters.py``)."""

    processing_res: int = _default("processing_res")
    scale_mode: str = _default("scale_mode")
    scale: float = _default("scale")
    shift: float = _default("shift")
    min_range: float = _default("min_range")
    max_range: float = _default("max_range")
    output_scale: float = _default("output_scale")
    cloud_stride: int = _default("cloud_stride")
    cloud_color: bool = _default("cloud_color")
    colormap: str = _default("colormap")

    def __post_init__(self):
        problems = check_values({f.name: getattr(self, f.name) for f in fields(self)})
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_parameters(cls, values: dict[str, Any]) -> "ProcessingConfig":
        """Pick this config's fields out of a full parameter dict (extra names are ignored)."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def updated(self, **changes: Any) -> "ProcessingConfig":
        return replace(self, **changes)


@dataclass
class DepthProducts:
    """What one frame produced. Arrays are at the output size; absent outputs are None."""

    relative: np.ndarray  # float32 H x W in [0, 1], 1 = near
    camera: CameraIntrinsics | None  # intrinsics of the outputs (rescaled when output_scale < 1)
    colored: np.ndarray | None = None  # uint8 H x W x 3 RGB
    depth: np.ndarray | None = None  # float32 H x W meters, REP 117 codes
    points: np.ndarray | None = None  # structured (x, y, z[, rgb]) organised cloud
    scale: ScaleFit | None = None
    notes: list[str] = field(default_factory=list)


def output_size(height: int, width: int, output_scale: float) -> tuple[int, int]:
    return max(1, round(height * output_scale)), max(1, round(width * output_scale))


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-averaging resize to (height, width); a no-op at the same size."""
    if image.shape[:2] == size:
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


class DepthProcessor:
    """Runs the model and turns its output into depth products. ``config`` may be replaced at any time (the
    node does so on parameter changes); each frame uses the config it started with."""

    def __init__(self, pipeline, config: ProcessingConfig | None = None):
        self.pipeline = pipeline
        self.config = config or ProcessingConfig()

    # The model on a batch of same-size frames (several cameras, or the bag tool's batches).
    def infer(self, images: Sequence[np.ndarray], config: ProcessingConfig | None = None) -> list[np.ndarray]:
        config = config or self.config
        return self.pipeline(list(images), processing_res=config.processing_res, batch_size=max(1, len(images)))

    def scale_fit(self, config: ProcessingConfig) -> ScaleFit | None:
        if config.scale_mode == "fixed":
            return fixed_scale(config.scale, config.shift)
        return None

    def postprocess(
        self,
        rgb: np.ndarray,
        relative: np.ndarray,
        camera: CameraIntrinsics | None,
        outputs: Iterable[str] = OUTPUTS,
        config: ProcessingConfig | None = None,
    ) -> DepthProducts:
        config = config or self.config
        outputs = frozenset(outputs)
        if unknown := outputs - OUTPUTS:
            raise ValueError(f"unknown outputs {sorted(unknown)}; choose from {sorted(OUTPUTS)}")
        height, width = relative.shape
        if camera is not None and (camera.width, camera.height) != (width, height):
            raise ValueError(
                f"camera info is {camera.width}x{camera.height} but the image is {width}x{height}"
            )
        size = output_size(height, width, config.output_scale)
        products = DepthProducts(
            relative=resize_to(relative, size),
            camera=None if camera is None else camera.scaled(size[1], size[0]),
        )
        if "colored" in outputs:
            products.colored = colorize(products.relative, config.colormap)
        if not outputs & {"depth", "points"}:
            return products
        products.scale = self.scale_fit(config)
        if products.scale is None:
            products.notes.append(f"no metric scale (scale_mode '{config.scale_mode}')")
            return products
        if products.camera is None:
            products.notes.append("no camera info for this frame: metric depth and points wait for it")
            return products
        depth = sqrt_disparity_to_depth(products.relative, products.scale.scale, products.scale.shift)
        products.depth = apply_range_limits(depth, config.min_range, config.max_range)
        if "points" in outputs:
            colour = resize_to(rgb, size) if config.cloud_color else None
            products.points = depth_to_points(products.depth, products.camera, config.cloud_stride, colour)
        return products

    def process(
        self,
        rgb: np.ndarray,
        camera: CameraIntrinsics | None = None,
        outputs: Iterable[str] = OUTPUTS,
        config: ProcessingConfig | None = None,
    ) -> DepthProducts:
        """One frame end to end (``rgb``: H x W x 3 uint8)."""
        config = config or self.config
        relative = self.infer([rgb], config)[0]
        return self.postprocess(rgb, relative, camera, outputs, config)
