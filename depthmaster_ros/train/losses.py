"""The training losses, as the reference code computes them (depthmaster-method.md 4.3 to 4.5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LATENT_FACTOR = 8  # VAE downsampling: one latent cell per 8x8 pixels


def latent_valid_mask(valid: torch.Tensor, channels: int = 4) -> torch.Tensor:
    """Stage 1's latent mask: a latent cell counts only if all of its 8x8 pixels are valid.
    ``valid``: [B, 1, H, W] bool -> [B, channels, H/8, W/8] bool."""
    invalid = F.max_pool2d((~valid).float(), kernel_size=LATENT_FACTOR, stride=LATENT_FACTOR)
    return (invalid == 0).expand(-1, channels, -1, -1)


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(prediction[mask].float(), target[mask].float())


def feature_alignment_kl(unet_features: torch.Tensor, encoder_features: torch.Tensor) -> torch.Tensor:
    """KL(encoder || U-Net) of the channel-wise softmaxes of [B, N, C] token features, averaged over all
    B x N x C elements (what ``kl_div``'s element-wise 'mean' reduction gives; written out because that
    reduction warns on every call)."""
    log_q = F.log_softmax(unet_features.float(), dim=-1)
    log_p = F.log_softmax(encoder_features.float(), dim=-1)
    return (log_p.exp() * (log_p - log_q)).mean()


def directional_differences(x: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] -> [B, 4, H-1, W-1]: horizontal, vertical, 45 and 135 degree differences."""
    return torch.cat([
        x[..., 1:, 1:] - x[..., 1:, :-1],
        x[..., 1:, 1:] - x[..., :-1, 1:],
        x[..., :-1, 1:] - x[..., 1:, :-1],
        x[..., 1:, 1:] - x[..., :-1, :-1],
    ], dim=1)


def reversed_huber(error: torch.Tensor, delta: float = 0.2) -> torch.Tensor:
    """Quadratic above ``delta``, linear below (an L2 emphasis on the large gradient errors at edges):
    ``0.5 e^2`` if ``|e| > delta`` else ``delta |e| + 0.5 delta^2`` (the reference's current form; an earlier one
    subtracted 0.5 delta^2, which changes no gradient)."""
    magnitude = error.abs()
    return torch.where(magnitude > delta, 0.5 * error**2, delta * magnitude + 0.5 * delta**2)


def gradient_loss(prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, delta: float = 0.2):
    """Stage 2's gradient term: invalid pixels set to 0 in both maps, 4-direction differences, the reversed
    Huber of their differences, mean over all elements (no mask beyond the zeroing)."""
    zero = torch.zeros((), dtype=prediction.dtype, device=prediction.device)
    prediction = torch.where(valid, prediction, zero)
    target = torch.where(valid, target, zero.to(target.dtype))
    return reversed_huber(directional_differences(prediction) - directional_differences(target), delta).mean()
