"""From DepthMaster's relative output to metric depth images (REP 118 values with REP 117 non-finite codes).

The model predicts normalised square-root disparity ``p`` in [0, 1]. Given a scale ``s`` and shift ``t`` in that
space, ``depth = 1 / max(a^2, eps)`` with ``a = s * p + t`` the square-root disparity in 1/sqrt(m). A negative
``a`` means "farther than infinity" for the fit: it is clamped to 0, i.e. +Inf. Range limits follow REP 117:
closer than ``min_range`` is -Inf (too close to measure), beyond ``max_range`` is +Inf (out of range).
"""

from __future__ import annotations

import numpy as np

DISPARITY_EPS = 1e-6  # smallest disparity (1/m): depths beyond 1e6 m are "infinitely far"


def sqrt_disparity_to_depth(relative: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """Metric depth (float32 meters, +Inf where the fit says infinitely far) from ``p`` and (s, t)."""
    a = np.maximum(np.float32(scale) * relative.astype(np.float32, copy=False) + np.float32(shift), 0.0)
    disparity = a * a
    with np.errstate(divide="ignore"):
        return np.where(disparity >= DISPARITY_EPS, 1.0 / disparity, np.inf).astype(np.float32)


def apply_range_limits(depth: np.ndarray, min_range: float, max_range: float) -> np.ndarray:
    """REP 117 codes in place: -Inf below ``min_range``, +Inf beyond ``max_range``; NaN stays NaN."""
    with np.errstate(invalid="ignore"):
        depth[depth < min_range] = -np.inf
        depth[depth > max_range] = np.inf
    return depth


def flying_pixels(depth: np.ndarray, threshold: float) -> np.ndarray:
    """Mask of pixels whose depth differs from a finite 4-neighbour's by more than ``threshold`` x their own
    depth: the streaks between a foreground edge and the background in back-projected depth."""
    finite = np.isfinite(depth)
    d = np.where(finite, depth, np.nan).astype(np.float32)
    padded = np.pad(d, 1, constant_values=np.nan)
    worst = np.zeros(depth.shape, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        for neighbour in (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]):
            jump = np.abs(d - neighbour)
            worst = np.fmax(worst, jump)  # NaN neighbours (invalid, out of image) are ignored
        return finite & (worst > threshold * d)
