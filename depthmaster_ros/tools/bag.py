"""depthmaster-bag: a recorded rosbag2 in, a rosbag2 with the node's outputs out (no ROS CLI needed).

Finds the colour image topic (Image or CompressedImage) and its camera info when they are unique (else names
the candidates), pairs messages by stamp exactly as the node does, runs the node's frame engine with the node's
parameters file, and writes depth, depth/camera_info, depth/relative, depth/colored, points and depth/scale under
the image topic's namespace (or --output-namespace), with the input header stamps, plus a copy of the input
topics unless --no-copy-input. Unusable messages are counted and skipped. The output appears only when complete;
Ctrl-C saves progress, and --resume continues from the last complete frame.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .cli_options import add_model_options, create_backend, model_values


def parse_args(argv):
    from ..scale.source import measurement_inputs

    parser = argparse.ArgumentParser(prog="depthmaster-bag", description=__doc__.split("\n\n")[0])
    parser.add_argument("input_bag", type=Path, help="rosbag2 folder (mcap or sqlite3)")
    parser.add_argument("output_bag", type=Path, help="rosbag2 folder to create")
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
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run of this output")
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error(f"--batch must be >= 1, got {args.batch}")
    if args.output_bag.exists():
        parser.error(f"output {args.output_bag} already exists; remove it or choose another name")
    args.inputs = {name: getattr(args, f"input_{name}") for name in measurement_inputs()}
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from ..model.checkpoint import CheckpointError
    from ..parameters import camera_values, defaults, load_params_file
    from ..rosbag.bag_run import BagRun, Interrupted
    from ..rosbag.io import BagError, open_reader
    from ..rosbag.topics import COMPRESSED, IMAGE, choose_topics

    def warn(message):
        print(f"depthmaster-bag: {message}", file=sys.stderr)

    try:
        params = load_params_file(args.params, warn=warn) if args.params else defaults()
        if args.camera:
            params = camera_values(params, args.camera)
        elif params["cameras"]:
            warn(f"the params file serves cameras {params['cameras']}; without --camera their per-camera values "
                 "are not used")
        params = model_values(args, params)
        reader = open_reader(args.input_bag)
        topics = choose_topics(reader, args.image_topic, args.camera_info_topic, params["scale_mode"], args.inputs)
        frames = sum(c.msgcount for c in reader.connections if c.topic == topics["image"]
                     and c.msgtype in (IMAGE, COMPRESSED))
        reader.close()
        backend = create_backend(params)
        run = BagRun(backend, params, args.input_bag, args.output_bag, topics, args.output_namespace, args.storage,
                     args.batch, not args.no_copy_input)
    except (BagError, CheckpointError, ValueError, OSError) as exc:
        print(f"depthmaster-bag: {exc}", file=sys.stderr)
        return 2

    warn(backend.describe())
    if backend.random_weights:
        warn("WARNING: RANDOM weights: the outputs are meaningless (a smoke test)")
    warn(", ".join(f"{role} {topic}" for role, topic in topics.items() if topic)
         + f"; scale_mode {params['scale_mode']}; outputs under {run.namespace or '/'}")
    if params["scale_mode"] == "none":
        warn("scale_mode is none: relative outputs only, no depth and no points (set scale_mode in --params)")

    def request_stop(signum, _frame):
        run.stop_requested = True
        print(f"\ndepthmaster-bag: {signal.Signals(signum).name}: stopping after the current batch", file=sys.stderr)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with tqdm(total=frames, desc="frames", unit="frame", file=sys.stderr) as progress:
            state = run.run(resume=args.resume, progress=progress)
    except Interrupted:
        print(f"depthmaster-bag: interrupted after {run.state.frames_done} of {frames} frames; the input is "
              f"untouched, nothing was written to {args.output_bag}. Continue with: depthmaster-bag ... --resume",
              file=sys.stderr)
        return 130
    except (BagError, OSError) as exc:
        print(f"depthmaster-bag: {exc}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    per_frame = state.seconds / state.frames_served * 1000 if state.frames_served else float("nan")
    print(f"\ndepthmaster-bag: wrote {args.output_bag}: {state.frames_served} frames served, "
          f"{sum(state.skipped.values())} messages skipped, {per_frame:.1f} ms per frame")
    for topic, count in sorted(state.written.items()):
        print(f"  {topic:<40}{count:>6} messages")
    for title, counts in (("skipped", state.skipped), ("served without metric outputs", state.notes)):
        for reason, count in sorted(counts.items(), key=lambda item: -item[1]):
            print(f"  {title} ({count}): {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
