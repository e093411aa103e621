"""depthmaster-fleet-bench: frames/s of the single-process bag tool and of the fleet runner with 1, 2, ... model
actors on the same generated bags, so the fleet's overhead and its scaling are known.

Generates --bags sample bags (a moving camera, true depth and a LiDAR; --frames each, --size), then times, after a
warm-up pass of each model: depthmaster-bag's run on every bag in turn in this process, and depthmaster-fleet's
run on all of them on a local Ray instance for each --actors count (one Ray instance for all; the model loaded and
the bag tasks' worker processes started before the clock starts). Every model instance gets --threads CPU
threads. Prints frames/s (wall clock: on a shared machine it depends on the other load) and CPU ms per frame, all
processes together (the fleet's Ray processes and workers included, less what they use idle, measured for a few
seconds before): its difference to the single process is the engine's overhead per frame whatever the load.
Without --checkpoint a tiny model with random weights is generated (the engine's overhead, not the model's speed).
The harness is ``depthmaster_ros/bench/fleet.py``; this is its command line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def parse_args(argv):
    from .cli_options import size_list

    parser = argparse.ArgumentParser(prog="depthmaster-fleet-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="model folder (default: a generated tiny model, random weights)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bags", type=int, default=4)
    parser.add_argument("--frames", type=int, default=60, help="frames per bag (10 Hz; a worker process's start-up "
                        "is spread over them)")
    parser.add_argument("--size", type=size_list, default=[(160, 120)], metavar="WxH")
    parser.add_argument("--processing-res", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--actors", default="1,2", help="model actor counts to time (default 1,2)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of every model instance (1)")
    parser.add_argument("--idle-seconds", type=float, default=3.0,
                        help="how long Ray's background CPU use is measured, before each fleet run (default 3)")
    parser.add_argument("--num-cpus", type=float, help="CPUs of the local Ray instance (default: all cores)")
    parser.add_argument("--work-dir", type=Path, help="where bags and outputs go (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.actor_counts = [int(n) for n in args.actors.split(",")]
    if min(args.actor_counts) < 1 or min(args.bags, args.frames, args.batch, args.threads) < 1:
        parser.error("--bags, --frames, --batch, --threads and every --actors count must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    from ..bench.fleet import bench

    args = parse_args(argv)
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        return bench(args, args.work_dir)
    with tempfile.TemporaryDirectory(prefix="depthmaster-fleet-bench-") as folder:
        return bench(args, Path(folder))


if __name__ == "__main__":
    sys.exit(main())
