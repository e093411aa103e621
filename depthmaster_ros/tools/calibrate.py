"""depthmaster-calibrate: the fixed scale (s, t) for a camera, from an image and a measured depth map of it.

Runs the model on IMAGE, fits ``s * p + t = sqrt(1 / depth)`` robustly (the same fit as the live modes) on the
pixels where DEPTH is valid, and prints the values with the parameter lines for the node. DEPTH is a .npy array
of meters (NaN, Inf or 0 = no measurement) or a 16-bit PNG of millimeters (0 = none), at the image's size;
--depth-scale converts other units to meters.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..model.backends import backend_from_parameters
from ..model.checkpoint_layout import RANDOM_WEIGHTS_WARNING
from .cli_options import add_model_options, add_processing_res, model_values


def read_depth(path: Path, depth_scale: float) -> np.ndarray:
    if path.suffix == ".npy":
        depth = np.load(path).astype(np.float64)
    else:
        from PIL import Image

        with Image.open(path) as image:
            if image.mode not in ("I;16", "I;16B", "I", "F"):
                raise ValueError(f"{path} is a {image.mode} image; expected a 16-bit PNG of millimeters")
            depth = np.asarray(image).astype(np.float64) / 1000.0
    if depth.ndim != 2:
        raise ValueError(f"{path} holds an array of shape {depth.shape}; expected H x W depth")
    return depth * depth_scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="depthmaster-calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("image", type=Path, help="RGB image")
    parser.add_argument("depth", type=Path, help="measured depth of the same view (.npy meters or 16-bit PNG mm)")
    add_model_options(parser)
    add_processing_res(parser, "768, as the node; use the node's value")
    parser.add_argument("--depth-scale", type=float, default=1.0, help="multiply the depth values by this")
    args = parser.parse_args(argv)

    from ..model.checkpoint import CheckpointError
    from ..ros.user_commands import DEFAULT_NODE, param_set_command
    from ..scale.robust_fit import robust_fit
    from .infer import read_rgb

    try:
        rgb = read_rgb(args.image)
        depth = read_depth(args.depth, args.depth_scale)
        if depth.shape != rgb.shape[:2]:
            raise ValueError(f"the depth map is {depth.shape[1]}x{depth.shape[0]} but the image is "
                             f"{rgb.shape[1]}x{rgb.shape[0]}")
        backend = backend_from_parameters(model_values(args))
    except (OSError, ValueError, CheckpointError) as exc:
        print(f"depthmaster-calibrate: {exc}", file=sys.stderr)
        return 2
    if backend.random_weights:
        print(f"depthmaster-calibrate: {RANDOM_WEIGHTS_WARNING}", file=sys.stderr)
    relative = backend.infer([rgb], args.processing_res)[0].cpu().numpy()
    outcome = robust_fit(relative, depth, "fixed")
    if outcome.fit is None:
        print(f"depthmaster-calibrate: no fit: {outcome.reason}", file=sys.stderr)
        return 1
    fit = outcome.fit
    print(f"scale {fit.scale:.6f}  shift {fit.shift:.6f}  ({fit.pairs} pixels, {fit.inlier_ratio:.0%} inliers, "
          f"relative residual RMS {fit.residual_rms:.4f})")
    print("\nFor the node (params file or command line):")
    print(f"    scale_mode: fixed\n    scale: {fit.scale:.6f}\n    shift: {fit.shift:.6f}")
    print("    " + "; ".join(param_set_command(DEFAULT_NODE, name, f"{value:.6f}")
                            for name, value in (("scale", fit.scale), ("shift", fit.shift))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
