"""Depth metrics of the evaluation protocol, per image over the valid pixels (depthmaster-method.md 5.3).

The dataset's mean of each metric is the plain mean over images. AbsRel, SqRel and delta are fractions here;
reports multiply AbsRel and delta by 100 as the paper's tables do. SILog is already x100, as in the reference
implementation.
"""

from __future__ import annotations

import numpy as np

METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3", "i_rmse", "silog")


def depth_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """All of METRICS for one image; ``pred`` must be positive on ``valid`` (aligned depth is floored at 1e-6)."""
    d = np.asarray(pred, dtype=np.float64)[valid]
    g = np.asarray(gt, dtype=np.float64)[valid]
    if d.size == 0:
        raise ValueError("the image has no valid ground-truth pixel")
    diff = d - g
    log_diff = np.log(d) - np.log(g)
    ratio = np.maximum(d / g, g / d)
    return {
        "abs_rel": float(np.mean(np.abs(diff) / g)),
        "sq_rel": float(np.mean(diff**2 / g)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": float(np.sqrt(np.mean(log_diff**2))),
        "log10": float(np.mean(np.abs(np.log10(d) - np.log10(g)))),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25**2)),
        "delta3": float(np.mean(ratio < 1.25**3)),
        "i_rmse": float(np.sqrt(np.mean((1.0 / d - 1.0 / g) ** 2))),
        "silog": float(np.sqrt(max(np.mean(log_diff**2) - np.mean(log_diff) ** 2, 0.0)) * 100.0),
    }


def _occluding_edges(depth: np.ndarray, valid: np.ndarray, threshold: float) -> list[np.ndarray]:
    """For the 4 neighbour directions: where the neighbour is nearer than the pixel by more than ``threshold``
    times in inverse depth (``1 / max(d, 1e-6)``), at valid pixels (the neighbour's validity is not checked, as
    in the reference implementation). Each map is H x W, False where there is no neighbour."""
    x = 1.0 / np.maximum(np.asarray(depth, dtype=np.float64), 1e-6)
    maps = [np.zeros(x.shape, dtype=bool) for _ in range(4)]
    maps[0][:, :-1] = x[:, 1:] / x[:, :-1] > threshold  # right neighbour
    maps[1][:, 1:] = x[:, :-1] / x[:, 1:] > threshold  # left
    maps[2][:-1, :] = x[1:, :] / x[:-1, :] > threshold  # below
    maps[3][1:, :] = x[:-1, :] / x[1:, :] > threshold  # above
    return [edges & valid for edges in maps]


def boundary_f1(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, threshold: float) -> float:
    """F1 of the predicted depth edges against the GT ones at one ratio threshold; precision and recall are the
    means over the 4 directions."""
    p_edges = _occluding_edges(pred, valid, threshold)
    g_edges = _occluding_edges(gt, valid, threshold)
    recall = np.mean([np.count_nonzero(p & g) / max(np.count_nonzero(g), 1) for p, g in zip(p_edges, g_edges)])
    precision = np.mean([np.count_nonzero(p & g) / max(np.count_nonzero(p), 1) for p, g in zip(p_edges, g_edges)])
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def si_boundary_f1(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, t_min: float = 1.05, t_max: float = 1.25,
                   steps: int = 10) -> float:
    """Scale-invariant boundary F1 (Depth Pro style): boundary F1 at thresholds linspace(t_min, t_max, steps),
    weighted by t / sum(t)."""
    thresholds = np.linspace(t_min, t_max, steps)
    weights = thresholds / thresholds.sum()
    return float(sum(w * boundary_f1(pred, gt, valid, t) for t, w in zip(thresholds, weights)))
