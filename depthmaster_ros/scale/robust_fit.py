"""The robust fit of a scale and shift in square-root-disparity space to (prediction, metric depth) pairs.

``metric depth = 1 / max((s * p + t)^2, eps)``: a straight line from the prediction ``p`` to the square-root
disparity ``y = sqrt(1 / d)``, the space of the paper's evaluation alignment. Every scale source turns what the
robot measures into pairs ``(p_i, d_i)``; this module fits one line to them.

The line is ``robust_line.py``'s (RANSAC on 2-point lines, then IRLS with Tukey's biweight), on the relative
residual ``|s p + t - y| / y`` (scale-free: 0.05 is about 10 % in depth anywhere). RANSAC survives a majority of
gross outliers (occlusion edges and reflections in LiDAR, objects standing in the floor region), which is where
IRLS alone fails when its least-squares start is already pulled away. Degenerate input never raises: it gives no
fit and a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .robust_line import robust_line

P_SATURATED = 1e-6  # p at 0 or 1 was clipped by the model: not on the line, never fitted


@dataclass(frozen=True)
class ScaleFit:
    """A scale and shift in sqrt-disparity space, and how good the fit that produced them was."""

    scale: float
    shift: float
    source: str  # the scale mode that produced it
    inlier_ratio: float = 1.0
    residual_rms: float = 0.0  # RMS of the relative sqrt-disparity residual over inliers (about half the depth error)
    pairs: int = 0
    stamp: float = math.nan  # seconds, the frame the fit came from
    age: float = 0.0  # seconds since that frame, when reused

    def __post_init__(self):
        if not (self.scale >= 0.0):  # also rejects NaN
            raise ValueError(f"scale must be >= 0, got {self.scale}")

    def depth_at(self, p: float) -> float:
        a = max(self.scale * p + self.shift, 0.0)
        return math.inf if a * a < 1e-6 else 1.0 / (a * a)


@dataclass(frozen=True)
class FitSettings:
    min_pairs: int = 50
    min_p_spread: float = 0.05  # 5th-95th percentile range of p among the pairs
    inlier_threshold: float = 0.05  # relative sqrt-disparity residual
    min_inlier_ratio: float = 0.3
    ransac_iterations: int = 256
    ransac_sample: int = 4000  # pairs used to score RANSAC hypotheses
    irls_iterations: int = 10


@dataclass(frozen=True)
class FitOutcome:
    fit: ScaleFit | None
    reason: str = ""  # why there is no fit


def fixed_scale(scale: float, shift: float) -> ScaleFit:
    return ScaleFit(float(scale), float(shift), "fixed")


# ---------------------------------------------------------------------------------------------- the fit
def robust_fit(relative, depth, source: str, settings: FitSettings = FitSettings(), stamp: float = math.nan,
               seed: int = 0) -> FitOutcome:
    """Fit ``s * p + t ~ sqrt(1 / d)`` on pairs (p_i, d_i); invalid pairs (non-finite, d <= 0, saturated p) are
    ignored. Returns the fit with its quality, or no fit and the reason."""
    p = np.asarray(relative, dtype=np.float64).ravel()
    d = np.asarray(depth, dtype=np.float64).ravel()
    if p.shape != d.shape:
        return FitOutcome(None, f"{p.size} predictions but {d.size} depths")
    with np.errstate(invalid="ignore", divide="ignore"):
        valid = np.isfinite(p) & np.isfinite(d) & (d > 0) & (p > P_SATURATED) & (p < 1 - P_SATURATED)
    p, d = p[valid], d[valid]
    if p.size < settings.min_pairs:
        return FitOutcome(None, f"only {p.size} valid depth/prediction pairs (need {settings.min_pairs})")
    spread = float(np.percentile(p, 95) - np.percentile(p, 5))
    if spread < settings.min_p_spread:
        return FitOutcome(None, f"the pairs span too little of the prediction range (p spread {spread:.3f} < "
                                f"{settings.min_p_spread}): all at about one depth")
    y = np.sqrt(1.0 / d)
    outcome = robust_line(p, y, settings.inlier_threshold, settings.min_p_spread, relative=True,
                          ransac_iterations=settings.ransac_iterations, ransac_sample=settings.ransac_sample,
                          irls_iterations=settings.irls_iterations, seed=seed)
    if outcome.line is None:
        return FitOutcome(None, outcome.reason)
    scale, shift, r = outcome.line.slope, outcome.line.intercept, outcome.line.residuals
    inliers = r < settings.inlier_threshold
    ratio = float(inliers.mean())
    if ratio < settings.min_inlier_ratio:
        return FitOutcome(None, f"only {ratio:.0%} of {p.size} pairs agree with the best line "
                                f"(need {settings.min_inlier_ratio:.0%})")
    rms = float(np.sqrt(np.mean(r[inliers] ** 2))) if inliers.any() else math.inf
    return FitOutcome(ScaleFit(scale, shift, source, ratio, rms, int(p.size), stamp))
