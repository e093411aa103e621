"""depthmaster-bench: time every stage of the processing path per frame, and the node end to end.

Stages: preprocess (resize, normalise, host -> device), encode (VAE encoder), unet (one pass + FE), decode (VAE
decoder), postprocess (resize back, metric depth, colormap, device -> host), cloud (depth -> organised xyz+rgb),
message build (the node's messages, when rclpy is importable). Printed per frame: p50/p95 ms, frames/s, achieved
TFLOP/s of the model stages against their FLOP count (counted on the meta device), peak GPU memory, and, for a
fast configuration (not fp32 eager), the largest difference of its [0, 1] map from the fp32 eager map of the
same weights on the same image. ``--node`` instead measures image stamp -> depth and cloud received through a
real ROS graph (the node in its own process). On CUDA every stage is synchronised before its clock stops.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .cli_options import add_model_options, create_backend, model_values, size_list


def parse_args(argv):
    from ..samples.drifting_sequence import Drift

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
    parser.add_argument("--temporal", action="store_true", help="measure the temporal stage instead: flicker and "
                        "AbsRel of metric depth on the generated sample sequences (moving camera, static camera, "
                        "scene cut; the first --sizes), with temporal_mode off, align and align_smooth in each "
                        "scale mode; without --checkpoint / --random-* the predictions are simulated drifting ones "
                        "(a known answer, no model)")
    parser.add_argument("--frames", type=int, default=30, help="--temporal: frames per sequence (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="--temporal, simulated predictions: the random seed of "
                        "their per-frame distortion (default 0)")
    parser.add_argument("--noise", type=float, default=Drift().noise, help="--temporal, simulated predictions: "
                        f"the per-pixel noise sd (default {Drift().noise}; the per-frame gain and offset sd are "
                        f"{Drift().gain} and {Drift().offset})")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.iterations < 1 or args.warmup < 0:
        parser.error("--batch and --iterations must be >= 1, --warmup >= 0")
    if args.frames < 2 or args.noise < 0:
        parser.error("--frames must be >= 2 and --noise >= 0")
    if (args.random_full or args.random_tiny) and args.checkpoint is not None:
        parser.error("give one of --checkpoint PATH, --random-full or --random-tiny")
    if not (args.random_full or args.random_tiny or args.checkpoint is not None or args.temporal):
        parser.error("give one of --checkpoint PATH, --random-full or --random-tiny (or --temporal alone)")
    args.sizes = [(height, width) for width, height in args.sizes]  # (height, width) from here on
    return args


class StageTimer:
    def __init__(self, device):
        import torch

        self.sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
        self.times: dict[str, list[float]] = {}

    def __call__(self, name, fn, *args):
        self.sync()
        start = time.perf_counter()
        result = fn(*args)
        self.sync()
        self.times.setdefault(name, []).append(time.perf_counter() - start)
        return result


def message_builder():
    """The node's per-frame message construction, or None where rclpy is not importable."""
    try:
        from std_msgs.msg import Header

        from ..messages.outputs import output_messages
        from ..messages.topics import OUTPUT_TOPICS
    except ImportError:
        return None
    header = Header(frame_id="camera_optical_frame")
    return lambda products: output_messages(products, header, set(OUTPUT_TOPICS), 0)


def make_backend(args, dtype=None, fast=True):
    """The benchmarked backend (``fast``: with the chosen backend; else eager) in ``dtype`` (default --dtype)."""
    from ..model.architectures import random_pipeline
    from ..model.backends import PipelineBackend

    values = model_values(args)
    values["dtype"] = dtype or values["dtype"]
    if not fast:
        values["backend"] = "eager"
    if args.checkpoint:
        return create_backend(values)
    preset = "full" if args.random_full else "tiny"
    backend = values["backend"]
    if backend == "onnxruntime":  # exported from the pipeline in memory, into the ONNX cache (seed 0: same weights)
        from ..model.backends import ModelConfig
        from ..model.onnx_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(ModelConfig.from_parameters(values), cache_key=f"random-{preset}-seed0",
                                  pipeline=lambda precision: random_pipeline(preset, device="cpu", dtype=precision))
    pipe = random_pipeline(preset, device=values["device"], dtype=values["dtype"])
    if backend not in ("eager", "compile", "cuda_graphs"):
        raise ValueError(f"--random-* builds the model in memory; backend {backend!r} needs --checkpoint")
    pipe.accelerate(compile=backend != "eager", cuda_graphs=backend == "cuda_graphs")
    return PipelineBackend(pipe, backend)


def test_image(args, size):
    from ..samples.sample_scene import PinholeCamera, render

    if args.image is None:
        return render(PinholeCamera.with_size(size[1], size[0]))[0]
    from PIL import Image

    with Image.open(args.image) as image:
        return np.asarray(image.convert("RGB").resize((size[1], size[0]), Image.BILINEAR))


