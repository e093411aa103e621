"""The fast inference path's switches, each an exact or bounded change to the same model.

* ``fold_channel_mean``: the VAE decoder's last conv makes 3 channels that the pipeline averages; a conv whose
  weights and bias are the averages gives that mean directly (exact up to float rounding), a third of the work
  of the largest conv and no reduction afterwards.
* ``to_channels_last``: NHWC memory layout for the convolutions (faster cuDNN kernels on tensor cores).
* ``compile_stages``: ``torch.compile`` of the three stages (VAE encoder, U-Net, VAE decoder) with static shapes;
  ``cuda_graphs`` uses the "reduce-overhead" mode, which replays CUDA graphs (the eager U-Net is launch-bound).
  Each processing size compiles once; inductor's cache (``TORCHINDUCTOR_CACHE_DIR``, set to
  ``~/.cache/depthmaster_ros/inductor`` unless given) keeps the kernels across restarts.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn


def fold_channel_mean(vae) -> bool:
    """Replace the decoder's 3-channel output conv by its channel mean; False if already folded."""
    conv = vae.decoder.conv_out
    if conv.out_channels == 1:
        return False
    folded = nn.Conv2d(conv.in_channels, 1, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                       conv.groups, conv.bias is not None, conv.padding_mode, device=conv.weight.device,
                       dtype=conv.weight.dtype)
    with torch.no_grad():
        folded.weight.copy_(conv.weight.mean(dim=0, keepdim=True))
        if conv.bias is not None:
            folded.bias.copy_(conv.bias.mean(dim=0, keepdim=True))
    folded.requires_grad_(False)
    vae.decoder.conv_out = folded
    return True


def to_channels_last(*modules: nn.Module) -> None:
    for module in modules:
        module.to(memory_format=torch.channels_last)


def inductor_cache_dir() -> Path:
    """Where compiled kernels persist (the default under /tmp does not survive a reboot)."""
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(base / "depthmaster_ros" / "inductor")
    return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])


def compile_stages(pipe, cuda_graphs: bool = False) -> None:
    """torch.compile the pipeline's encode, predict_latent and decode (static shapes)."""
    inductor_cache_dir()
    mode = "reduce-overhead" if cuda_graphs else "max-autotune-no-cudagraphs"
    if pipe.device.type != "cuda":
        mode = "default"  # CUDA graphs and GPU autotuning do not apply on the CPU
    for stage in ("encode", "predict_latent", "decode"):
        setattr(pipe, stage, torch.compile(getattr(pipe, stage), mode=mode, dynamic=False, fullgraph=False))
