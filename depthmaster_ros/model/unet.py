"""The DepthMaster U-Net: a stock diffusers ``UNet2DConditionModel`` plus the Fourier Enhancement block.

The FE block is registered as the submodule ``fftblock`` (so the state-dict keys are ``fftblock.*``, exactly as
in the published checkpoint) and applied by a forward hook on ``mid_block``: the hook's return value replaces the
mid-block output, which then flows into the up blocks. With no ControlNet / T2I-adapter residuals (DepthMaster
passes none) this is the same as the official model's inserted line after the mid block, without copying the
1300-line diffusers U-Net file.
"""

from __future__ import annotations

from typing import Any, Mapping

from diffusers import UNet2DConditionModel
from torch.utils.hooks import RemovableHandle

from .fourier_enhancement import FourierEnhancement


def attach_fourier_enhancement(unet: UNet2DConditionModel, block: FourierEnhancement | None = None) -> RemovableHandle:
    """Give ``unet`` an FE block after its mid block; returns the hook handle (``.remove()`` detaches it).

    The block width is the U-Net's last ``block_out_channels`` (1280 for SD2, small in tiny checkpoints).
    """
    if unet.mid_block is None:
        raise ValueError("DepthMaster needs a U-Net with a mid block; this config has mid_block_type=None")
    if block is None:
        block = FourierEnhancement(unet.config.block_out_channels[-1])
    unet.fftblock = block

    def apply_fe(_module, _args, output):
        return unet.fftblock(output)

    return unet.mid_block.register_forward_hook(apply_fe)


def build_depthmaster_unet(config: Mapping[str, Any]) -> UNet2DConditionModel:
    """A randomly initialised DepthMaster U-Net (diffusers U-Net + FE) from a diffusers U-Net config dict."""
    unet = UNet2DConditionModel.from_config(dict(config))
    attach_fourier_enhancement(unet)
    return unet
