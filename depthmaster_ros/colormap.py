"""Colouring [0, 1] maps for people to look at (CLI images, the node's ``depth/colored`` topic).

A 256-entry lookup table from a matplotlib colormap, applied with one indexing pass on the values' device (numpy
in, numpy out; a tensor stays a tensor). Non-finite values are drawn black.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .geometry.arrays import as_tensor, like_input


@lru_cache(maxsize=16)
def colormap_lut(name: str) -> np.ndarray:
    """``256 x 3`` uint8 RGB table of the matplotlib colormap ``name``; ValueError naming the choices if unknown."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        known = ", ".join(sorted(n for n in matplotlib.colormaps if not n.endswith("_r"))[:20])
        raise ValueError(f"unknown colormap '{name}'; matplotlib names such as: {known}, ...") from None
    lut = (cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255.0 + 0.5).astype(np.uint8)
    lut.setflags(write=False)
    return lut


@lru_cache(maxsize=16)
def _lut_tensor(name: str, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(colormap_lut(name).copy()).to(device)


def colorize(values, name: str = "Spectral", vmin: float = 0.0, vmax: float = 1.0):
    """``H x W`` float -> ``H x W x 3`` uint8 RGB; values are mapped linearly from [vmin, vmax] (clipped)."""
    if vmax <= vmin:
        raise ValueError(f"colorize needs vmax > vmin, got vmin={vmin}, vmax={vmax}")
    tensor, was_numpy = as_tensor(values)
    tensor = tensor.float()
    finite = torch.isfinite(tensor)
    scaled = (torch.where(finite, tensor, torch.full_like(tensor, vmin)) - vmin) * (255.0 / (vmax - vmin))
    index = (scaled + 0.5).clamp(0, 255).to(torch.long)
    rgb = _lut_tensor(name, tensor.device)[index]
    rgb[~finite] = 0
    return like_input(rgb, was_numpy)
