"""Colouring [0, 1] maps for people to look at (CLI images, the node's ``depth/colored`` topic).

A 256-entry lookup table from a matplotlib colormap, applied with one numpy indexing pass (fast enough for the
node's per-frame path). Non-finite values are drawn black.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


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


def colorize(values: np.ndarray, name: str = "Spectral", vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """``H x W`` float -> ``H x W x 3`` uint8 RGB; values are mapped linearly from [vmin, vmax] (clipped)."""
    if vmax <= vmin:
        raise ValueError(f"colorize needs vmax > vmin, got vmin={vmin}, vmax={vmax}")
    values = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(values)
    scaled = (np.where(finite, values, vmin) - vmin) * (255.0 / (vmax - vmin))
    index = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    rgb = colormap_lut(name)[index]
    rgb[~finite] = 0
    return rgb
