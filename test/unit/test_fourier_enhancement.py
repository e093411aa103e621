"""FourierEnhancement against an independent re-statement (numpy FFT in float64, hand-written GroupNorm/SiLU)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depthmaster_ros.model import FourierEnhancement

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


@pytest.mark.parametrize("size", [(8, 10), (6, 19), (9, 12), (5, 7)])
def test_matches_independent_formula(size):
    torch.manual_seed(0)
    block = FourierEnhancement(channels=16, groups=8).eval()
    m = torch.randn(2, 16, *size)
    with torch.no_grad():
        out = block(m).numpy()
    expected = reference_fe(block, m.double().numpy())
    assert out.shape == (2, 16, *size)
    # float32 module vs float64 reference.
    assert np.abs(out - expected).max() < 1e-5


def test_state_dict_keys_match_official_checkpoint():
    assert set(FourierEnhancement(16).state_dict()) == FE_KEYS
    shapes = {k: tuple(v.shape) for k, v in FourierEnhancement(1280).state_dict().items()}
    assert shapes["conv_f1.weight"] == (1280, 1280, 3, 3)
    assert shapes["conv_f3.weight"] == (1280, 1280, 1, 1)
    assert shapes["fuse.weight"] == (1280, 2560, 1, 1)
    assert sum(int(np.prod(s)) for s in shapes.values()) == 78_654_720  # the spec's parameter count


def test_fft_runs_in_float32_for_half_inputs(monkeypatch):
    torch.manual_seed(1)
    block = FourierEnhancement(16).eval()
    seen = []
    real_rfft2, real_irfft2 = torch.fft.rfft2, torch.fft.irfft2
    monkeypatch.setattr(torch.fft, "rfft2", lambda x, *a, **k: seen.append(x.dtype) or real_rfft2(x, *a, **k))
    monkeypatch.setattr(torch.fft, "irfft2", lambda x, *a, **k: seen.append(x.dtype) or real_irfft2(x, *a, **k))
    m = torch.randn(1, 16, 8, 10)
    with torch.no_grad():
        out_bf16 = block(m.bfloat16())
        out_fp32 = block(m)
    assert out_bf16.dtype == torch.bfloat16
    assert seen[:2] == [torch.float32, torch.complex64]
    # bf16 only at the block's input/output: result is the fp32 one within bf16 rounding of input and output.
    assert torch.allclose(out_bf16.float(), out_fp32, atol=0.05, rtol=0.02)


def test_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=r"\[B, 16, H, W\].*\(1, 8, 4, 4\)"):
        FourierEnhancement(16)(torch.zeros(1, 8, 4, 4))
    with pytest.raises(ValueError, match="divisible"):
        FourierEnhancement(12, groups=8)
