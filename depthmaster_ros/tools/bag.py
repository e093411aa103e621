"""depthmaster-bag: a recorded rosbag2 in, a rosbag2 with the node's outputs out (no ROS CLI needed).

Finds the colour image topic (Image or CompressedImage) and its camera info when they are unique (else names
the candidates), pairs messages by stamp exactly as the node does, runs the node's frame engine with the node's
parameters file, and writes depth, depth/camera_info, depth/relative, depth/colored, points and depth/scale under
the image topic's namespace (or --output-namespace), with the input header stamps, plus a copy of the input
topics unless --no-copy-input. Unusable messages are counted and skipped. The output appears only when complete;
Ctrl-C saves progress, and --resume continues from the last complete frame (after a hard crash or a full disk,
from the last checkpoint). --salvage reads a bag cut short as far as it is readable and says what was lost.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from ..model.backends import backend_from_parameters
from ..model.checkpoint_layout import RANDOM_WEIGHTS_WARNING
from .bag_options import add_bag_options, bag_params, check_bag_args, progress_log


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="depthmaster-bag", description=__doc__.split("\n\n")[0])
    parser.add_argument("input_bag", type=Path, help="rosbag2 folder (mcap or sqlite3), or one .mcap / .db3 file")
    parser.add_argument("output_bag", type=Path, help="rosbag2 folder to create")
    add_bag_options(parser)
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run of this output")
    args = parser.parse_args(argv)
    check_bag_args(parser, args)
    if args.output_bag.exists():
        parser.error(f"output {args.output_bag} already exists; remove it or choose another name")
    return args


def claim_output(args, warn):
    """Before the model loads: the output's lock (one run per output), its folder's room, and no unfinished run
    unless resuming. BagError naming the problem."""
    from ..rosbag.io import BagError
    from ..rosbag.output_lock import OutputLock, check_output_folder
    from ..rosbag.partial_output import partial_folder, unfinished_run

    lock = OutputLock(args.output_bag).acquire()
    try:
        if lock.stale:
            warn(f"took over the lock of a run that is no longer running ({lock.stale})")
        if partial_folder(args.output_bag).exists() and not args.resume:
            raise BagError(unfinished_run(args.output_bag))
        check_output_folder(args.output_bag, args.input_bag, not args.no_copy_input, warn)
    except BaseException:
        lock.release()
        raise
    return lock


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ..rosbag.io import BagError

    warn = progress_log("depthmaster-bag")

    try:
        lock = claim_output(args, warn)
    except BagError as exc:
        print(f"depthmaster-bag: {exc}", file=sys.stderr)
        return 2
    try:
        return _run(args, warn, lock)
    finally:
        lock.release()


def _run(args, warn, lock) -> int:
    from tqdm import tqdm

    from ..model.checkpoint import CheckpointError
    from ..rosbag.bag_run import BagRun, Interrupted
    from ..rosbag.partial_output import disk_full_message
    from ..rosbag.io import BagError
    from ..rosbag.topics import inspect_input
    from ..rosbag.run_state import NUMBER

    try:
        params = bag_params(args, warn)
        found = inspect_input(args.input_bag, params["scale_mode"], args.image_topic, args.camera_info_topic,
                              args.inputs, args.salvage)
        topics, frames = found.topics, found.frames
        if found.report is not None:
            warn(f"salvaging {args.input_bag}: {found.report.summary()}")
            for line in found.report.files:
                warn(f"  {line.describe()}")
        backend = backend_from_parameters(params)
        run = BagRun(backend, params, args.input_bag, args.output_bag, topics, args.output_namespace, args.storage,
                     args.batch, not args.no_copy_input, split_frames=args.split_frames, salvage=args.salvage,
                     log=warn, lock=lock)
    except (BagError, CheckpointError, ValueError, OSError) as exc:
        print(f"depthmaster-bag: {exc}", file=sys.stderr)
        return 2

    warn(backend.describe())
    if backend.random_weights:
        warn(RANDOM_WEIGHTS_WARNING)
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
        print(f"depthmaster-bag: interrupted after {run.state.frames_done} of {frames} frames, all saved in "
              f"{run.partial.folder}; the input is untouched, nothing was written to {args.output_bag}. Continue "
              "with: depthmaster-bag ... --resume", file=sys.stderr)
        return 130
    except (BagError, OSError) as exc:
        full = disk_full_message(exc, run.partial.folder, run.saved_frames, frames, "depthmaster-bag ... --resume") \
            if isinstance(exc, OSError) else None
        print(f"depthmaster-bag: {full or exc}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    per_frame = state.seconds / state.frames_served * 1000 if state.frames_served else float("nan")
    print(f"\ndepthmaster-bag: wrote {args.output_bag}: {state.frames_served} frames served, "
          f"{sum(state.skipped.values())} messages skipped, {per_frame:.1f} ms per frame")
    if run.salvage_report is not None:
        print(f"  salvaged input: {run.salvage_report.summary()}")
    for topic, count in sorted(state.written.items()):
        print(f"  {topic:<40}{count:>6} messages")
    for title, counts in (("skipped", state.skipped), ("served without metric outputs", state.notes)):
        for reason, count in sorted(counts.items(), key=lambda item: -item[1]):
            varies = " (the numbers are the first one's)" if count > 1 and NUMBER.search(reason) else ""
            print(f"  {title} ({count}): {reason}{varies}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
