"""depthmaster-bench: time every stage of the processing path per frame, and the node end to end.

Stages: preprocess (resize, normalise, host -> device), encode (VAE encoder), unet (one pass + FE), decode (VAE
decoder), postprocess (resize back, metric depth, colormap, device -> host), cloud (depth -> organised xyz+rgb),
message build (the node's messages, when rclpy is importable). Printed per frame: p50/p95 ms, frames/s, achieved
TFLOP/s of the model stages against their FLOP count (counted on the meta device), peak GPU memory, and, for a
fast configuration (not fp32 eager), the largest difference of its [0, 1] map from the fp32 eager map of the
same weights on the same image. ``--node`` instead measures the node in its own process through a real ROS graph:
image stamp -> the outputs received, and where each frame's time goes (input, hand-over, decode, model, stages,
each output's build, publish and delivery), beside the engine alone on the same work. On CUDA every stage is
synchronised before its clock stops. The harnesses are in ``depthmaster_ros/bench/``; this is their command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cli_options import add_model_options, model_values, size_list


def output_list(text: str) -> tuple[str, ...]:
    """'depth,points' or 'all' -> output topic names, in the node's order."""
    from ..messages.topics import OUTPUT_TOPICS

    names = set(OUTPUT_TOPICS) if text.strip() == "all" else {item.strip() for item in text.split(",")}
    unknown = sorted(names - set(OUTPUT_TOPICS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown output(s) {', '.join(unknown) or text!r}; choose from "
                                         f"{', '.join(OUTPUT_TOPICS)} or all")
    return tuple(topic for topic in OUTPUT_TOPICS if topic in names)


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
    parser.add_argument("--node", action="store_true", help="measure the node in its own process: image stamp -> "
                        "outputs received, and where each frame's time goes (the engine alone on the same work "
                        "first, for comparison)")
    parser.add_argument("--outputs", type=output_list, default=("depth", "points"),
                        help="--node: the outputs to subscribe to, comma-separated, or 'all' (default depth,points)")
    parser.add_argument("--rate", type=float, default=0.0, metavar="HZ",
                        help="--node: publish frames at this rate whatever is served (throughput); default: one "
                             "frame at a time, 0.1 s after the last was served (latency)")
    parser.add_argument("--client-executor", choices=("single", "events"), default="single",
                        help="--node: the receiving client's rclpy executor (default single: "
                             "SingleThreadedExecutor, what rclpy.spin uses; events: the EventsExecutor)")
    parser.add_argument("--client-malloc", choices=("reuse", "default"), default="reuse",
                        help="--node: glibc malloc of this process (the engine alone and the receiving client): "
                             "reuse (default) keeps freed memory as the node does; default: glibc's defaults "
                             "(each large message received lands in freshly faulted pages)")
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
    if args.rate < 0:
        parser.error("--rate must be >= 0")
    if args.frames < 2 or args.noise < 0 or args.loop_seconds < 0:
        parser.error("--frames must be >= 2, --noise and --loop-seconds >= 0")
    if (args.random_full or args.random_tiny) and args.checkpoint is not None:
        parser.error("give one of --checkpoint PATH, --random-full or --random-tiny")
    if not (args.random_full or args.random_tiny or args.checkpoint is not None or args.temporal):
        parser.error("give one of --checkpoint PATH, --random-full or --random-tiny (or --temporal alone)")
    args.sizes = [(height, width) for width, height in args.sizes]  # (height, width) from here on
    args.values = model_values(args)
    return args


def print_node_result(result: dict) -> None:
    from ..bench.node_latency import NODE_STAGES, OUTPUT_TIMES

    cameras, topics = result["cameras"], ", ".join(result["outputs"])
    mode = (f"published at {result['rate_hz']:g} Hz ({result['published_hz']:.1f} achieved)" if result["rate_hz"]
            else "one at a time, 10 Hz")
    print(f"depthmaster-bench --node: {result['size']}, {cameras} camera(s), outputs {topics}; {result['frames']} "
          f"frames served ({result['lost']} {'not served' if result['rate_hz'] else 'lost'}), {mode}; receiving "
          f"executor: {result['client_executor']}\n  middleware of both processes: {result['middleware']}\n  this "
          f"process (the engine alone, the receiving client): {result['client_malloc']}")
    if not result["frames"]:
        print("  no frame was served")
        return
    engine = result.get("engine")
    if engine is not None:
        print(f"  the engine alone in this process, same model, parameters, cameras and outputs (p50 ms): model "
              f"{engine['model']:.1f}, stages + render {engine['stages + render']:.1f}, messages "
              f"{engine['messages']:.1f}; total {engine['total']:.1f}")
    print(f"  the node, image stamp -> the last output received: p50 {result['p50_ms']:.1f} ms, p95 "
          f"{result['p95_ms']:.1f} ms" + (f"; beyond the engine alone: {result['beyond_engine_p50_ms']:+.1f} ms "
                                          "(p50)" if "beyond_engine_p50_ms" in result else ""))
    busy = result["inference_thread_busy_p50_ms"] or float("nan")
    served = f"served {result['served_frames_per_s']:.2f} frames/s per camera; " if result["rate_hz"] else ""
    print(f"  {served}CPU cores used: node {result['node_cpu_cores']:.2f}, this client "
          f"{result['client_cpu_cores']:.2f}; the node's inference thread works {busy:.1f} ms per frame (p50, all "
          f"cameras: at most {1000.0 / busy:.1f} frames/s)")
    print(f"\n  where a frame's time goes{' (the slowest camera)' if cameras > 1 else ''}")
    print(f"  {'stage':<18}{'p50 ms':>9}{'p95 ms':>9}   what")
    descriptions = {name: what for name, what, *_ in NODE_STAGES}
    for stage, values in result["stages"].items():
        print(f"  {stage:<18}{values['p50_ms']:>9.2f}{values['p95_ms']:>9.2f}   {descriptions[stage]}")
    print("\n  per output, p50 ms: build the message; the publish call; from the publish call's start until the "
          "subscriber's middleware has it (delivered) and until its callback runs (callback)")
    print(f"  {'output':<19}" + "".join(f"{key:>11}" for key in OUTPUT_TIMES))
    for topic, entry in result["per_output"].items():
        if not entry["built"]:
            print(f"  {topic:<19}   {'not built (no subscriber)' if not entry['subscribed'] else 'none made'}")
            continue
        cells = "".join(f"{entry[key]['p50_ms']:>11.2f}" if key in entry else f"{'-':>11}" for key in OUTPUT_TIMES)
        print(f"  {topic:<19}{cells}" + ("" if entry["subscribed"] else "   (subscribed elsewhere)"))


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
        print_node_result(result)
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
