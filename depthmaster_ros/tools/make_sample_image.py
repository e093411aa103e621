"""depthmaster-make-sample-image: render the procedural sample scene (RGB PNG + exact metric depth .npy)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="depthmaster-make-sample-image",
        description="Render the synthetic sample scene: OUT (RGB PNG) and OUT's stem + '_depth.npy' "
        "(float32 metric depth along the optical axis, +Inf for sky).",
    )
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--time", type=float, default=0.0, help="time along the camera path, seconds")
    args = parser.parse_args(argv)
    if args.width < 1 or args.height < 1:
        parser.error(f"--width and --height must be positive, got {args.width}x{args.height}")

    from PIL import Image

    from ..samples.sample_scene import PinholeCamera, render

    rgb, depth = render(PinholeCamera.with_size(args.width, args.height), t=args.time)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(args.out)
    depth_path = args.out.with_name(args.out.stem + "_depth.npy")
    np.save(depth_path, depth)
    print(f"wrote {args.out} ({args.width}x{args.height}) and {depth_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
