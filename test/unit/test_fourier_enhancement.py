"""FourierEnhancement against an independent re-statement (numpy FFT in float64, hand-written GroupNorm/SiLU), in
both DFT forms (matrix products, the default; torch.fft, the official code's), and the two forms against each
other."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depthmaster_ros.model import FourierEnhancement, real_dft
from depthmaster_ros.model.fourier_enhancement import DFT_FORMS

from fft_trap import TRAP_GRIDS, trapped_bins

FE_KEYS = {f"{name}.{p}" for name in ("norm", "conv_f1", "conv_f2", "conv_f4", "conv_f3", "conv_s1", "conv_s2",
                                       "fuse") for p in ("weight", "bias")}


def silu(x):
    return x / (1.0 + np.exp(-x))


def conv(x, layer):
    """Conv in float64 with the layer's weights (torch used only as a convolution calculator)."""
    w = layer.weight.detach().double()
    b = layer.bias.detach().double()
    return F.conv2d(torch.from_numpy(x), w, b, padding=w.shape[-1] // 2).numpy()


def reference_fe(block: FourierEnhancement, m: np.ndarray) -> np.ndarray:
    """The spec (depthmaster-method.md 2.5) written out independently of the module."""
    groups = block.norm.num_groups
    b, c, h, w = m.shape
    g = m.reshape(b, groups, -1)
    g = (g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + block.norm.eps)
    x0 = g.reshape(b, c, h, w) * block.norm.weight.detach().double().numpy()[None, :, None, None] \
        + block.norm.bias.detach().double().numpy()[None, :, None, None]
    a = silu(conv(x0, block.conv_f1))
    spectrum = np.fft.rfft2(a, axes=(-2, -1), norm="ortho")
    # Bins that are their own conjugate (DC / Nyquist in both axes) are exactly real for a real input; the float
    # FFT may leave a tiny imaginary part whose sign flips angle() between +pi and -pi. Use the exact value.
    for kh in {0, h // 2} if h % 2 == 0 else {0}:
        for kw in {0, w // 2} if w % 2 == 0 else {0}:
            spectrum[..., kh, kw] = spectrum[..., kh, kw].real
    amp = silu(conv(np.abs(spectrum), block.conv_f2))
    pha = silu(conv(np.arctan2(spectrum.imag, spectrum.real), block.conv_f4))
    rebuilt = amp * np.cos(pha) + 1j * amp * np.sin(pha)
    back = np.fft.irfft2(rebuilt, s=(h, w), axes=(-2, -1), norm="ortho")
    xf = conv(back + a, block.conv_f3)
    xs = conv(silu(conv(x0, block.conv_s1)), block.conv_s2) + x0
    return conv(np.concatenate([xs, xf], axis=1), block.fuse)


@pytest.mark.parametrize("dft", DFT_FORMS)
@pytest.mark.parametrize("size", [(8, 10), (6, 19), (9, 12), (5, 7)])
def test_matches_independent_formula(size, dft):
    torch.manual_seed(0)
    block = FourierEnhancement(channels=16, groups=8, dft=dft).eval()
    m = torch.randn(2, 16, *size)
    with torch.no_grad():
        out = block(m).numpy()
    expected = reference_fe(block, m.double().numpy())
    assert out.shape == (2, 16, *size)
    # float32 module vs float64 reference.
    assert np.abs(out - expected).max() < 1e-5


def spectrum_input(block, m):
    """The frequency branch's input ``a`` (what the block transforms)."""
    return block.act_f1(block.conv_f1(block.norm(m)))


@pytest.mark.parametrize("size", [(8, 10), (9, 12), (12, 16), (5, 7), (6, 19), (17, 24)])
def test_matmul_form_equals_fft_form(size):
    """Wherever torch's FFT gives the self-conjugate bins with a negative real part a +0.0 imaginary part (checked),
    the default form is the official torch.fft form within 1e-6: odd and even grids, the mid-block grids of 480x640
    (8x10), 513x768 (9x12), 768x1024 (12x16) and 1080x1536 at 768 (17x24), a batch of 3."""
    torch.manual_seed(0)
    block = FourierEnhancement(channels=16, groups=8).eval()
    m = torch.randn(3, 16, *size)
    with torch.no_grad():
        spectrum = torch.fft.rfft2(spectrum_input(block, m), norm="ortho")
        if trapped_bins(spectrum, size).any():
            pytest.skip(f"this machine's FFT leaves negative residues at {size}'s self-conjugate bins (tested above)")
        default = block(m)
        block.dft = "fft"
        official = block(m)
    assert block.dft == "fft" and FourierEnhancement(16).dft == "matmul"
    assert (default - official).abs().max() < 1e-6 and official.abs().max() > 0.1


def test_matmul_form_keeps_the_exact_phase_where_the_fft_does_not():
    """Grids where pocketfft may leave negative rounding residues in the imaginary part of some exactly real bins (which
    grids depends on the CPU: fft_trap.TRAP_GRIDS; 48x64 is a 3072x4096 image at its native size): the default form
    equals the float64 formula (which takes those bins as real) on every grid; where torch's FFT left such a residue at
    a bin with a negative real part, the torch.fft form jumps by 2 pi in the phase there and moves the output."""
    torch.manual_seed(0)
    block = FourierEnhancement(channels=16, groups=8).eval()
    trapped_grids = []
    for size in TRAP_GRIDS:
        m = torch.randn(2, 16, *size)
        with torch.no_grad():
            spectrum = torch.fft.rfft2(spectrum_input(block, m), norm="ortho")
            trapped = trapped_bins(spectrum, size)
            block.dft = "matmul"
            default = block(m).numpy()
            block.dft = "fft"
            official = block(m).numpy()
        expected = reference_fe(block, m.double().numpy())
        assert np.abs(default - expected).max() < 1e-5, size
        if trapped.sum() > 0:
            trapped_grids.append(size)
            assert np.abs(official - expected).max() > 1e-4, size  # 8.9e-4 on 48x64: five bins of 1584, 2 pi off
    if not trapped_grids:
        pytest.skip("this machine's FFT gives exact zeros at the self-conjugate bins of every candidate grid")


def test_the_forms_have_the_same_gradients():
    """Training runs the default form: its gradients are the torch.fft form's."""
    torch.manual_seed(0)
    grads = {}
    for dft in DFT_FORMS:
        torch.manual_seed(0)
        block = FourierEnhancement(channels=16, groups=8, dft=dft)
        m = torch.randn(2, 16, 6, 7, requires_grad=True)
        (block(m) ** 2).sum().backward()
        grads[dft] = (m.grad, block.conv_f4.weight.grad)
    for ours, theirs in zip(grads["matmul"], grads["fft"]):
        assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4)


def test_state_dict_keys_match_official_checkpoint():
    assert set(FourierEnhancement(16).state_dict()) == FE_KEYS
    shapes = {k: tuple(v.shape) for k, v in FourierEnhancement(1280).state_dict().items()}
    assert shapes["conv_f1.weight"] == (1280, 1280, 3, 3)
    assert shapes["conv_f3.weight"] == (1280, 1280, 1, 1)
    assert shapes["fuse.weight"] == (1280, 2560, 1, 1)
    assert sum(int(np.prod(s)) for s in shapes.values()) == 78_654_720  # the spec's parameter count


@pytest.mark.parametrize("dft", DFT_FORMS)
def test_dfts_run_in_float32_for_half_inputs(monkeypatch, dft):
    torch.manual_seed(1)
    block = FourierEnhancement(16, dft=dft).eval()
    seen = []
    module = torch.fft if dft == "fft" else real_dft
    real_rfft2, real_irfft2 = module.rfft2, module.irfft2
    monkeypatch.setattr(module, "rfft2", lambda x, *a, **k: seen.append(x.dtype) or real_rfft2(x, *a, **k))
    monkeypatch.setattr(module, "irfft2", lambda x, *a, **k: seen.append(x.dtype) or real_irfft2(x, *a, **k))
    m = torch.randn(1, 16, 8, 10)
    with torch.no_grad():
        out_bf16 = block(m.bfloat16())
        out_fp32 = block(m)
    assert out_bf16.dtype == torch.bfloat16
    assert seen[:2] == ([torch.float32, torch.complex64] if dft == "fft" else [torch.float32, torch.float32])
    # bf16 only at the block's input/output: result is the fp32 one within bf16 rounding of input and output.
    assert torch.allclose(out_bf16.float(), out_fp32, atol=0.05, rtol=0.02)


def test_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=r"\[B, 16, H, W\].*\(1, 8, 4, 4\)"):
        FourierEnhancement(16)(torch.zeros(1, 8, 4, 4))
    with pytest.raises(ValueError, match="divisible"):
        FourierEnhancement(12, groups=8)
    with pytest.raises(ValueError, match="dft must be one of matmul, fft, got 'dft'"):
        FourierEnhancement(16, dft="dft")
