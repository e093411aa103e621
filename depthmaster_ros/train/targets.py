"""Training targets: metric depth -> normalised square-root disparity in [-1, 1] (depthmaster-method.md 4.2).

Valid pixels (``min < d < max``) give ``s = sqrt(1 / d)``; the 2 % and 98 % quantiles of ``s`` over the valid
pixels map to -1 and +1 (near = +1), values are clipped to [-1, 1]; invalid pixels (s = 0) end at -1.
"""

from __future__ import annotations

import torch


def valid_mask(depth: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    return (depth > min_depth) & (depth < max_depth)


def normalized_sqrt_disparity(depth: torch.Tensor, valid: torch.Tensor, quantile: float = 0.02,
                              clip: bool = True) -> torch.Tensor:
    """``depth`` and ``valid`` of one image (any shape): the [-1, 1] target of the same shape (``clip=False``:
    before the clipping, for simulations that distort it first)."""
    s = torch.where(valid & (depth > 0), 1.0 / depth.clamp_min(1e-12), torch.zeros_like(depth)).sqrt()
    used = s[valid & (s > 0)]
    if used.numel() < 2:
        raise ValueError(f"a training target needs at least 2 valid depth pixels, got {used.numel()}")
    low, high = torch.quantile(used.float(), torch.tensor([quantile, 1.0 - quantile], device=used.device))
    scale = (high - low).clamp_min(1e-12)
    target = (s - low) / scale * 2.0 - 1.0
    return target.clamp(-1.0, 1.0) if clip else target
