"""Floating-point work of the model per stage, counted on the meta device (no memory, no time; the CPU flop
counter misses fused SDPA attention on real tensors, the meta path counts it)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def stage_flops(unet_config: dict, vae_config: dict, batch: int, height: int, width: int) -> dict[str, float]:
    """FLOPs of encode, U-Net and decode for a batch of ``height`` x ``width`` images at the processing size."""
    from diffusers import AutoencoderKL

    from .acceleration import fold_channel_mean
    from .pipeline import DepthMasterPipeline
    from .unet import build_depthmaster_unet

    with torch.device("meta"):
        unet = build_depthmaster_unet(unet_config)
        vae = AutoencoderKL.from_config(vae_config)
        embedding = torch.zeros(1, 2, unet_config["cross_attention_dim"])
    pipe = DepthMasterPipeline(unet, vae, embedding, device="meta", dtype=torch.float32)
    fold_channel_mean(pipe.vae)
    flops = {}
    with torch.no_grad():
        x = torch.zeros(batch, 3, height, width, device="meta")
        for name, stage in (("encode", pipe.encode), ("unet", pipe.predict_latent), ("decode", pipe.decode)):
            with FlopCounterMode(display=False) as counter:
                x = stage(x)
            flops[name] = float(counter.get_total_flops())
    return flops
