"""Stage 1's Feature Alignment (depthmaster-method.md 4.4): the U-Net's mid-block features, through a small MLP,
are pulled towards a frozen DINOv2 encoder's patch tokens of the same image.

* Encoder input (as the reference, a quirk kept on purpose): ImageNet normalisation applied to the [-1, 1] image,
  then a x0.875 bicubic resize so that a 14-pixel patch grid is half the latent grid.
* Encoder output: the final-layer-normed patch tokens (``last_hidden_state`` without the CLS and register tokens),
  laid out on their patch grid and resized bicubically to the mid-block grid.
* Adapter: Linear(mid channels -> 1536) - SiLU - Linear(1536 -> 1536) - SiLU - Linear(1536 -> encoder width).
* Loss: ``losses.feature_alignment_kl`` (KL(encoder || U-Net) of channel softmaxes, mean over all elements).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DINO_SCALE = 0.875


class FeatureAdapter(nn.Module):
    def __init__(self, in_channels: int = 1280, hidden: int = 1536, out_channels: int = 1536):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(in_channels, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                    nn.Linear(hidden, out_channels))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """[B, C, h, w] mid-block features -> [B, h*w, out] tokens."""
        return self.layers(features.flatten(2).transpose(1, 2))


class DinoTargets(nn.Module):
    """A frozen DINOv2 (transformers) turning [-1, 1] images into token targets on the mid-block grid."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.patch = encoder.config.patch_size
        self.extra_tokens = 1 + getattr(encoder.config, "num_register_tokens", 0)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def width(self) -> int:
        return self.encoder.config.hidden_size

    @torch.no_grad()
    def forward(self, rgb_norm: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        x = (rgb_norm.float() - self.mean) / self.std
        x = F.interpolate(x, scale_factor=DINO_SCALE, mode="bicubic", align_corners=False)
        h, w = x.shape[-2] // self.patch, x.shape[-1] // self.patch
        x = x[..., : h * self.patch, : w * self.patch]
        tokens = self.encoder(pixel_values=x.to(next(self.encoder.parameters()).dtype)).last_hidden_state
        tokens = tokens[:, self.extra_tokens:].float()
        maps = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)
        maps = F.interpolate(maps, size=grid, mode="bicubic", align_corners=False)
        return maps.flatten(2).transpose(1, 2)


def load_dino(name_or_path: str, allow_download: bool = False) -> DinoTargets:
    from transformers import AutoModel

    try:
        encoder = AutoModel.from_pretrained(name_or_path, local_files_only=not allow_download)
    except Exception as exc:
        raise ValueError(f"cannot load the feature-alignment encoder '{name_or_path}': {exc}. It is a DINOv2 model "
                         "(default facebook/dinov2-giant): download it once with `hf download "
                         "facebook/dinov2-giant` or set feature_alignment.allow_download: true") from exc
    if not hasattr(encoder.config, "patch_size"):
        raise ValueError(f"'{name_or_path}' is not a ViT-style encoder with a patch size (expected DINOv2)")
    return DinoTargets(encoder)


class MidBlockCapture:
    """Keeps the U-Net mid block's output of the last forward pass (the features stage 1 aligns)."""

    def __init__(self, unet):
        self.features: torch.Tensor | None = None
        self.handle = unet.mid_block.register_forward_hook(self._keep)

    def _keep(self, _module, _args, output):
        self.features = output

    def remove(self) -> None:
        self.handle.remove()
