"""Architecture configs: the published model's (Stable Diffusion 2 U-Net and VAE, depthmaster-method.md 3.3) and a
toy-width version of the same structure for tests, plus random-weight pipelines built in memory (benchmarks:
cost does not depend on the weights)."""

from __future__ import annotations

import torch

SD2_UNET_CONFIG = {
    "sample_size": 96,
    "in_channels": 4,
    "out_channels": 4,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "only_cross_attention": False,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-05,
    "cross_attention_dim": 1024,
    "attention_head_dim": [5, 10, 20, 20],
    "dual_cross_attention": False,
    "use_linear_projection": True,
    "class_embed_type": None,
    "num_class_embeds": None,
    "upcast_attention": False,
    "resnet_time_scale_shift": "default",
}
SD2_VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 768,
    "scaling_factor": 0.18215,
}

# SD2's architecture at toy width: same block types and depth (so the latent is image/8 and the mid block
# image/64, with the same odd-size behaviour), fewer channels and layers.
TINY_UNET_CONFIG = {
    **SD2_UNET_CONFIG,
    "sample_size": 32,
    "block_out_channels": [32, 32, 64, 64],
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "cross_attention_dim": 32,
    "attention_head_dim": [2, 2, 4, 4],
}
TINY_VAE_CONFIG = {
    **SD2_VAE_CONFIG,
    "block_out_channels": [16, 32, 32, 32],
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_size": 64,
}
TINY_TEXT_ENCODER_CONFIG = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-05,
    "projection_dim": 32,
}

PRESETS = {"full": (SD2_UNET_CONFIG, SD2_VAE_CONFIG), "tiny": (TINY_UNET_CONFIG, TINY_VAE_CONFIG)}


def random_pipeline(preset: str = "tiny", device=None, dtype=None, seed: int = 0):
    """A DepthMasterPipeline with random weights for the ``full`` (published) or ``tiny`` architecture."""
    from diffusers import AutoencoderKL

    from .pipeline import DepthMasterPipeline
    from .unet import build_depthmaster_unet

    unet_config, vae_config = PRESETS[preset]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = build_depthmaster_unet(unet_config)
        vae = AutoencoderKL.from_config(vae_config)
        embedding = torch.randn(1, 2, unet_config["cross_attention_dim"])
    return DepthMasterPipeline(unet, vae, embedding, device=device, dtype=dtype, source=f"random-{preset}",
                               random_weights=True)
