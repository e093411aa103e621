"""Resize rules: processing size (official truncation), uint8 resize (checked against PIL), output resize."""

import numpy as np
import pytest
import torch
from PIL import Image

from depthmaster_ros.model.resize import processing_size, resize_bilinear, resize_uint8_values


@pytest.mark.parametrize(
    "hw, res, expected",
    [
        ((428, 640), 768, (513, 768)),   # f = 1.2, int(428 * 1.2) = int(513.6)
        ((480, 640), 0, (480, 640)),     # 0 = native
        ((480, 640), 768, (576, 768)),   # upscaled
        ((352, 1216), 768, (222, 768)),  # int(352 * 0.6315...) = 222
        ((4032, 6048), 756, (504, 756)),  # ETH3D
        ((768, 1024), 640, (480, 640)),  # DIODE
        ((333, 1000), 768, (255, 768)),  # int(333 * 0.768) = int(255.744)
        ((100, 50), 768, (768, 384)),
    ],
)
def test_processing_size(hw, res, expected):
    assert processing_size(*hw, res) == expected


def test_processing_size_rejects_bad_values():
    with pytest.raises(ValueError, match="positive"):
        processing_size(0, 10, 768)
    with pytest.raises(ValueError, match=">= 0"):
        processing_size(10, 10, -1)
    with pytest.raises(ValueError, match="would be resized to 0x"):
        processing_size(1, 1000, 10)


@pytest.mark.parametrize("size", [(513, 768), (200, 300), (107, 160)])
def test_uint8_resize_matches_pil_bilinear_antialias(size, rng):
    image = rng.integers(0, 256, (428, 640, 3), dtype=np.uint8)
    ours = resize_uint8_values(torch.from_numpy(image).permute(2, 0, 1)[None], size)[0].permute(1, 2, 0).numpy()
    pil = np.asarray(Image.fromarray(image).resize(size[::-1], Image.BILINEAR), dtype=np.float32)
    assert ours.shape == pil.shape
    assert np.array_equal(ours, np.round(ours))  # back on the uint8 grid
    assert np.abs(ours - pil).max() <= 1.0  # PIL rounds in fixed point
    assert np.abs(ours - pil).mean() < 0.25


def test_same_size_is_identity_and_constant_stays_constant():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7) % 256
    assert torch.equal(resize_uint8_values(x, (5, 7)), x)
    constant = torch.full((1, 3, 40, 60), 77.0)
    assert torch.equal(resize_uint8_values(constant, (23, 31)), torch.full((1, 3, 23, 31), 77.0))
    assert torch.allclose(resize_bilinear(torch.full((1, 1, 9, 9), 0.25), (30, 3)), torch.tensor(0.25))


def test_upscale_of_ramp_is_linear_inside():
    """Bilinear with align_corners=False: sample i of a 2x upscale reads input position (i + 0.5) / 2 - 0.5."""
    ramp = torch.arange(8, dtype=torch.float32).reshape(1, 1, 1, 8).expand(1, 1, 4, 8)
    up = resize_bilinear(ramp, (4, 16))[0, 0, 0]
    positions = (torch.arange(16) + 0.5) / 2 - 0.5
    assert torch.allclose(up[1:-1], positions[1:-1], atol=1e-6)
