"""What goes into the engine for one frame (:class:`FrameJob`) and what comes out (:class:`FrameProducts`), with a
typed reason (:class:`Missing`) for every wanted output that could not be made."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

OUTPUTS = ("relative", "colored", "depth", "points", "scale")
METRIC_OUTPUTS = frozenset({"depth", "points", "scale"})


class Why(str, Enum):
    """Why an output is missing."""

    SCALE_MODE_NONE = "scale_mode_none"  # no scale source chosen
    NO_CAMERA_INFO = "no_camera_info"  # no usable camera info paired with the frame
    NO_FIT = "no_fit"  # the scale source gave no fit yet (its measurement is missing or unusable)
    SCALE_EXPIRED = "scale_expired"  # fits failed for longer than scale_hold_s
    REJECTED = "rejected"  # the frame exceeds a limit (max_image_pixels, max_processing_pixels) or has no size
    FAILED = "failed"  # an error while processing this frame


@dataclass(frozen=True)
class Missing:
    why: Why
    detail: str  # one line a user can act on

    def __str__(self) -> str:
        return self.detail


@dataclass
class FrameJob:
    """One frame to process. ``rgb``: H x W x 3 uint8. ``camera``: its intrinsics (None: ``camera_missing`` says
    why). ``measurements``: decoded values of the scale sources' inputs paired with the frame, by input name
    (``measurement_notes``: why one is absent). ``outputs``: the products wanted. ``context``: the adapter's own
    data (a message header, a log time), handed back with the products. Jobs of one stream must reach the engine
    in time order (its stages smooth over time)."""

    stream: str
    stamp_ns: int
    rgb: np.ndarray
    config: Any  # ProcessingConfig
    camera: Any = None  # CameraIntrinsics
    camera_missing: str = ""
    measurements: dict[str, Any] = field(default_factory=dict)
    measurement_notes: dict[str, str] = field(default_factory=dict)
    outputs: frozenset = frozenset(OUTPUTS)
    context: Any = None

    def __post_init__(self):
        self.outputs = frozenset(self.outputs)
        if unknown := self.outputs - set(OUTPUTS):
            raise ValueError(f"unknown outputs {sorted(unknown)}; choose from {list(OUTPUTS)}")

    @property
    def stamp(self) -> float:
        return self.stamp_ns / 1e9


@dataclass
class FrameProducts:
    """What one frame produced: numpy arrays at the output size (``output_scale``), None where absent; ``missing``
    has a reason for each wanted output that is absent."""

    job: FrameJob
    relative: np.ndarray | None = None  # float32 H x W in [0, 1], 1 = near
    camera: Any = None  # intrinsics of the outputs (rescaled when output_scale < 1)
    colored: np.ndarray | None = None  # uint8 H x W x 3 RGB
    depth: np.ndarray | None = None  # float32 H x W meters, REP 117 codes
    points: np.ndarray | None = None  # structured (x, y, z[, rgb]) organised cloud
    scale: Any = None  # ScaleFit in use
    scale_status: str = ""
    missing: dict[str, Missing] = field(default_factory=dict)
    stage_reports: dict[str, Any] = field(default_factory=dict)  # per stage, what it did with this frame
    nonfinite_fraction: float = 0.0  # share of the model's output that was NaN/Inf (NaN in depth, no point)

    @property
    def stream(self) -> str:
        return self.job.stream

    @property
    def stamp_ns(self) -> int:
        return self.job.stamp_ns

    @property
    def context(self) -> Any:
        return self.job.context

    @property
    def failed(self) -> Missing | None:
        """Why the frame produced nothing (an error or a rejection), or None."""
        return self.missing.get("relative")

    @property
    def rejected(self) -> bool:
        return self.failed is not None and self.failed.why is Why.REJECTED

    def metric_missing(self) -> Missing | None:
        """Why wanted metric outputs (depth, points) are absent, or None."""
        for output in ("depth", "points", "scale"):
            if output in self.missing:
                return self.missing[output]
        return None
