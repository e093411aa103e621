"""The options of the offline bag runners (depthmaster-bag, depthmaster-fleet), written once: the model, the
node's params file (one camera of it), the topics, the output and the run's safety options."""

from __future__ import annotations

import argparse

from .cli_options import add_model_options, model_values


def add_bag_options(parser: argparse.ArgumentParser) -> None:
    from ..rosbag.partial_output import SPLIT_FRAMES
    from ..scale.source import measurement_inputs

    add_model_options(parser, params_file=True)
    topics = parser.add_argument_group("topics (found automatically when unique)")
    topics.add_argument("--image-topic")
    topics.add_argument("--camera-info-topic")
    for name, item in measurement_inputs().items():  # the scale sources' inputs (sparse depth, LiDAR, ...)
        topics.add_argument(item.bag_option, dest=f"input_{name}", metavar="TOPIC",
                            help=f"the {item.description} topic ({name}), for the scale modes that use it")
    parser.add_argument("--camera", help="a params file of a node serving several cameras: use this camera's "
                        "per-camera values (its image topic still comes from --image-topic or detection)")
    parser.add_argument("--output-namespace", help="namespace of the output topics (default: the image topic's)")
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    parser.add_argument("--batch", type=int, default=1, help="frames per model pass (default 1)")
    parser.add_argument("--no-copy-input", action="store_true", help="write only the outputs")
    parser.add_argument("--salvage", action="store_true", help="read a damaged bag (cut short: no mcap footer, a "
                        "truncated sqlite3 file, no metadata.yaml) as far as it is readable, and report what was lost")
    parser.add_argument("--split-frames", type=int, default=SPLIT_FRAMES, metavar="N",
                        help=f"frames per output file, each a checkpoint: a hard crash (SIGKILL, power loss) loses at "
                        f"most the frames since the last one (default {SPLIT_FRAMES}; lower it for a slow model)")


def check_bag_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject impossible values; ``args.inputs``: the measurement topics named, by input name."""
    from ..scale.source import measurement_inputs

    for option in ("batch", "split_frames"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be >= 1, got {getattr(args, option)}")
    args.inputs = {name: getattr(args, f"input_{name}") for name in measurement_inputs()}


def bag_params(args: argparse.Namespace, warn) -> dict:
    """The parameter values of the run: the params file's (one camera's with --camera) or the defaults, with the
    model options given. ValueError for a bad file or camera."""
    from ..parameters import camera_values, defaults, load_params_file

    params = load_params_file(args.params, warn=warn) if args.params else defaults()
    if args.camera:
        params = camera_values(params, args.camera)
    elif params["cameras"]:
        warn(f"the params file serves cameras {params['cameras']}; without --camera their per-camera values "
             "are not used")
    return model_values(args, params)


def progress_log(prog: str):
    """A tool's lines for the user on stderr, kept apart from its progress bar."""
    import sys

    from tqdm import tqdm

    return lambda message: tqdm.write(f"{prog}: {message}", file=sys.stderr)
