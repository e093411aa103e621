"""depthmaster-bag: a recorded rosbag2 in, a rosbag2 with the node's outputs out (no ROS CLI needed).

Finds the colour image topic (Image or CompressedImage) and its camera info when they are unique (else names
the candidates), pairs messages by stamp exactly as the node does, runs the node's processing path with the
node's parameters file, and writes depth, depth/camera_info, depth/relative, depth/colored, points and
depth/scale under the image topic's namespace (or --output-namespace), with the input header stamps, plus a copy
of the input topics unless --no-copy-input. Unusable messages are counted and skipped. The output appears only
when complete; Ctrl-C saves progress, and --resume continues from the last complete frame.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from ..parameters import DTYPE_CHOICES


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="depthmaster-bag", description=__doc__.split("\n\n")[0])
    parser.add_argument("input_bag", type=Path, help="rosbag2 folder (mcap or sqlite3)")
    parser.add_argument("output_bag", type=Path, help="rosbag2 folder to create")
    parser.add_argument("--checkpoint", help="checkpoint folder or repo id (default: the params file's)")
    parser.add_argument("--allow-download", action="store_true")
    parser.add_argument("--params", type=Path, help="the node's parameters YAML (config/depthmaster.yaml format)")
    parser.add_argument("--image-topic")
    parser.add_argument("--camera-info-topic")
    parser.add_argument("--sparse-depth-topic", help="scale_mode sparse_depth: the metric depth image topic")
    parser.add_argument("--sparse-info-topic", help="its CameraInfo topic, if it is not registered to the image")
    parser.add_argument("--lidar-topic", help="scale_mode pointcloud: the PointCloud2 topic")
    parser.add_argument("--camera", help="a params file of a node serving several cameras: use this camera's "
                        "per-camera values (its image topic still comes from --image-topic or detection)")
    parser.add_argument("--output-namespace", help="namespace of the output topics (default: the image topic's)")
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    parser.add_argument("--batch", type=int, default=1, help="frames of the same size per model pass (default 1)")
    parser.add_argument("--device", help="override the params file's device")
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, help="override the params file's dtype")
    parser.add_argument("--no-copy-input", action="store_true", help="write only the outputs")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run of this output")
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error(f"--batch must be >= 1, got {args.batch}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from ..model import CheckpointError, DepthMasterPipeline
    from ..parameters import camera_values, defaults, load_params_file
    from ..rosbag.io import BagError, open_reader
    from ..rosbag.processing_run import BagRun, Interrupted
    from ..rosbag.topics import IMAGE, COMPRESSED, choose_topics

    try:
        params = load_params_file(args.params) if args.params else defaults()
        if args.camera:
            params = camera_values(params, args.camera)
        elif params["cameras"]:
            print(f"depthmaster-bag: the params file serves cameras {params['cameras']}; without --camera their "
                  "per-camera values are not used", file=sys.stderr)
        for name in ("checkpoint", "device", "dtype"):
            if getattr(args, name):
                params[name] = getattr(args, name)
        reader = open_reader(args.input_bag)
        topics = choose_topics(reader, args.image_topic, args.camera_info_topic, params["scale_mode"],
                               args.sparse_depth_topic, args.sparse_info_topic, args.lidar_topic)
        frames = sum(c.msgcount for c in reader.connections if c.topic == topics["image"]
                     and c.msgtype in (IMAGE, COMPRESSED))
        reader.close()
        pipeline = DepthMasterPipeline.from_pretrained(params["checkpoint"], device=params["device"],
                                                       dtype=params["dtype"],
                                                       allow_download=args.allow_download or params["allow_download"])
        run = BagRun(pipeline, params, args.input_bag, args.output_bag, topics, args.output_namespace, args.storage,
                     args.batch, not args.no_copy_input)
    except (BagError, CheckpointError, ValueError, OSError) as exc:
        print(f"depthmaster-bag: {exc}", file=sys.stderr)
        return 2

    print(f"depthmaster-bag: {pipeline.describe()}", file=sys.stderr)
    if pipeline.random_weights:
        print("depthmaster-bag: WARNING: RANDOM weights: the outputs are meaningless (a smoke test)", file=sys.stderr)
    print("depthmaster-bag: " + ", ".join(f"{role} {topic}" for role, topic in topics.items() if topic)
          + f"; scale_mode {params['scale_mode']}; outputs under {run.namespace or '/'}", file=sys.stderr)

    def request_stop(signum, _frame):
        run.stop_requested = True
        print(f"\ndepthmaster-bag: {signal.Signals(signum).name}: stopping after the current frame", file=sys.stderr)

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
