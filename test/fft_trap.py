"""The sign-of-zero trap of torch.fft at the self-conjugate bins, shared by the tests of model/real_dft.py and of
the Fourier Enhancement: the bins where the trap is met, and grids on which some CPU's pocketfft met it (which
grids depends on the CPU's FFT code path: 48x64 on one machine; 30x40 and 24x32 on another)."""

import torch

from depthmaster_ros.model import real_dft

TRAP_GRIDS = [(48, 64), (30, 40), (24, 32), (36, 48), (60, 80), (40, 60)]


def trapped_bins(spectrum: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Mask of the exactly real bins to which torch's FFT gave a negative imaginary part (a rounding residue or
    -0.0) where the real part is negative: there torch.angle gives -pi where the exact spectrum gives +pi.
    ``spectrum``: torch.fft.rfft2 of a ``size`` (height, width) grid."""
    return torch.signbit(spectrum.imag) & (spectrum.real < 0) & real_dft.dft_matrices(*size).real_bins
