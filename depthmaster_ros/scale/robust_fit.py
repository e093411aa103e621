"""The robust fit of a scale and shift in square-root-disparity space to (prediction, metric depth) pairs.

``metric depth = 1 / max((s * p + t)^2, eps)``: a straight line from the prediction ``p`` to the square-root
disparity ``y = sqrt(1 / d)``, the space of the paper's evaluation alignment. Every scale source turns what the
robot measures into pairs ``(p_i, d_i)``; this module fits one line to them.

RANSAC on 2-point lines, scored on the relative residual ``|s p + t - y| / y`` (scale-free: 0.05 is about 10 % in
depth anywhere), then IRLS with Tukey's biweight on the consensus. RANSAC needs no starting guess and survives a
majority of gross outliers (occlusion edges and reflections in LiDAR, objects standing in the floor region), which
is where IRLS alone fails when its least-squares start is already pulled away; IRLS then uses every good pair with
smooth weights, which is statistically more efficient than the hard RANSAC inlier set. Degenerate input never
raises: it gives no fit and a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .line_fit import fit_line

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
def _tukey(r: np.ndarray, c: float) -> np.ndarray:
    u = r / c
    return np.where(np.abs(u) < 1.0, (1.0 - u * u) ** 2, 0.0)


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

    # RANSAC over 2-point lines, scored (MSAC) on a subsample.
    rng = np.random.default_rng(seed)
    sample = rng.choice(p.size, min(p.size, settings.ransac_sample), replace=False)
    ps, ys = p[sample], y[sample]
    i, j = rng.integers(0, p.size, (2, settings.ransac_iterations))
    dp = p[i] - p[j]
    usable = np.abs(dp) > settings.min_p_spread / 4
    if not usable.any():
        return FitOutcome(None, "no two pairs far enough apart in p to define a line")
    scales = (y[i] - y[j])[usable] / dp[usable]
    shifts = y[i][usable] - scales * p[i][usable]
    residuals = np.abs(scales[:, None] * ps[None, :] + shifts[:, None] - ys[None, :]) / ys[None, :]
    cost = np.minimum(residuals, settings.inlier_threshold) ** 2
    cost[scales <= 0] = np.inf
    best = int(np.argmin(cost.sum(axis=1)))
    if not np.isfinite(cost[best].sum()):
        return FitOutcome(None, "every candidate line has a non-positive scale (depth would grow with p)")
    scale, shift = float(scales[best]), float(shifts[best])

    # IRLS with Tukey's biweight on the relative residual, starting from the RANSAC line.
    for _ in range(settings.irls_iterations):
        r = (scale * p + shift - y) / y
        core = np.abs(r) < settings.inlier_threshold
        sigma = max(1.4826 * float(np.median(np.abs(r[core]))) if core.any() else settings.inlier_threshold, 1e-6)
        line = fit_line(p, y, _tukey(r, max(4.685 * sigma, 1e-5)) / (y * y))
        if line is None:
            break
        if abs(line[0] - scale) < 1e-12 and abs(line[1] - shift) < 1e-12:
            scale, shift = line
            break
        scale, shift = line

    r = np.abs(scale * p + shift - y) / y
    inliers = r < settings.inlier_threshold
    ratio = float(inliers.mean())
    if not scale > 0:
        return FitOutcome(None, f"the fitted scale {scale:.4g} is not positive (depth would grow with p)")
    if ratio < settings.min_inlier_ratio:
        return FitOutcome(None, f"only {ratio:.0%} of {p.size} pairs agree with the best line "
                                f"(need {settings.min_inlier_ratio:.0%})")
    rms = float(np.sqrt(np.mean(r[inliers] ** 2))) if inliers.any() else math.inf
    return FitOutcome(ScaleFit(scale, shift, source, ratio, rms, int(p.size), stamp))
