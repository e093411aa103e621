"""The Fourier Enhancement's two DFT forms on a whole model: matrix products (the default) against torch.fft (the
official code's), on a photograph, at two processing sizes. The measurement behind docs/method.md, section 1.

    python scripts/fe_forms.py --image PHOTO [--preset full|tiny] [--processing-res 0,768]

For each processing size: the sign of torch.fft's imaginary part at the self-conjugate bins of the FE's input
(negative with a negative real part = a phase of -pi where the exact spectrum has +pi), the FE block's output,
and, at the first size, the U-Net's output and the relative map, each as the largest difference between the forms.
The full architecture with random weights needs about 6 GB and minutes per pass on a CPU.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image

from depthmaster_ros.model import real_dft
from depthmaster_ros.model.architectures import random_pipeline
from depthmaster_ros.model.pipeline import normalise, to_input_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", required=True, help="an RGB photograph")
    parser.add_argument("--preset", choices=("full", "tiny"), default="full", help="architecture (random weights)")
    parser.add_argument("--processing-res", default="0,768", help="comma-separated processing resolutions")
    args = parser.parse_args()
    with Image.open(args.image) as image:
        rgb = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)[None].contiguous()
    pipe = random_pipeline(args.preset, device="cpu", dtype="fp32")
    block = pipe.unet.fftblock
    for index, res in enumerate(int(r) for r in args.processing_res.split(",")):
        captured = {}
        hook = pipe.unet.mid_block.register_forward_hook(lambda m, a, out: captured.setdefault("mid", out.clone()))
        with torch.inference_mode():
            image = normalise(rgb, res, pipe.device, pipe.dtype)
            latent = pipe.encode(image)
            block.dft = "matmul"
            ours = pipe.predict_latent(latent)
            hook.remove()
            mid = captured["mid"]
            spectrum = torch.fft.rfft2(block.act_f1(block.conv_f1(block.norm(mid))), norm="ortho")
            bins = real_dft.dft_matrices(*mid.shape[-2:]).real_bins
            negative = torch.signbit(spectrum.imag) & bins
            block_ours = block(mid)
            block.dft = "fft"
            block_fft = block(mid)
            print(f"processing {image.shape[-2]}x{image.shape[-1]} (HxW), FE grid {tuple(mid.shape[-2:])} x "
                  f"{mid.shape[1]} channels: torch.fft's imaginary part at the {int(bins.sum())} self-conjugate bins "
                  f"per channel: {int(negative.sum())} of {int(bins.sum()) * mid.shape[1]} negative, "
                  f"{int((negative & (spectrum.real < 0)).sum())} with a negative real part; FE output |matmul - fft| "
                  f"max {float((block_ours - block_fft).abs().max()):.2e} (of {float(block_ours.abs().max()):.3g})")
            if index == 0:
                official = pipe.predict_latent(latent)
                maps = [to_input_size(pipe.decode(x), rgb.shape[-2:]) for x in (ours, official)]
                print(f"  U-Net output |matmul - fft| max {float((ours - official).abs().max()):.2e}; relative map "
                      f"|matmul - fft| max {float((maps[0] - maps[1]).abs().max()):.2e}")
        block.dft = "matmul"


if __name__ == "__main__":
    main()