def fast_error(args, backend, sizes) -> dict | None:
    """Max |fast - fp32 eager| of the [0, 1] map per size, for a configuration that is not fp32 eager."""
    import torch

    if backend.dtype == torch.float32 and backend.name == "eager":
        return None
    source = getattr(backend, "source_pipeline", None)  # the onnxruntime backend's random model, in PyTorch
    if source is not None and source.dtype == torch.float32:
        from ..model.backends import PipelineBackend

        reference = PipelineBackend(source)
    else:
        reference = make_backend(args, dtype="fp32", fast=False)
    errors = {}
    for size in sizes:
        image = test_image(args, size)
        fast = backend.infer([image], args.processing_res)[0].float().cpu().numpy()
        exact = reference.infer([image], args.processing_res)[0].float().cpu().numpy()
        errors[f"{size[1]}x{size[0]}"] = float(np.abs(fast - exact).max())
    del reference
    if backend.device.type == "cuda":
        torch.cuda.empty_cache()
    return errors


def bench_size(backend, size, args) -> dict:
    import torch

    from ..engine.config import ProcessingConfig
    from ..engine.engine import FrameEngine
    from ..engine.job import FrameJob
    from ..geometry.intrinsics import CameraIntrinsics
    from ..geometry.pointcloud import depth_to_points
    from ..model.flops import stage_flops
    from ..model.pipeline import to_input_size
    from ..model.resize import processing_size
    from ..samples.sample_scene import PinholeCamera

    pipe = getattr(backend, "pipeline", None)  # the stages, timed one by one
    if pipe is not None:
        model_stages = [("encode", pipe.encode), ("unet", pipe.predict_latent), ("decode", pipe.decode)]
    else:  # the onnxruntime backend: the model is one session
        model_stages = [(backend.name, backend.model_pass)]
    batch_stages = ("preprocess", *(name for name, _ in model_stages))
    device = backend.device
    height, width = size
    pinhole = PinholeCamera.with_size(width, height)
    rgb = test_image(args, size)
    camera = CameraIntrinsics.from_K(width, height, pinhole.K)
    config = ProcessingConfig(processing_res=args.processing_res, scale_mode="fixed", scale=0.5, shift=0.1)
    engine = FrameEngine(backend, max_batch=args.batch)
    job = FrameJob("", 0, rgb, config, camera=camera, outputs={"relative", "colored", "depth"})
    build = message_builder()
    batch = torch.from_numpy(np.stack([rgb] * args.batch)).permute(0, 3, 1, 2).contiguous(
        memory_format=pipe.memory_format if pipe is not None else torch.contiguous_format)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    timer = StageTimer(device)
    for iteration in range(args.warmup + args.iterations):
        if iteration == args.warmup:
            timer.times.clear()
        with torch.inference_mode():
            x = timer("preprocess", backend.preprocess if pipe is None else pipe.preprocess, batch,
                      args.processing_res)
            for name, stage in model_stages:
                x = timer(name, stage, x)
            relatives = timer("postprocess", to_input_size, x, (height, width))
        for relative in relatives:  # per-frame work, timed per frame and added up per batch below
            products = timer("postprocess", engine.finish, job, relative)
            depth = torch.as_tensor(products.depth, device=device)
            products.points = timer("cloud", depth_to_points, depth, products.camera, 1, rgb)
            if build is not None:
                timer("message build", build, products)

    per_frame = {}
    for name, values in timer.times.items():
        values = np.array(values) * 1000.0
        if name in batch_stages:
            values = values / args.batch  # batch stages: time per frame
        elif name == "postprocess":  # one batch-level resize + one call per frame, each iteration
            values = values.reshape(args.iterations, 1 + args.batch).sum(axis=1) / args.batch
        per_frame[name] = {"p50_ms": float(np.percentile(values, 50)), "p95_ms": float(np.percentile(values, 95))}
    total = sum(stage["p50_ms"] for stage in per_frame.values())
    model_ms = sum(per_frame[name]["p50_ms"] for name, _ in model_stages)
    proc_h, proc_w = processing_size(height, width, args.processing_res)
    result = {"size": f"{width}x{height}", "processing_size": f"{proc_w}x{proc_h}", "batch": args.batch,
              "stages": per_frame, "total_p50_ms": total, "frames_per_s": 1000.0 / total,
              "model_p50_ms": model_ms, "batch_latency_ms": model_ms * args.batch}
    source = pipe if pipe is not None else getattr(backend, "source_pipeline", None)
    if source is not None:  # the architecture is known: FLOPs
        flops = stage_flops(dict(source.unet.config), dict(source.vae.config), 1, proc_h, proc_w)
        result.update({"tflop_per_frame": sum(flops.values()) / 1e12,
                       "stage_tflop": {k: v / 1e12 for k, v in flops.items()},
                       "achieved_tflops": sum(flops.values()) / 1e12 / (model_ms / 1000.0)})
    if device.type == "cuda":
        result["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def node_latency(args) -> dict:
    """Stamp -> depth and points received, through a node process, at a camera-like 10 Hz. With ``--batch N``
    the node serves N cameras (``cameras: [cam0, ...]``), every frame is published on all of them with one stamp,
    and the latency runs until the last camera's outputs are received."""
    import rclpy

    from ..geometry.intrinsics import CameraIntrinsics
    from ..messages.conversions import stamp_to_ns
    from ..ros.client import DepthMasterClient
    from ..samples.sample_scene import PinholeCamera
    from ..samples.tiny_checkpoint import write_tiny_checkpoint

    workdir = Path(tempfile.mkdtemp(prefix="depthmaster-bench-"))
    checkpoint = args.checkpoint
    if not checkpoint:
        if args.random_full:
            raise SystemExit("--node needs --checkpoint or --random-tiny (a full random checkpoint is 5 GB)")
        checkpoint = str(write_tiny_checkpoint(workdir / "tiny"))
    height, width = args.sizes[0]
    values = model_values(args)
    command = [str(Path(sys.executable).parent / "depthmaster-node"), "--ros-args", "-r", "__ns:=/bench",
               "-p", f"checkpoint:={checkpoint}", "-p", f"device:={values['device']}",
               "-p", f"dtype:={values['dtype']}", "-p", f"backend:={values['backend']}",
               "-p", f"cpu_threads:={values['cpu_threads']}", "-p", f"processing_res:={args.processing_res}",
               "-p", "scale_mode:=fixed", "-p", f"warmup_size:={width}x{height}"]
    names = [f"cam{i}" for i in range(args.batch)] if args.batch > 1 else [""]
    if args.batch > 1:
        command += ["-p", f"cameras:=[{','.join(names)}]"]
    log = open(workdir / "node.log", "w")
    node = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    rclpy.init()
    clients = [DepthMasterClient(namespace="/bench" + (f"/{name}" if name else ""), outputs=("depth", "points"),
                                 name=f"bench_client{index}") for index, name in enumerate(names)]
    latencies, lost = [], 0
    try:
        for client in clients:
            if not client.wait_for_node(1800):
                raise SystemExit(f"the node did not come up; log: {workdir / 'node.log'}")
        pinhole = PinholeCamera.with_size(width, height)
        camera = CameraIntrinsics.from_K(width, height, pinhole.K)
        rgb = test_image(args, (height, width))
        frames = args.warmup + args.iterations
        clock = clients[0].get_clock()
        for index in range(frames):
            stamp = clock.now().nanoseconds
            for client in clients:
                client.publish_frame(rgb, camera, stamp)

            def served():
                return all(any(stamp_to_ns(m.header.stamp) == stamp for m in client.received[t])
                           for client in clients for t in ("depth", "points"))

            # Warm-up frames may compile; a timed frame not served within 10 s is counted as lost.
            answered = clients[0].spin_until(served, 60.0 if index < args.warmup else 10.0)
            if index >= args.warmup:
                if answered:
                    latencies.append((clock.now().nanoseconds - stamp) / 1e6)
                else:
                    lost += 1
            clients[0].spin_until(lambda: False, 0.1)  # 10 Hz
    finally:
        for client in clients:
            client.destroy_node()
        rclpy.try_shutdown()
        node.send_signal(signal.SIGINT)
        node.wait(60)
        log.close()
    values = np.array(latencies)
    return {"frames": int(values.size), "lost": lost, "cameras": len(names),
            "p50_ms": float(np.percentile(values, 50)) if values.size else None,
            "p95_ms": float(np.percentile(values, 95)) if values.size else None}


def temporal(args, backend) -> int:
    """--temporal: the temporal stage's flicker and AbsRel tables (tools/temporal_report.py)."""
    from ..samples.drifting_sequence import Drift
    from .temporal_report import temporal_report

    height, width = args.sizes[0]
    results, text = temporal_report(width, height, args.frames, backend, args.processing_res,
                                    Drift(noise=args.noise), args.seed)
    print(f"depthmaster-bench --temporal: {'the model' if backend is not None else 'no model'}; "
          f"{args.frames} frames per sequence\n")
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"temporal": results}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ..model import CheckpointError

    if args.node:
        result = node_latency(args)
        print(f"depthmaster-bench --node: image stamp -> depth and points received ({result['cameras']} "
              f"camera(s) per frame), {result['frames']} frames ({result['lost']} lost): "
              f"p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms" if result["frames"] else
              "depthmaster-bench --node: no frame was served")
        if args.json:
            args.json.write_text(json.dumps({"node_latency": result}, indent=2))
        return 0 if result["frames"] else 1
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
                                         "dtype": model_values(args)["dtype"], "backend": backend.name,
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
