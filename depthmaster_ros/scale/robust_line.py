"""A straight line ``y ~ slope * x + intercept`` fitted robustly, written once: RANSAC on 2-point lines, then IRLS
with Tukey's biweight from the RANSAC line.

RANSAC needs no starting guess and survives a majority of gross outliers; IRLS then uses every good point with
smooth weights, which is statistically more efficient than the hard RANSAC inlier set. The residual is either
absolute (``slope x + intercept - y``) or relative to ``y`` (divided by ``y``: scale-free, the metric scale fit's
choice). The slope must be positive: every user maps "nearer" to "nearer". Used by the metric scale fit
(``robust_fit.py``: prediction -> sqrt-disparity) and the temporal stage (this frame's map -> the previous
stabilised one). Degenerate input never raises: it gives no line and a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .line_fit import fit_line


@dataclass(frozen=True)
class RobustLine:
    slope: float
    intercept: float
    residuals: np.ndarray  # |slope x + intercept - y| per point (divided by y when relative)


@dataclass(frozen=True)
class LineOutcome:
    line: RobustLine | None
    reason: str = ""  # why there is no line


def _tukey(r: np.ndarray, c: float) -> np.ndarray:
    u = r / c
    return np.where(np.abs(u) < 1.0, (1.0 - u * u) ** 2, 0.0)


def robust_line(x: np.ndarray, y: np.ndarray, inlier_threshold: float, min_spread: float, relative: bool,
                ransac_iterations: int = 256, ransac_sample: int = 4000, irls_iterations: int = 10,
                seed: int = 0) -> LineOutcome:
    """The line through float64 points (x_i, y_i), all valid (the caller filters). ``inlier_threshold``: the
    residual under which a point counts for RANSAC's score and IRLS's scale estimate. ``min_spread``: candidate
    lines come from two points at least ``min_spread / 4`` apart in x. Deterministic for a given ``seed``."""
    norm = y if relative else np.ones_like(y)
    rng = np.random.default_rng(seed)
    sample = rng.choice(x.size, min(x.size, ransac_sample), replace=False)
    xs, ys, ns = x[sample], y[sample], norm[sample]
    i, j = rng.integers(0, x.size, (2, ransac_iterations))
    dx = x[i] - x[j]
    usable = np.abs(dx) > min_spread / 4
    if not usable.any():
        return LineOutcome(None, "no two pairs far enough apart in p to define a line")
    slopes = (y[i] - y[j])[usable] / dx[usable]
    intercepts = y[i][usable] - slopes * x[i][usable]
    residuals = np.abs(slopes[:, None] * xs[None, :] + intercepts[:, None] - ys[None, :]) / ns[None, :]
    cost = np.minimum(residuals, inlier_threshold) ** 2  # MSAC
    cost[slopes <= 0] = np.inf
    best = int(np.argmin(cost.sum(axis=1)))
    if not np.isfinite(cost[best].sum()):
        return LineOutcome(None, "every candidate line has a non-positive scale (depth would grow with p)")
    slope, intercept = float(slopes[best]), float(intercepts[best])

    for _ in range(irls_iterations):
        r = (slope * x + intercept - y) / norm
        core = np.abs(r) < inlier_threshold
        sigma = max(1.4826 * float(np.median(np.abs(r[core]))) if core.any() else inlier_threshold, 1e-6)
        line = fit_line(x, y, _tukey(r, max(4.685 * sigma, 1e-5)) / (norm * norm))
        if line is None:
            break
        if abs(line[0] - slope) < 1e-12 and abs(line[1] - intercept) < 1e-12:
            slope, intercept = line
            break
        slope, intercept = line
    if not slope > 0:
        return LineOutcome(None, f"the fitted scale {slope:.4g} is not positive (depth would grow with p)")
    return LineOutcome(RobustLine(slope, intercept, np.abs(slope * x + intercept - y) / norm))
