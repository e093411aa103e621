"""The DepthMaster U-Net = stock diffusers U-Net + FE at the mid block, and nothing else."""

import torch
from diffusers import UNet2DConditionModel

from depthmaster_ros.model import attach_fourier_enhancement, build_depthmaster_unet
from depthmaster_ros.model.architectures import TINY_UNET_CONFIG

from test_fourier_enhancement import FE_KEYS, reference_fe


def test_fe_width_is_last_block_channels_and_keys_are_official():
    torch.manual_seed(0)
    unet = build_depthmaster_unet(TINY_UNET_CONFIG)
    assert unet.fftblock.channels == TINY_UNET_CONFIG["block_out_channels"][-1] == 64
    fe_keys = {k[len("fftblock."):] for k in unet.state_dict() if k.startswith("fftblock.")}
    assert fe_keys == FE_KEYS


def test_differs_from_plain_unet_exactly_by_fe_at_mid_block():
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(TINY_UNET_CONFIG).eval()
    handle = attach_fourier_enhancement(unet)
    latent = torch.randn(2, 4, 12, 16)
    text = torch.randn(1, 2, TINY_UNET_CONFIG["cross_attention_dim"]).expand(2, -1, -1)
    with torch.no_grad():
        with_fe = unet(latent, 1, encoder_hidden_states=text).sample

        handle.remove()  # same weights, now a plain diffusers U-Net
        plain = unet(latent, 1, encoder_hidden_states=text).sample

        # The plain U-Net with the independent FE formula spliced in at the mid-block output.
        block = unet.fftblock
        unet.mid_block.register_forward_hook(
            lambda _m, _a, out: torch.from_numpy(reference_fe(block, out.double().numpy())).float()
        )
        spliced = unet(latent, 1, encoder_hidden_states=text).sample

    assert (with_fe - plain).abs().max() > 1e-2
    assert torch.allclose(with_fe, spliced, atol=1e-5)
