"""Aligning an affine-invariant prediction to ground truth before scoring (depthmaster-method.md section 5.2).

``least_square_sqrt_disp`` is the paper's: a least-squares line from the prediction ``p`` to the square root of the
GT disparity, fitted on valid pixels where the GT is positive and ``p > 0`` (a prediction clipped to 0 is scored
but not fitted); the line is squared without clamping first, then the disparity is floored at 1e-3 and inverted.
``least_square`` (Marigold's default, depth space) and ``least_square_disparity`` are the other two.
Every function returns float64 depth at the prediction's size, before the dataset's range clipping.
"""

from __future__ import annotations

import numpy as np

from ..scale.line_fit import fit_line, sqrt_disparity_line

ALIGNMENTS = ("least_square_sqrt_disp", "least_square", "least_square_disparity")


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    line = fit_line(x, y) if x.size >= 2 else None
    if line is None:
        raise ValueError(f"alignment needs at least 2 valid pixels with distinct predictions, got {x.size} pixels")
    return line


def _disparity(gt: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(gt > 0, 1.0 / np.where(gt > 0, gt, 1.0), 0.0)


def align(prediction: np.ndarray, gt: np.ndarray, valid: np.ndarray, method: str = "least_square_sqrt_disp"):
    """(aligned depth, scale, shift) for one image."""
    p = np.asarray(prediction, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if p.shape != gt.shape or valid.shape != gt.shape:
        raise ValueError(f"prediction {p.shape}, ground truth {gt.shape} and mask {valid.shape} must match")
    if method == "least_square_sqrt_disp":
        scale, shift = sqrt_disparity_line(p, np.where(valid, gt, np.nan))
        disparity = np.maximum((scale * p + shift) ** 2, 1e-3)
        return 1.0 / disparity, scale, shift
    if method == "least_square":
        scale, shift = _line(p[valid], gt[valid])
        return scale * p + shift, scale, shift
    if method == "least_square_disparity":
        gt_disp = _disparity(gt)
        fit = valid & (gt > 0) & (p > 0)
        scale, shift = _line(p[fit], gt_disp[fit])
        return 1.0 / np.maximum(scale * p + shift, 1e-3), scale, shift
    raise ValueError(f"unknown alignment '{method}'; expected one of {', '.join(ALIGNMENTS)}")
