"""depthmaster-make-tiny-checkpoint: write a random-weight checkpoint in the official layout (for tests/demos)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="depthmaster-make-tiny-checkpoint",
        description="Write a tiny DepthMaster checkpoint with RANDOM weights, in the layout of zysong212/DepthMaster. "
        "Its outputs are meaningless; it lets the software run without the real weights.",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write (created)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the weights (default 0)")
    parser.add_argument("--unet-format", choices=["bin", "safetensors"], default="bin",
                        help="U-Net weights file format (default bin, as published)")
    parser.add_argument("--text-encoder-layout", choices=["transformers4", "transformers5"], default="transformers4",
                        help="key layout of the text encoder weights (default transformers4, as published)")
    args = parser.parse_args(argv)

    from ..samples.tiny_checkpoint import write_tiny_checkpoint

    path = write_tiny_checkpoint(args.out_dir, args.seed, args.unet_format, args.text_encoder_layout)
    print(f"wrote a tiny DepthMaster checkpoint with RANDOM weights to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
