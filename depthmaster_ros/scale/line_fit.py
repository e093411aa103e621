"""Least-squares lines, written once: the plain and weighted line through (x, y) pairs, and the square-root
disparity line ``s * p + t = sqrt(1 / depth)`` that both the evaluation's alignment (the paper's
``least_square_sqrt_disp``) and the robust scale fit's refinement use."""

from __future__ import annotations

import numpy as np


def fit_line(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float] | None:
    """(slope, intercept) minimising sum w (slope x + intercept - y)^2, computed about the weighted means (stable
    for large offsets); None when the weights sum to zero or x has no spread."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    sw = w.sum()
    if sw <= 0:
        return None
    xm, ym = (w * x).sum() / sw, (w * y).sum() / sw
    var = (w * (x - xm) ** 2).sum()
    if var <= 1e-12 * sw:
        return None
    slope = (w * (x - xm) * (y - ym)).sum() / var
    return float(slope), float(ym - slope * xm)


def sqrt_disparity_line(relative, depth, mask=None) -> tuple[float, float]:
    """The least-squares (s, t) with ``s * p + t = sqrt(1 / depth)`` over the pixels where the depth is finite
    and positive, the prediction is finite and above 0 (a prediction clipped to 0 is not on the line) and ``mask``
    (if given) is set. ValueError when fewer than 2 such pixels with distinct predictions exist."""
    p = np.asarray(relative, dtype=np.float64).ravel()
    d = np.asarray(depth, dtype=np.float64).ravel()
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(d) & (d > 0) & np.isfinite(p) & (p > 0)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool).ravel()
    line = fit_line(p[valid], np.sqrt(1.0 / d[valid])) if valid.sum() >= 2 else None
    if line is None:
        raise ValueError(f"a square-root disparity line needs at least 2 valid pixels with distinct predictions; "
                         f"got {int(valid.sum())} valid pixels")
    return line
