"""DepthMaster's resize rules, written out (no torchvision).

* Processing size: the long side becomes ``processing_res`` with ``f = min(R / W, R / H)`` and
  ``(int(H * f), int(W * f))`` (truncation, float arithmetic, as the official code); images smaller than R are
  scaled up; ``processing_res == 0`` keeps the native size. No padding to multiples of 8.
* Input: the uint8 image is resized as float32 with bilinear interpolation and antialiasing
  (``align_corners=False``) and rounded back to integers, which is what torchvision's tensor ``resize`` does
  for uint8 images in the official pipeline.
* Output: the prediction is resized back to the input size the same way, without rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def processing_size(height: int, width: int, processing_res: int) -> tuple[int, int]:
    """(height, width) at which an image of ``height`` x ``width`` is processed."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width} (HxW)")
    if processing_res < 0:
        raise ValueError(f"processing_res must be >= 0 (0 = native size), got {processing_res}")
    if processing_res == 0:
        return height, width
    factor = min(processing_res / width, processing_res / height)
    new_h, new_w = int(height * factor), int(width * factor)
    if new_h < 1 or new_w < 1:
        raise ValueError(
            f"a {height}x{width} image at processing_res {processing_res} would be resized to {new_h}x{new_w}"
        )
    return new_h, new_w


def resize_bilinear(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, antialiased resize of a float ``[B, C, H, W]`` tensor; a no-op at the same size."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def resize_uint8_values(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``[B, 3, H, W]`` uint8 values (given as any float or integer tensor) and round back to the uint8
    grid; returns float32 holding integers in [0, 255]."""
    values = images.float()
    if tuple(values.shape[-2:]) == tuple(size):
        return values
    return resize_bilinear(values, size).round().clamp_(0, 255)
