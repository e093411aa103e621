"""Temporal consistency of metric depth on a sequence with known depth and camera motion: the flicker metric.

A point that is static in the world changes its depth between two frames only by the camera's motion. For each
pixel of frame k whose true depth is known, the point is back-projected with that depth, moved into frame k-1
with the known poses, and projected there (:func:`static_correspondences`); it counts when frame k-1 sees that
very point (its true depth there agrees with the reprojected one: not occluded, not at a depth edge, inside the
image). The **flicker** of a pair is the mean over those points of

    | log(D_k(x) / D_k-1(x')) - log(Z_k(x) / Z_k-1(x')) |

(D predicted, Z true depth, x' the point's position in frame k-1, sampled bilinearly in both): how much the
predicted depth of a static point changes from one frame to the next beyond the change the motion explains, as a
fraction (0.01 = 1 % per frame). A sequence whose predictions are any fixed multiple of the truth scores 0; a
per-frame scale jitter D_k = s_k Z_k scores |log(s_k / s_k-1)| per pair; a prediction that stays put while the
camera moves scores the truth's own change. :func:`sequence_scores` gives it next to AbsRel.

Poses are (rotation camera -> world, camera position in the world), optical frames (REP 103). No ROS here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.projection import backproject, image_positions, sample_bilinear
from .metrics import depth_metrics

STATIC_TOLERANCE = 0.01  # relative: the previous frame's true depth at x' must match the reprojected depth


@dataclass(frozen=True)
class Correspondences:
    """Pixels (rows, cols) of frame k that see a static point also seen by frame k-1 at (u, v) there."""

    rows: np.ndarray
    cols: np.ndarray
    u: np.ndarray
    v: np.ndarray
    truth_current: np.ndarray  # Z_k at (rows, cols)
    truth_previous: np.ndarray  # Z_k-1 sampled at (u, v)

    def __len__(self) -> int:
        return int(self.rows.size)


def static_correspondences(truth_previous: np.ndarray, truth_current: np.ndarray, pose_previous, pose_current,
                           matrix, tolerance: float = STATIC_TOLERANCE) -> Correspondences:
    """Where frame k's static points land in frame k-1 (module docstring). ``truth_*``: H x W meters, non-finite
    where unknown; ``pose_*``: (rotation camera -> world, position); ``matrix``: the 3x3 intrinsics."""
    truth_previous = np.asarray(truth_previous, dtype=np.float64)
    truth_current = np.asarray(truth_current, dtype=np.float64)
    if truth_previous.shape != truth_current.shape:
        raise ValueError(f"the two frames' true depths must have one size, got {truth_previous.shape} and "
                         f"{truth_current.shape}")
    height, width = truth_current.shape
    rows, cols = np.nonzero(np.isfinite(truth_current) & (truth_current > 0))
    points = backproject(truth_current, matrix)[rows, cols]
    rotation_previous, position_previous = (np.asarray(value, dtype=np.float64) for value in pose_previous)
    rotation_current, position_current = (np.asarray(value, dtype=np.float64) for value in pose_current)
    world = points @ rotation_current.T + position_current
    in_previous = (world - position_previous) @ rotation_previous  # R^T (X - c), row-wise
    z = in_previous[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        u, v = image_positions(in_previous, matrix)
        inside = (z > 1e-6) & (u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1)
        seen = sample_bilinear(truth_previous, u, v)
        static = inside & np.isfinite(seen) & (np.abs(seen - z) <= tolerance * z)
    return Correspondences(rows[static], cols[static], u[static], v[static], truth_current[rows[static],
                                                                                             cols[static]],
                           seen[static])


def pair_flicker(depth_previous: np.ndarray, depth_current: np.ndarray, pairs: Correspondences) -> tuple[float, int]:
    """(flicker, points used) of one pair of predicted depth maps (module docstring); points where either
    prediction is not a finite positive depth are left out. NaN flicker when no point is left."""
    with np.errstate(invalid="ignore", divide="ignore"):
        current = np.asarray(depth_current, dtype=np.float64)[pairs.rows, pairs.cols]
        previous = sample_bilinear(np.asarray(depth_previous, dtype=np.float64), pairs.u, pairs.v)
        usable = np.isfinite(current) & np.isfinite(previous) & (current > 0) & (previous > 0)
        if not usable.any():
            return float("nan"), 0
        error = np.abs(np.log(current[usable] / previous[usable])
                       - np.log(pairs.truth_current[usable] / pairs.truth_previous[usable]))
    return float(error.mean()), int(usable.sum())


def frame_abs_rel(depth: np.ndarray, truth: np.ndarray) -> float:
    """AbsRel of a metric depth map where both it and the truth are finite and positive (no alignment: the
    depth as published)."""
    depth = np.asarray(depth, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & np.isfinite(truth) & (depth > 0) & (truth > 0)
    return depth_metrics(np.where(valid, depth, 1.0), truth, valid)["abs_rel"]


def sequence_scores(depths, truths, poses, matrix, cuts=(), moving=None) -> dict:
    """Flicker (mean over consecutive pairs) and AbsRel (mean over frames) of a sequence of metric depth maps.
    ``depths[k]`` may be None (no metric output for that frame: left out, with the pairs it belongs to).
    ``cuts``: indices k where frame k shows another scene than frame k-1 (that pair is not scored).
    ``moving``: per frame, a mask of the pixels of moving objects (or None): their AbsRel is ``abs_rel_moving``
    (a temporal filter that lags behind motion shows there; the flicker leaves them out as not static)."""
    if not (len(depths) == len(truths) == len(poses)):
        raise ValueError(f"{len(depths)} depth maps, {len(truths)} true depths and {len(poses)} poses: one each per "
                         "frame")
    cuts = set(cuts)
    flickers, points = [], []
    for k in range(1, len(depths)):
        if k in cuts or depths[k] is None or depths[k - 1] is None:
            continue
        pairs = static_correspondences(truths[k - 1], truths[k], poses[k - 1], poses[k], matrix)
        value, used = pair_flicker(depths[k - 1], depths[k], pairs)
        if used:
            flickers.append(value)
            points.append(used)
    abs_rels = [frame_abs_rel(depth, truth) for depth, truth in zip(depths, truths) if depth is not None]
    masks = moving if moving is not None else [None] * len(depths)
    moving_abs_rels = [frame_abs_rel(np.where(mask, depth, np.nan), truth) for depth, truth, mask
                       in zip(depths, truths, masks) if depth is not None and mask is not None and mask.any()]
    return {"flicker": float(np.mean(flickers)) if flickers else float("nan"),
            "abs_rel": float(np.mean(abs_rels)) if abs_rels else float("nan"),
            "abs_rel_moving": float(np.mean(moving_abs_rels)) if moving_abs_rels else float("nan"),
            "pairs": len(flickers), "frames": len(abs_rels), "points_per_pair": float(np.mean(points)) if points
            else 0.0, "flicker_per_pair": flickers, "abs_rel_per_frame": abs_rels}
