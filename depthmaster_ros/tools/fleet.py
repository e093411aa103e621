"""depthmaster-fleet: depth for a whole archive of rosbags on Ray: one output bag per input bag, each what
depthmaster-bag writes for it, with the model on every GPU of a cluster (or this machine's CPU).

Inputs: bag folders, .mcap / .db3 files, glob patterns, folders of bags (searched recursively) and text manifests
(one of those per line). Without --address a local Ray instance starts on this machine; with it, the run joins a
cluster (`ray start --head`, or ray://HOST:10001). Outputs go to OUTPUT/NAME (written under NAME.partial, renamed
when complete), with fleet_summary.csv / .json. A rerun of the same command skips the finished bags and resumes
the others; Ctrl-C stops every bag at a checkpoint (a second Ctrl-C at once).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .bag_options import add_bag_options, bag_params, check_bag_args, progress_log


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    if text.strip() in ("0", "0.0"):
        return 0.0
    return _positive_float(text)


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """Ray: where, and how the work is shared out (depthmaster-fleet and its benchmark)."""
    from ..fleet.cluster_options import DEFAULT_CPUS_PER_BAG

    group = parser.add_argument_group("Ray (where and how much)")
    group.add_argument("--address", help="join this Ray cluster (auto, HOST:PORT of `ray start --head`, or "
                       "ray://HOST:10001); default: a local Ray instance on this machine")
    group.add_argument("--num-cpus", type=_positive_float, help="CPUs of the local instance (default: all cores)")
    group.add_argument("--object-store-memory", type=_positive_float, metavar="GB",
                       help="Ray's shared memory for images and maps in flight, local instance (default: Ray's, "
                       "30%% of RAM)")
    group.add_argument("--actors", type=int, help="model actors, each loads the model once (default: one per GPU "
                       "of the cluster, else 1)")
    group.add_argument("--gpus-per-actor", type=_non_negative_float,
                       help="default 1 on a cluster with GPUs, else 0")
    group.add_argument("--cpus-per-actor", type=_positive_float,
                       help="Ray CPU slots a model actor holds (default 1 with a GPU; on the CPU a share that leaves "
                       "room for the bag tasks); without --threads, an actor's torch threads (at least 1)")
    group.add_argument("--cpus-per-bag", type=_positive_float, default=DEFAULT_CPUS_PER_BAG,
                       help=f"Ray CPU slots a bag's task holds: reading, pairing, post-processing, writing (default "
                       f"{DEFAULT_CPUS_PER_BAG})")
    group.add_argument("--bags-at-once", type=int, help="bags processed at the same time (default: 2 per actor)")
    group.add_argument("--in-flight", type=int, default=2, metavar="N",
                       help="batches a bag keeps at the model actors while it post-processes (default 2)")


def cluster_options(args: argparse.Namespace):
    from ..fleet.cluster_options import ClusterOptions

    return ClusterOptions(address=args.address, num_cpus=args.num_cpus,
                          object_store_memory=int(args.object_store_memory * 1e9) if args.object_store_memory
                          else None, actors=args.actors, gpus_per_actor=args.gpus_per_actor,
                          cpus_per_actor=args.cpus_per_actor, cpus_per_bag=args.cpus_per_bag,
                          bags_at_once=args.bags_at_once)


def bag_options(args: argparse.Namespace):
    from ..fleet.bag_task import BagOptions

    return BagOptions(image_topic=args.image_topic, camera_info_topic=args.camera_info_topic, inputs=args.inputs,
                      output_namespace=args.output_namespace, storage=args.storage, batch=args.batch,
                      copy_input=not args.no_copy_input, split_frames=args.split_frames, salvage=args.salvage,
                      in_flight=args.in_flight)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="depthmaster-fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("bags", nargs="+", metavar="INPUT",
                        help="bag folder, .mcap / .db3 file, glob pattern, folder of bags or manifest (.txt)")
    parser.add_argument("--output", type=Path, required=True, help="folder of the output bags and the summary")
    add_bag_options(parser)
    add_cluster_options(parser)
    args = parser.parse_args(argv)
    check_bag_args(parser, args)
    for option in ("actors", "bags_at_once", "in_flight"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be >= 1, got {getattr(args, option)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from ..fleet.inputs import InputError, fleet_inputs
    from ..fleet.runner import FleetError, FleetRun, ModelCluster

    say = progress_log("depthmaster-fleet")

    try:
        params = bag_params(args, say)
        inputs = fleet_inputs(args.bags)
        if not params["checkpoint"]:
            raise ValueError("no checkpoint: give --checkpoint (or checkpoint in --params)")
    except (InputError, ValueError, OSError) as exc:
        print(f"depthmaster-fleet: {exc}", file=sys.stderr)
        return 2
    presses, stopping, cluster, run = [], [], None, None

    def request_stop(signum, _frame):
        presses.append(signum)
        if stopping:  # Ray and its workers are being ended: an interrupt there would leave workers behind
            say(f"{signal.Signals(signum).name}: ending Ray and its workers first (a few seconds)")
            return
        if len(presses) > 1 or run is None:
            stopping.append(True)
            raise KeyboardInterrupt
        run.stop_requested = True
        say(f"{signal.Signals(signum).name}: every bag stops at its next batch and saves its progress (again: at "
            "once)")

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        say(f"{len(inputs)} bags -> {args.output}; starting Ray")
        cluster = ModelCluster(params, args.batch, cluster_options(args), log=say)
        run = FleetRun(cluster, inputs, args.output, params, bag_options(args), log=say)
        total = _frames_to_do(inputs, args, params)
        with tqdm(total=total, desc="frames", unit="frame", file=sys.stderr, smoothing=0.1) as progress:
            summary = run.run(progress)
    except FleetError as exc:
        print(f"depthmaster-fleet: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("depthmaster-fleet: stopped at once; the bags' last checkpoints are kept (rerun the command to "
              "continue)", file=sys.stderr)
        return 130
    finally:
        stopping.append(True)  # from here a press interrupts nothing (see request_stop)
        if cluster is not None:
            cluster.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    csv_path, json_path = summary.write(args.output)
    totals = summary.totals()
    fps = f"{totals['fps']:.2f}" if totals["fps"] is not None else "-"
    print(f"depthmaster-fleet: {totals['done']} bags done, {totals['done_earlier']} done earlier, "
          f"{totals['failed']} failed, {totals['interrupted'] + totals['not_started']} not finished; "
          f"{totals['frames_this_run']} frames in {totals['seconds']:.1f} s = {fps} frames/s with "
          f"{totals['actors']} model actor(s); summary: {csv_path}, {json_path}")
    for bag in summary.bags:
        if bag.status == "failed":
            print(f"  failed: {bag.input}: {bag.error}")
    if run.stop_requested:
        return 130
    return 1 if totals["failed"] else 0


def _frames_to_do(inputs, args, params) -> int:
    """Image messages of the bags not finished yet (for the progress bar; a bag that does not open counts 0, its
    task reports why)."""
    from ..rosbag.io import BagError
    from ..rosbag.topics import inspect_input

    total = 0
    for item in inputs:
        if (args.output / item.name).exists():
            continue
        try:
            total += inspect_input(item.path, params["scale_mode"], args.image_topic, args.camera_info_topic,
                                   args.inputs, args.salvage).frames
        except (BagError, OSError, ValueError):
            pass
    return total


if __name__ == "__main__":
    sys.exit(main())
