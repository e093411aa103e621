"""The Fourier Enhancement (FE) block of DepthMaster.

Applied once, to the U-Net mid-block output, before the up blocks; its output replaces the mid-block
output (there is no outer residual). Parameter names match the official checkpoint's ``fftblock.*`` keys.

Two branches on the group-normalised input ``x0``:

* frequency: ``a = SiLU(conv_f1(x0))``; ``F = rfft2(a, ortho)``; amplitude ``|F|`` and phase ``angle(F)``
  each go through a 3x3 conv + SiLU on the half-spectrum grid; the spectrum is rebuilt as
  ``A' cos P' + i A' sin P'``, brought back with ``irfft2`` and ``xf = conv_f3(b + a)``;
* spatial: ``xs = conv_s2(SiLU(conv_s1(x0))) + x0``;

and ``out = fuse(cat([xs, xf]))``.

The DFTs have two forms, chosen by ``dft``: ``"matmul"`` (the default), real matrix products
(:mod:`.real_dft`) with the self-conjugate bins' imaginary part +0.0, which export to ONNX and TensorRT and give
the same phase on every device; and ``"fft"``, ``torch.fft`` as in the official code, whose phase at those bins
follows the FFT library's sign of zero. Where that sign is +0.0 the two agree within 1e-6 (docs/method.md says why
the default is the matrix form). The DFTs always run in float32: half-precision FFTs need power-of-two sizes on
CUDA, bfloat16 FFTs do not exist, and the phase branch (``angle``) is sensitive to rounding. The convolutions run
in the dtype of the block's parameters; :class:`~depthmaster_ros.model.pipeline.DepthMasterPipeline` keeps them in
float32 too.
"""

from __future__ import annotations

import torch
from torch import nn

from . import real_dft

DFT_FORMS = ("matmul", "fft")


class FourierEnhancement(nn.Module):
    """DepthMaster's FE block for a ``channels``-wide feature map (1280 in the published model)."""

    def __init__(self, channels: int = 1280, groups: int = 8, dft: str = "matmul"):
        super().__init__()
        if channels % groups:
            raise ValueError(f"FourierEnhancement: channels ({channels}) must be divisible by groups ({groups})")
        if dft not in DFT_FORMS:
            raise ValueError(f"FourierEnhancement: dft must be one of {', '.join(DFT_FORMS)}, got {dft!r}")
        self.channels = channels
        self.dft = dft
        self.norm = nn.GroupNorm(groups, channels, eps=1e-5, affine=True)
        self.conv_f1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act_f1 = nn.SiLU()
        self.conv_f2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act_f2 = nn.SiLU()
        self.conv_f4 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act_f4 = nn.SiLU()
        self.conv_f3 = nn.Conv2d(channels, channels, 1)
        self.conv_s1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act_s1 = nn.SiLU()
        self.conv_s2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.fuse = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, mid: torch.Tensor) -> torch.Tensor:
        if mid.ndim != 4 or mid.shape[1] != self.channels:
            raise ValueError(
                f"FourierEnhancement expects a [B, {self.channels}, H, W] feature map, got shape {tuple(mid.shape)}"
            )
        compute_dtype = self.conv_f1.weight.dtype
        x0 = self.norm(mid.to(compute_dtype))

        # Frequency branch (DFTs in float32 whatever the compute dtype).
        a = self.act_f1(self.conv_f1(x0))
        if self.dft == "fft":
            spectrum = torch.fft.rfft2(a.float(), dim=(-2, -1), norm="ortho")
            magnitude, angle = spectrum.abs(), spectrum.angle()
        else:
            re, im = real_dft.rfft2(a.float())
            magnitude, angle = real_dft.magnitude(re, im), real_dft.angle(re, im)
        amplitude = self.act_f2(self.conv_f2(magnitude.to(compute_dtype))).float()
        phase = self.act_f4(self.conv_f4(angle.to(compute_dtype))).float()
        # Not torch.polar: the amplitude is a SiLU output and can be negative.
        re, im = amplitude * torch.cos(phase), amplitude * torch.sin(phase)
        if self.dft == "fft":
            b = torch.fft.irfft2(torch.complex(re, im), s=a.shape[-2:], dim=(-2, -1), norm="ortho")
        else:
            b = real_dft.irfft2(re, im, a.shape[-2:])
        xf = self.conv_f3(b.to(compute_dtype) + a)

        # Spatial branch.
        xs = self.conv_s2(self.act_s1(self.conv_s1(x0))) + x0

        return self.fuse(torch.cat([xs, xf], dim=1)).to(mid.dtype)
