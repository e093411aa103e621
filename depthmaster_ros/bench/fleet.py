"""The fleet runner against the single-process bag tool on the same generated bags (``depthmaster-fleet-bench``):
frames/s and CPU ms per frame of depthmaster-bag's run on every bag in turn in this process, and of
depthmaster-fleet's run on all of them on a local Ray instance for each model actor count (one Ray instance for
all; the model loaded and the bag tasks' worker processes started before the clock starts). CPU time counts all
processes together (the fleet's Ray processes and workers included, less what they use idle, measured for a few
seconds before): its difference to the single process is the engine's overhead per frame whatever the load.

``args``: the options ``tools/fleet_bench.py`` parses (checkpoint, device, bags, frames, size, processing_res,
batch, actor_counts, threads, idle_seconds, num_cpus, json).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def cpu_snapshot() -> dict[int, float]:
    """CPU seconds of this process and each of its children (the local Ray instance's processes and workers)."""
    import psutil

    snapshot = {}
    for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            times = process.cpu_times()
            snapshot[process.pid] = times.user + times.system
        except psutil.Error:  # ended meanwhile
            pass
    return snapshot


def cpu_since(before: dict[int, float]) -> float:
    """CPU seconds used since ``before`` by the processes alive now (a new one: all its time)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in cpu_snapshot().items())


def bench(args, folder: Path) -> int:
    import ray

    from ..processing_config import ProcessingConfig
    from ..engine.engine import FrameEngine
    from ..engine.job import FrameJob
    from ..fleet.bag_task import BagOptions
    from ..fleet.inputs import FleetInput
    from ..fleet.local_ray import LocalRay
    from ..fleet.runner import ClusterOptions, FleetRun, ModelCluster
    from ..model.backends import backend_from_parameters
    from ..parameters import defaults
    from ..rosbag.bag_run import BagRun
    from ..rosbag.topics import inspect_input
    from ..samples.sample_bag import write_sample_bag
    from ..samples.sample_scene import PinholeCamera, render
    from ..samples.tiny_checkpoint import write_tiny_checkpoint

    width, height = args.size[0]
    checkpoint = args.checkpoint or str(write_tiny_checkpoint(folder / "tiny_checkpoint"))
    values = {**defaults(), "checkpoint": checkpoint, "device": args.device, "processing_res": args.processing_res,
              "cpu_threads": args.threads, "scale_mode": "sparse_depth"}
    bags = [write_sample_bag(folder / "bags" / f"bag_{i}", frames=args.frames, width=width, height=height, seed=i)
            for i in range(args.bags)]
    warm_bag = write_sample_bag(folder / "bags" / "warm", frames=2, width=width, height=height)
    inputs = {"sparse_depth": "/lidar/depth"}
    frames = args.bags * args.frames
    results = []

    def report(name, seconds, cpu_seconds, note=""):
        results.append({"runner": name, "frames": frames, "seconds": seconds, "fps": frames / seconds,
                        "cpu_ms_per_frame": 1000 * cpu_seconds / frames})
        print(f"{name:<28}{frames:>7} frames {seconds:>8.2f} s {frames / seconds:>8.2f} frames/s "
              f"{1000 * cpu_seconds / frames:>7.1f} CPU ms/frame{note}", flush=True)

    print(f"{args.bags} bags x {args.frames} frames of {width}x{height}, processing_res {args.processing_res}, "
          f"batch {args.batch}, {args.threads} torch thread(s) per model; model: "
          f"{'tiny, random weights' if not args.checkpoint else checkpoint}", flush=True)
    rgb, _ = render(PinholeCamera.with_size(width, height), t=0.0)
    job = FrameJob("", 0, rgb, ProcessingConfig.from_parameters(values))
    backend = backend_from_parameters(values)
    topics = inspect_input(bags[0], "sparse_depth", inputs=inputs).topics
    FrameEngine(backend).infer([job])  # the model has run once
    began, cpu = time.perf_counter(), cpu_snapshot()
    for i, bag in enumerate(bags):
        BagRun(backend, values, bag, folder / "bag_tool" / f"bag_{i}", topics, batch=args.batch).run()
    report("depthmaster-bag (1 process)", time.perf_counter() - began, cpu_since(cpu))
    del backend

    local = None if ray.is_initialized() else LocalRay(num_cpus=args.num_cpus or os.cpu_count(),
                                                       include_dashboard=False, log_to_driver=False)
    try:
        options = BagOptions(inputs=inputs, batch=args.batch)
        for count in args.actor_counts:
            cluster = ModelCluster(values, args.batch, ClusterOptions(actors=count))
            try:
                ray.get([actor.infer.remote([job]) for actor in cluster.actors])  # each has run the model
                idle = cpu_snapshot()  # Ray's own processes and idle workers, doing nothing for us
                time.sleep(args.idle_seconds)
                idle_rate = cpu_since(idle) / args.idle_seconds
                # The bag tasks' worker processes started right before the clock (a first task in a new process
                # spends seconds importing torch and rclpy; Ray ends workers idle for a second)
                warm = [FleetInput(warm_bag, f"warm_{i}") for i in range(cluster.bags_at_once)]
                FleetRun(cluster, warm, folder / f"warm_{count}", values, options).run()
                cpu = cpu_snapshot()
                summary = FleetRun(cluster, [FleetInput(bag, bag.name) for bag in bags], folder / f"fleet_{count}",
                                   values, options).run()
                started = len(set(cpu_snapshot()) - set(cpu))  # Ray starts workers as it sees fit
                cpu = cpu_since(cpu) - idle_rate * summary.seconds
            finally:
                cluster.shutdown()
            failed = [bag.error for bag in summary.bags if bag.status != "done"]
            if failed:
                print(f"depthmaster-fleet-bench: the fleet run failed: {failed[0]}", file=sys.stderr)
                return 1
            report(f"depthmaster-fleet, {count} actor{'s' if count > 1 else ''}", summary.seconds, cpu,
                   f"   ({cluster.bags_at_once} bags at once; Ray idle {1000 * idle_rate:.0f} CPU ms/s not counted; "
                   f"{started} worker processes started in the run, each importing torch and rclpy once)")
    finally:
        if local is not None:
            local.shutdown()
    base = results[0]
    for row in results[1:]:
        print(f"  {row['runner']}: {row['fps'] / base['fps']:.2f}x the single process's frames/s; "
              f"{row['cpu_ms_per_frame'] - base['cpu_ms_per_frame']:+.1f} CPU ms per frame (the engine's overhead)")
    if args.json:
        args.json.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()},
                                         "results": results}, indent=1))
    return 0
