"""The Fourier Enhancement's real DFT as matrix products (model/real_dft.py) against torch.fft and numpy's float64
FFT, and its angle() against torch.atan2, including the sign-of-zero trap at the self-conjugate bins."""

import math

import numpy as np
import pytest
import torch

from depthmaster_ros.model import real_dft

from fft_trap import TRAP_GRIDS, trapped_bins

GRIDS = [(8, 10), (9, 12), (5, 7), (6, 19), (12, 16), (17, 24), (1, 4), (3, 1)]


def self_conjugate(height, width):
    rows = [0, height // 2] if height % 2 == 0 else [0]
    cols = [0, width // 2] if width % 2 == 0 else [0]
    return {(r, c) for r in rows for c in cols}


@pytest.mark.parametrize("size", GRIDS)
def test_rfft2_and_irfft2_equal_torch_fft(size):
    torch.manual_seed(0)
    x = torch.randn(3, 5, *size)
    spectrum = torch.fft.rfft2(x, norm="ortho")
    re, im = real_dft.rfft2(x)
    assert re.shape == im.shape == spectrum.shape
    assert (re - spectrum.real).abs().max() < 1e-6 and (im - spectrum.imag).abs().max() < 1e-6
    # Any half spectrum (also with imaginary parts at DC / Nyquist, which a real signal cannot have and both ignore).
    z = torch.randn(3, 5, size[0], size[1] // 2 + 1, dtype=torch.complex64)
    expected = torch.fft.irfft2(z, s=size, norm="ortho")
    assert (real_dft.irfft2(z.real, z.imag, size) - expected).abs().max() < 1e-6
    assert (real_dft.irfft2(re, im, size) - x).abs().max() < 1e-6  # round trip


@pytest.mark.parametrize("size", [(8, 10), (7, 9), (48, 64)])
def test_float64_against_numpy(size):
    """The formula itself, independently of torch.fft: numpy's float64 FFT to 1e-12."""
    x = np.random.default_rng(1).standard_normal((2, *size))
    re, im = real_dft.rfft2(torch.from_numpy(x))
    expected = np.fft.rfft2(x, norm="ortho")
    assert np.abs(re.numpy() - expected.real).max() < 1e-12 and np.abs(im.numpy() - expected.imag).max() < 1e-12
    back = real_dft.irfft2(torch.from_numpy(expected.real), torch.from_numpy(expected.imag), size)
    assert np.abs(back.numpy() - x).max() < 1e-12


@pytest.mark.parametrize("size", [(8, 10), (9, 12), (48, 64)])
def test_self_conjugate_bins_are_real_with_a_positive_zero(size):
    x = torch.randn(4, 16, *size, generator=torch.Generator().manual_seed(2))
    re, im = real_dft.rfft2(x)
    bins = self_conjugate(*size)
    mask = torch.zeros(size[0], size[1] // 2 + 1, dtype=torch.bool)
    for r, c in bins:
        mask[r, c] = True
    assert torch.equal(real_dft.dft_matrices(*size).real_bins, mask)
    assert torch.all(im[..., mask] == 0) and not torch.signbit(im[..., mask]).any()
    # the angle there is 0 or +pi, never -pi
    angles = real_dft.angle(re, im)[..., mask]
    assert torch.all((angles == 0) | (angles == torch.tensor(math.pi)))
    assert (angles == torch.tensor(math.pi)).sum() > 0  # some are negative: the case that matters was met


def test_the_sign_of_zero_trap():
    """On some grids pocketfft leaves a negative imaginary part (rounding residues of 1e-9..1e-7) at some self-conjugate
    bins, whose exact value is 0 (which grids depends on the CPU: fft_trap.TRAP_GRIDS); where the real part is negative
    torch.angle then gives -pi, while the exact spectrum (and the matrix form) gives +pi. With torch's imaginary parts
    there made +0.0, the two forms agree everywhere (to the spectrum's rounding: the angle of a bin is known to |error|
    / |bin|)."""
    met = 0
    for size in TRAP_GRIDS:
        x = torch.randn(2, 64, *size, generator=torch.Generator().manual_seed(0))
        spectrum = torch.fft.rfft2(x, norm="ortho")
        re, im = real_dft.rfft2(x)
        mask = real_dft.dft_matrices(*size).real_bins
        assert torch.all(real_dft.angle(re, im)[mask & (re < 0)] == torch.tensor(math.pi))
        trapped = trapped_bins(spectrum, size)
        met += int(trapped.sum())
        assert torch.all(spectrum.imag[trapped].abs() < 1e-6) and torch.all(spectrum.angle()[trapped] < -math.pi + 1e-5)
        fixed = torch.complex(spectrum.real, torch.where(mask, torch.zeros_like(spectrum.imag), spectrum.imag))
        assert ((fixed.angle() - real_dft.angle(re, im)).abs() * fixed.abs()).max() < 2e-6, size
    if not met:
        pytest.skip("this machine's FFT gives exact zeros at the self-conjugate bins of every candidate grid")


def test_angle_equals_atan2():
    values = torch.randn(2, 1000, generator=torch.Generator().manual_seed(3)) * torch.tensor([[1.0], [1e-3]])
    re, im = values
    assert (real_dft.angle(re, im) - torch.atan2(im, re)).abs().max() < 1e-6
    axes_re = torch.tensor([1.0, -1.0, 0.0, 0.0, 0.0, -2.0, 3.0, -1e-30, 1e30])
    axes_im = torch.tensor([0.0, 0.0, 1.0, -1.0, 0.0, 1e-30, -1e-30, 1.0, -1.0])
    assert torch.allclose(real_dft.angle(axes_re, axes_im), torch.atan2(axes_im, axes_re), atol=2.5e-7, rtol=0)
    # a negative zero counts as a positive one: a real negative number's angle is +pi
    assert real_dft.angle(torch.tensor([-1.0]), torch.tensor([-0.0])).item() == pytest.approx(math.pi, abs=1e-7)
    assert torch.atan2(torch.tensor([-0.0]), torch.tensor([-1.0])).item() == pytest.approx(-math.pi)


def test_matrices_are_cached_per_size_device_and_dtype_and_usable_with_autograd():
    with torch.inference_mode():
        first = real_dft.dft_matrices(6, 10)
    assert real_dft.dft_matrices(6, 10) is first
    assert real_dft.dft_matrices(6, 10, dtype=torch.float64) is not first
    assert real_dft.dft_matrices(6, 10, dtype=torch.float64).row_cos.dtype == torch.float64
    assert not first.row_cos.is_inference()  # built under inference_mode, still usable by training
    x = torch.randn(2, 3, 6, 10, requires_grad=True)
    re, im = real_dft.rfft2(x)
    real_dft.irfft2(re * 2, im * 2, (6, 10)).sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, 2.0), atol=1e-5)  # d(sum(2x))/dx
