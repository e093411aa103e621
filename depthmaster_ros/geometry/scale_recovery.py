"""Metric scale for DepthMaster's relative output: a scale ``s`` and shift ``t`` in sqrt-disparity space.

``metric depth = 1 / max((s * p + t)^2, eps)``. This module holds the fit's result type and the modes that need
no measurement: ``none`` (no metric output) and ``fixed`` (user-given s, t, e.g. from a one-off calibration).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScaleFit:
    """A scale and shift in sqrt-disparity space, and where they came from."""

    scale: float
    shift: float
    source: str  # the scale mode that produced it

    def __post_init__(self):
        if not (self.scale >= 0.0):  # also rejects NaN
            raise ValueError(f"scale must be >= 0, got {self.scale}")


def fixed_scale(scale: float, shift: float) -> ScaleFit:
    return ScaleFit(float(scale), float(shift), "fixed")


def fit_scale_shift(relative, depth, mask=None) -> ScaleFit:
    """Least-squares (s, t) with ``s * p + t ~ sqrt(1 / depth)`` over valid pixels (finite, positive depth, and
    ``mask`` if given): the evaluation protocol's alignment, used to calibrate the fixed mode from a frame with
    known depth. Needs at least two distinct values of ``p``."""
    import numpy as np

    p = np.asarray(relative, dtype=np.float64).ravel()
    d = np.asarray(depth, dtype=np.float64).ravel()
    valid = np.isfinite(d) & (d > 0) & np.isfinite(p)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool).ravel()
    if valid.sum() < 2 or np.ptp(p[valid]) == 0:
        raise ValueError(f"a scale fit needs at least 2 valid pixels with distinct predictions; got {valid.sum()}")
    design = np.stack([p[valid], np.ones(valid.sum())], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(design, np.sqrt(1.0 / d[valid]), rcond=None)
    return ScaleFit(max(float(scale), 0.0), float(shift), "fit")
