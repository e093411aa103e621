"""depthmaster-make-figure: the README's picture (docs/images/sample_scene.png), regenerated from the sample scene
through the frame engine (see depthmaster_ros/samples/figure.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..model.backends import backend_from_parameters
from ..model.checkpoint_layout import RANDOM_WEIGHTS_WARNING
from .cli_options import add_model_options, model_values, size_list


def _one_size(text: str) -> tuple[int, int]:
    sizes = size_list(text)
    if len(sizes) != 1:
        raise argparse.ArgumentTypeError(f"expected one WIDTHxHEIGHT, got {text!r}")
    return sizes[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="depthmaster-make-figure",
        description="Render a frame of the synthetic sample scene through the frame engine (scale_mode sparse_depth "
        "with the sample bag's simulated LiDAR) and save a PNG of three panels: the camera image, the metric depth "
        "and a view of the organised point cloud. By default the relative depth entering the engine is the scene's "
        "exact normalised sqrt disparity (a perfect model's output, said in the figure); --model runs the model "
        "instead.")
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--size", type=_one_size, default=(640, 480), metavar="WxH",
                        help="the camera image's size (default 640x480; the figure is 3 widths by 1.2 heights)")
    parser.add_argument("--model", action="store_true",
                        help="the model's prediction (--checkpoint etc.) instead of the exact relative depth")
    add_model_options(parser)
    args = parser.parse_args(argv)

    from ..model.checkpoint import CheckpointError
    from ..samples.figure import figure_frame, save_figure

    backend = None
    if args.model:
        try:
            backend = backend_from_parameters(model_values(args))
        except (CheckpointError, ValueError) as exc:
            print(f"depthmaster-make-figure: {exc}", file=sys.stderr)
            return 2
        if backend.random_weights:
            print(f"depthmaster-make-figure: {RANDOM_WEIGHTS_WARNING} (the figure says so)", file=sys.stderr)
    figure = figure_frame(*args.size, backend=backend)
    try:
        out = save_figure(figure, args.out)
    except OSError as exc:
        print(f"depthmaster-make-figure: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"depthmaster-make-figure: wrote {out}")
    print(figure.title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
