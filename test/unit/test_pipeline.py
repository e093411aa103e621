"""DepthMasterPipeline end to end on the tiny checkpoint: sizes, range, determinism, batching, and the
stage-by-stage computation against diffusers' own high-level calls."""

import numpy as np
import pytest
import torch
from transformers import CLIPTextModel, CLIPTokenizer

from depthmaster_ros.model import DepthMasterPipeline
from depthmaster_ros.model.resize import processing_size


def record_processing_sizes(pipe):
    sizes = []
    handle = pipe.vae.encoder.register_forward_pre_hook(lambda _m, args: sizes.append(tuple(args[0].shape[-2:])))
    return sizes, handle


def test_428x640_runs_at_513x768_and_returns_input_size(pipeline, rng):
    image = rng.integers(0, 256, (428, 640, 3), dtype=np.uint8)
    sizes, handle = record_processing_sizes(pipeline)
    try:
        out = pipeline(image)
    finally:
        handle.remove()
    assert sizes == [(513, 768)]
    assert out.shape == (428, 640) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert out.std() > 1e-3  # not a constant map


@pytest.mark.parametrize("hw", [(61, 83), (99, 131), (64, 64)])
def test_native_resolution_and_odd_sizes(pipeline, rng, hw):
    image = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    sizes, handle = record_processing_sizes(pipeline)
    try:
        out = pipeline(image, processing_res=0)
    finally:
        handle.remove()
    assert sizes == [hw]
    assert out.shape == hw and np.isfinite(out).all()


def test_deterministic(pipeline, rng):
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert np.array_equal(pipeline(image, processing_res=96), pipeline(image, processing_res=96))


def test_batch_equals_singles_and_order_is_kept(pipeline, rng):
    images = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    images.insert(1, rng.integers(0, 256, (40, 72, 3), dtype=np.uint8))  # another size in the middle
    singles = [pipeline(image, processing_res=96) for image in images]
    batched = pipeline(images, processing_res=96, batch_size=3)
    assert [b.shape for b in batched] == [(48, 64), (40, 72), (48, 64), (48, 64)]
    for single, batch in zip(singles, batched):
        assert np.abs(single - batch).max() < 1e-5


def test_stages_match_diffusers_high_level_calls(pipeline, tiny_checkpoint, rng):
    """Independent restatement: vae.encode().latent_dist.mode(), unet(t=1, [BOS, EOS] embedding),
    vae.decode(), mean of channels, clip, (x + 1) / 2, resize back."""
    image = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    tokenizer = CLIPTokenizer.from_pretrained(tiny_checkpoint / "tokenizer")
    encoder = CLIPTextModel.from_pretrained(tiny_checkpoint / "text_encoder")
    with torch.no_grad():
        text = encoder(torch.tensor([[tokenizer.bos_token_id, tokenizer.eos_token_id]])).last_hidden_state
        h, w = processing_size(50, 70, 128)
        rgb = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        rgb = torch.nn.functional.interpolate(rgb, (h, w), mode="bilinear", antialias=True).round()
        latent = pipeline.vae.encode(rgb / 127.5 - 1).latent_dist.mode() * 0.18215
        pred_latent = pipeline.unet(latent, torch.tensor([1]), encoder_hidden_states=text).sample
        decoded = pipeline.vae.decode(pred_latent / 0.18215).sample.mean(dim=1, keepdim=True)
        expected = (decoded.clamp(-1, 1) + 1) / 2
        expected = torch.nn.functional.interpolate(expected, (50, 70), mode="bilinear", antialias=True)[0, 0]
    out = pipeline(image, processing_res=128)
    assert np.abs(out - expected.numpy()).max() < 1e-4


def test_timestep_and_prompt_matter(pipeline, rng):
    """Guards the test above: a different timestep or a padded 77-token prompt would change the output."""
    latent = torch.randn(1, 4, 8, 8)
    text = pipeline.empty_text_embedding
    with torch.no_grad():
        at_1 = pipeline.unet(latent, 1, encoder_hidden_states=text).sample
        at_999 = pipeline.unet(latent, 999, encoder_hidden_states=text).sample
        padded = pipeline.unet(latent, 1, encoder_hidden_states=torch.cat([text, text[:, -1:].expand(1, 75, -1)], 1)).sample
    assert (at_1 - at_999).abs().max() > 1e-3
    assert (at_1 - padded).abs().max() > 1e-3


def test_bf16_keeps_fe_in_float32_and_stays_close(tiny_checkpoint, pipeline, rng):
    pipe = DepthMasterPipeline.from_pretrained(tiny_checkpoint, device="cpu", dtype="bf16")
    assert pipe.unet.conv_in.weight.dtype == torch.bfloat16 and pipe.vae.decoder.conv_out.weight.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in pipe.unet.fftblock.parameters())
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    fast, reference = pipe(image, processing_res=64), pipeline(image, processing_res=64)
    assert fast.dtype == np.float32
    assert np.abs(fast - reference).mean() < 0.02


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((10, 10, 3), np.float32), "expected an H x W x 3 uint8 RGB array, got float32"),
        (np.zeros((10, 10), np.uint8), r"shape \(10, 10\)"),
        (np.zeros((10, 10, 4), np.uint8), r"shape \(10, 10, 4\)"),
        (np.zeros((0, 10, 3), np.uint8), "empty image"),
    ],
)
def test_bad_input_is_a_clear_error(pipeline, bad, message):
    with pytest.raises(ValueError, match=message):
        pipeline(bad)


def test_wrong_type_and_batch_size(pipeline):
    with pytest.raises(TypeError, match="got list"):
        pipeline([[1, 2, 3]])
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        pipeline(np.zeros((8, 8, 3), np.uint8), batch_size=0)
