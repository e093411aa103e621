"""The 2-D real DFT of the Fourier Enhancement as real matrix products, and an ``angle()`` that exports.

``rfft2(x)`` and ``irfft2(re, im, size)`` are ``torch.fft.rfft2`` / ``irfft2`` with ``norm="ortho"`` over the last
two dimensions, written as two real matrix products each (rows, then columns) with fixed cos/sin matrices. They use
only MatMul, Mul, Add, Where, Atan and Sqrt, so the block exports to ONNX at opset 17 and runs on ONNX Runtime's
CUDA and TensorRT providers (neither has a DFT kernel; torch's exporters either refuse ``fft_rfft2`` or emit
ONNX ``DFT``). The matrices are made once per grid size, device and dtype (in float64, then cast) and kept.

The one numerical trap is the sign of zero. The bins that are their own conjugate (DC and, on an even axis, the
Nyquist row/column) are exactly real; ``atan2(+0.0, x < 0)`` is +pi but ``atan2(-0.0, x < 0)`` is -pi, and the
phase branch's 3x3 convolution spreads that 2 pi jump over the block's output. FFT libraries return either zero
(pocketfft returns -0.0 at some of those bins of larger grids). Here the sin entries that are zero in exact
arithmetic are exact zeros, the imaginary part of the self-conjugate bins is set to +0.0, and :func:`angle` takes
an imaginary zero of either sign as +0.0 (so an exported graph, whose comparisons cannot see the sign, agrees).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch


class DFTMatrices(NamedTuple):
    """For an ``H x W`` grid (``K = W // 2 + 1`` half-spectrum columns), all scaled by ``1/sqrt(N)``."""

    row_cos: torch.Tensor  # [W, K]  cos(2 pi w k / W)
    row_sin: torch.Tensor  # [W, K]  sin(2 pi w k / W)
    col_cos: torch.Tensor  # [H, H]  cos(2 pi h k / H) (symmetric)
    col_sin: torch.Tensor  # [H, H]  sin(2 pi h k / H) (symmetric)
    inv_cos: torch.Tensor  # [K, W]  c_k cos(2 pi k w / W), c_k = 1 at DC and Nyquist, else 2
    inv_sin: torch.Tensor  # [K, W]  c_k sin(2 pi k w / W)
    real_bins: torch.Tensor  # [H, K] bool: the self-conjugate bins


_cache: dict[tuple, DFTMatrices] = {}


def _cos_sin(n: int, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of 2 pi (r c mod n) / n for r < rows, c < cols, float64, zeros exact where they are exact."""
    turns = np.outer(np.arange(rows), np.arange(cols)) % n
    radians = turns * (2.0 * math.pi / n)
    cos, sin = np.cos(radians), np.sin(radians)
    sin[(2 * turns) % n == 0] = 0.0  # 0 and pi
    cos[(4 * turns == n) | (4 * turns == 3 * n)] = 0.0  # pi/2 and 3 pi/2
    return cos, sin


def dft_matrices(height: int, width: int, device=None, dtype=torch.float32) -> DFTMatrices:
    """The matrices of an ``height x width`` grid on ``device`` in ``dtype`` (made once, then cached). Built with
    numpy, so that a traced or compiled model holds them as constants rather than the ops that made them."""
    device, height, width = torch.device(device or "cpu"), int(height), int(width)  # ints, also when traced
    key = (height, width, device, dtype)
    found = _cache.get(key)
    if found is not None:
        return found
    half = width // 2 + 1
    row_cos, row_sin = _cos_sin(width, width, half)
    col_cos, col_sin = _cos_sin(height, height, height)
    weight = np.full(half, 2.0)
    weight[0] = 1.0
    if width % 2 == 0:
        weight[-1] = 1.0
    real_rows = np.isin(np.arange(height), [0, height // 2] if height % 2 == 0 else [0])
    real_cols = np.isin(np.arange(half), [0, width // 2] if width % 2 == 0 else [0])
    row_scale, col_scale = 1.0 / math.sqrt(width), 1.0 / math.sqrt(height)
    arrays = (row_cos * row_scale, row_sin * row_scale, col_cos * col_scale, col_sin * col_scale,
              row_cos.T * weight[:, None] * row_scale, row_sin.T * weight[:, None] * row_scale)
    with torch.inference_mode(False):  # plain tensors: usable with autograd (training) later
        matrices = DFTMatrices(*(torch.from_numpy(a).to(device, dtype) for a in arrays),
                               real_bins=torch.from_numpy(real_rows[:, None] & real_cols[None, :]).to(device))
    _cache[key] = matrices
    return matrices


def rfft2(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary parts of ``torch.fft.rfft2(x, norm="ortho")`` over the last two dimensions."""
    m = dft_matrices(x.shape[-2], x.shape[-1], x.device, x.dtype)
    row_re, row_im = x @ m.row_cos, -(x @ m.row_sin)  # e^{-i theta} along each row
    re = m.col_cos @ row_re + m.col_sin @ row_im
    im = m.col_cos @ row_im - m.col_sin @ row_re
    return re, torch.where(m.real_bins, torch.zeros_like(im), im)  # +0.0, not a signed rounding residue


def irfft2(re: torch.Tensor, im: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``torch.fft.irfft2(torch.complex(re, im), s=size, norm="ortho")`` over the last two dimensions (like it,
    ignores the imaginary parts that a real signal cannot have)."""
    m = dft_matrices(size[0], size[1], re.device, re.dtype)
    col_re = m.col_cos @ re - m.col_sin @ im  # e^{+i theta} along each column
    col_im = m.col_sin @ re + m.col_cos @ im
    return col_re @ m.inv_cos - col_im @ m.inv_sin


def magnitude(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    """``|re + i im|``."""
    return torch.sqrt(re * re + im * im)


def angle(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    """``atan2(im, re)`` in (-pi, pi] from Atan, comparisons and Where: equal to ``torch.angle`` within float
    rounding, except that an imaginary -0.0 counts as +0.0 (a real negative number's angle is +pi)."""
    safe = torch.where(re == 0, torch.ones_like(re), re)
    base = torch.atan(im / safe)
    turned = torch.where(im >= 0, base + math.pi, base - math.pi)
    on_axis = torch.sign(im) * (math.pi / 2)  # re == 0: +-pi/2, or 0 at the origin
    return torch.where(re < 0, turned, torch.where(re == 0, on_axis, base))
