"""depthmaster-bench: time every stage of the processing path per frame, and the node end to end.

Stages: preprocess (resize, normalise, host -> device), encode (VAE encoder), unet (one pass + FE), decode (VAE
decoder), postprocess (resize back, metric depth, colormap, device -> host), cloud (depth -> organised xyz+rgb),
message build (the node's messages, when rclpy is importable). Printed per frame: p50/p95 ms, frames/s, achieved
TFLOP/s of the model stages against their FLOP count (counted on the meta device), peak GPU memory, and, for a
fast configuration (not fp32 eager), the largest difference of its [0, 1] map from the fp32 eager map of the
same weights on the same image. ``--node`` instead measures image stamp -> depth and cloud received through a
real ROS graph (the node in its own process). On CUDA every stage is synchronised before its clock stops.
The harnesses are in ``depthmaster_ros/bench/``; this is their command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cli_options import add_model_options, model_values, size_list


def parse_args(argv):
    from ..samples.drifting_sequence import LOOP_SECONDS, Drift

    parser = argparse.ArgumentParser(prog="depthmaster-bench", description=__doc__.split("\n\n")[0])
    add_model_options(parser)
    random = parser.add_mutually_exclusive_group()
    random.add_argument("--random-full", action="store_true", help="the published architecture, random weights "
                        "(instead of --checkpoint)")
    random.add_argument("--random-tiny", action="store_true", help="the toy test architecture, random weights "
                        "(instead of --checkpoint)")
    parser.add_argument("--sizes", type=size_list, default=[(640, 480)],
                        help="comma-separated WIDTHxHEIGHT input sizes (default 640x480)")
    parser.add_argument("--processing-res", type=int, default=0, help="model resolution (default 0 = input size)")
    parser.add_argument("--batch", type=int, default=1, help="frames per forward pass (default 1)")
    parser.add_argument("--image", type=Path, help="image for the fp32-vs-fast error (default: the sample scene)")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first (default 2)")
    parser.add_argument("--node", action="store_true", help="measure stamp-to-publish latency through the node")
    parser.add_argument("--temporal", action="store_true", help="measure the temporal stage instead: flicker, TAE "
                        "and AbsRel of metric depth on the generated sample sequences (moving camera, static camera, "
                        "approaching object, scene cut, long loop; the first --sizes), with temporal_mode off, align "
                        "and align_smooth in each scale mode, and the stage's own cost per frame; without "
                        "--checkpoint / --random-* the predictions are simulated drifting ones (a known answer, no "
                        "model)")
    parser.add_argument("--frames", type=int, default=30, help="--temporal: frames per sequence (default 30)")
    parser.add_argument("--loop-seconds", type=float, default=LOOP_SECONDS, help="--temporal: the long loop out "
                        f"and back to the start, seconds at 10 Hz (default {LOOP_SECONDS:g}; 0: none)")
    parser.add_argument("--seed", type=int, default=0, help="--temporal, simulated predictions: the random seed of "
                        "their per-frame distortion (default 0)")
    parser.add_argument("--noise", type=float, default=Drift().noise, help="--temporal, simulated predictions: "
                        f"the per-pixel noise sd (default {Drift().noise}; the per-frame gain and offset sd are "
                        f"{Drift().gain} and {Drift().offset})")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.iterations < 1 or args.warmup < 0:
        parser.error("--batch and --iterations must be >= 1, --warmup >= 0")
    if args.frames < 2 or args.noise < 0 or args.loop_seconds < 0:
        parser.error("--frames must be >= 2, --noise and --loop-seconds >= 0")
    if (args.random_full or args.random_tiny) and args.checkpoint is not None:
        parser.error("give one of --checkpoint PATH, --random-full or --random-tiny")
    if not (args.random_full or args.random_tiny or args.checkpoint is not None or args.temporal):
        parser.error("give one of --checkpoint PATH, --random-full or --random-tiny (or --temporal alone)")
    args.sizes = [(height, width) for width, height in args.sizes]  # (height, width) from here on
    args.values = model_values(args)
    return args


def temporal(args, backend) -> int:
    """--temporal: the temporal stage's flicker, TAE and AbsRel tables and its cost per frame
    (bench/temporal_report.py)."""
    from statistics import median

    from ..bench.temporal_report import temporal_report
    from ..samples.drifting_sequence import Drift

    height, width = args.sizes[0]
    results, text = temporal_report(width, height, args.frames, backend, args.processing_res,
                                    Drift(noise=args.noise), args.seed, args.loop_seconds)
    print(f"depthmaster-bench --temporal: {'the model' if backend is not None else 'no model'}; "
          f"{args.frames} frames per sequence\n")
    print(text)
    for mode in ("align", "align_smooth"):
        costs = [row["temporal_ms"] for rows in results.values() for row in rows
                 if row.get("temporal_mode") == mode]
        if costs:
            print(f"temporal stage, {mode}: {median(costs):.2f} ms per frame at {width}x{height} (the median of "
                  f"the {len(costs)} runs' medians, {min(costs):.2f} to {max(costs):.2f})")
    if args.json:
        args.json.write_text(json.dumps({"temporal": results}, indent=2))
    return 0



def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ..model import CheckpointError

    if args.node:
        from ..bench.node_latency import node_latency

        result = node_latency(args)
        print(f"depthmaster-bench --node: image stamp -> depth and points received ({result['cameras']} "
              f"camera(s) per frame), {result['frames']} frames ({result['lost']} lost): "
              f"p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms" if result["frames"] else
              "depthmaster-bench --node: no frame was served")
        if args.json:
            args.json.write_text(json.dumps({"node_latency": result}, indent=2))
        return 0 if result["frames"] else 1
    from ..bench.model_stages import bench_size, fast_error, make_backend

    try:
        backend = make_backend(args) if args.checkpoint or args.random_full or args.random_tiny else None
    except (CheckpointError, ValueError) as exc:
        print(f"depthmaster-bench: {exc}", file=sys.stderr)
        return 2
    if args.temporal:
        return temporal(args, backend)
    if not hasattr(backend, "pipeline") and not hasattr(backend, "model_pass"):
        print(f"depthmaster-bench: backend {backend.name!r} has no stages to time; use --node", file=sys.stderr)
        return 2
    device_name = str(backend.device)
    if backend.device.type == "cuda":
        import torch

        device_name += f" ({torch.cuda.get_device_name(backend.device)})"
    print(f"depthmaster-bench: {backend.describe()}; device {device_name}; processing_res {args.processing_res}; "
          f"batch {args.batch}; {args.iterations} iterations after {args.warmup} warm-up")
    errors = fast_error(args, backend, args.sizes)
    results = []
    for size in args.sizes:
        result = bench_size(backend, size, args)
        if errors is not None:
            result["max_abs_error_vs_fp32"] = errors[result["size"]]
        results.append(result)
        print(f"\n{result['size']} (WxH; model at {result['processing_size']}), batch {args.batch}: per frame")
        print(f"  {'stage':<16}{'p50 ms':>10}{'p95 ms':>10}")
        for name, stage in result["stages"].items():
            print(f"  {name:<16}{stage['p50_ms']:>10.2f}{stage['p95_ms']:>10.2f}")
        print(f"  {'total (p50)':<16}{result['total_p50_ms']:>10.2f}   -> {result['frames_per_s']:.2f} frames/s")
        flops = (f"; {result['tflop_per_frame']:.3f} TFLOP per frame -> {result['achieved_tflops']:.2f} TFLOP/s "
                 "achieved") if "tflop_per_frame" in result else ""
        print(f"  model {result['model_p50_ms']:.2f} ms per frame ({result['batch_latency_ms']:.2f} ms per batch of "
              f"{args.batch}){flops}")
        if "peak_gpu_memory_mb" in result:
            print(f"  peak GPU memory {result['peak_gpu_memory_mb']:.0f} MiB")
        if "max_abs_error_vs_fp32" in result:
            print(f"  max |fast - fp32| of the [0, 1] map: {result['max_abs_error_vs_fp32']:.2e}")
    if args.json:
        args.json.write_text(json.dumps({"model": backend.describe(), "device": device_name,
                                         "dtype": args.values["dtype"], "backend": backend.name,
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
