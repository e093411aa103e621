"""From DepthMaster's relative output to metric depth images (REP 118 values with REP 117 non-finite codes).

The model predicts normalised square-root disparity ``p`` in [0, 1]. Given a scale ``s`` and shift ``t`` in that
space, ``depth = 1 / max(a^2, eps)`` with ``a = s * p + t`` the square-root disparity in 1/sqrt(m). A negative
``a`` means "farther than infinity" for the fit: it is clamped to 0, i.e. +Inf. Range limits follow REP 117:
closer than ``min_range`` is -Inf (too close to measure), beyond ``max_range`` is +Inf (out of range). A
non-finite ``p`` (the model failed there) is NaN, "no measurement", never +Inf, which would tell a robot that
nothing is there.

Torch tensors stay on their device (the GPU in the node's fast path); numpy arrays give numpy arrays.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .arrays import as_tensor, like_input

DISPARITY_EPS = 1e-6  # smallest disparity (1/m): depths beyond 1e6 m are "infinitely far"


def sqrt_disparity_to_depth(relative, scale: float, shift: float):
    """Metric depth (float32 meters, +Inf where the fit says infinitely far, NaN where ``p`` is not finite) from
    ``p`` and (s, t)."""
    p, was_numpy = as_tensor(relative)
    p = p.float()
    a = (p * float(scale) + float(shift)).clamp_min(0.0)
    disparity = a * a
    depth = torch.where(disparity >= DISPARITY_EPS, 1.0 / disparity, torch.full_like(disparity, math.inf))
    depth = torch.where(torch.isfinite(p), depth, torch.full_like(depth, math.nan))
    return like_input(depth, was_numpy)


def apply_range_limits(depth, min_range: float, max_range: float):
    """REP 117 codes in place (numpy array or tensor): -Inf below ``min_range``, +Inf beyond ``max_range``;
    NaN stays NaN."""
    depth[depth < min_range] = -math.inf
    depth[depth > max_range] = math.inf
    return depth


def flying_pixels(depth, threshold: float):
    """Mask of pixels whose depth differs from a finite 4-neighbour's by more than ``threshold`` x their own
    depth: the streaks between a foreground edge and the background in back-projected depth."""
    values, was_numpy = as_tensor(depth)
    finite = torch.isfinite(values)
    d = torch.where(finite, values, torch.full_like(values, math.nan))
    padded = F.pad(d[None, None], (1, 1, 1, 1), value=math.nan)[0, 0]
    neighbours = torch.stack([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
    worst = torch.nan_to_num((neighbours - d).abs(), nan=0.0).amax(dim=0)  # invalid neighbours do not count
    return like_input(finite & (worst > threshold * d), was_numpy)
