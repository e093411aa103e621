"""The fast path's switches keep the model's output (CPU checks; the GPU numbers come from depthmaster-bench)."""

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

from depthmaster_ros.model.acceleration import fold_channel_mean, to_channels_last
from depthmaster_ros.model.architectures import TINY_VAE_CONFIG, random_pipeline


def test_folded_conv_equals_mean_of_three_channels():
    torch.manual_seed(0)
    vae = AutoencoderKL.from_config(TINY_VAE_CONFIG).eval()
    z = torch.randn(2, 4, 6, 7)
    with torch.no_grad():
        reference = vae.decoder(z).mean(dim=1, keepdim=True)
        assert fold_channel_mean(vae) and not fold_channel_mean(vae)  # once
        folded = vae.decoder(z)
    assert folded.shape == (2, 1, 48, 56)
    assert torch.allclose(folded, reference, atol=1e-6)


@pytest.fixture(scope="module")
def reference_and_image():
    pipe = random_pipeline("tiny", device="cpu", seed=3)
    image = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    return pipe(image, processing_res=64), image


def test_channels_last_keeps_the_output(reference_and_image):
    reference, image = reference_and_image
    pipe = random_pipeline("tiny", device="cpu", seed=3)
    to_channels_last(pipe.unet, pipe.vae)
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert np.abs(pipe(image, processing_res=64) - reference).max() < 1e-5


def test_warmup_runs_the_model(monkeypatch):
    pipe = random_pipeline("tiny", device="cpu")
    shapes = []
    original = pipe.predict
    monkeypatch.setattr(pipe, "predict", lambda rgb, res=None: shapes.append(tuple(rgb.shape)) or original(rgb, res))
    pipe.warmup(48, 64, batch=2, processing_res=0)
    assert shapes == [(2, 3, 48, 64)]
