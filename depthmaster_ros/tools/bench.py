"""depthmaster-bench: time every stage of the processing path, per frame, and print p50/p95.

Stages: preprocess (resize, normalise, host -> device), encode (VAE encoder), unet (one pass + FE), decode (VAE
decoder + channel mean), postprocess (resize back, device -> host, metric depth, colormap), cloud (depth ->
organised xyz+rgb points), message build (the node's five ROS messages, when rclpy is importable). The model
stages need a checkpoint or a random architecture (cost does not depend on the weights); on CUDA every stage is
synchronised before its clock stops.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size '{text}' is not HEIGHTxWIDTH, e.g. 480x640") from None
    if height < 8 or width < 8:
        raise argparse.ArgumentTypeError(f"size '{text}' is too small (at least 8x8)")
    return height, width


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="depthmaster-bench", description=__doc__.split("\n\n")[0])
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="a checkpoint folder (or repo id in the local HF cache)")
    model.add_argument("--random-full", action="store_true", help="the published architecture, random weights")
    model.add_argument("--random-tiny", action="store_true", help="the toy test architecture, random weights")
    parser.add_argument("--sizes", type=lambda s: [parse_size(v) for v in s.split(",")], default=[(480, 640)],
                        help="comma-separated HEIGHTxWIDTH input sizes (default 480x640)")
    parser.add_argument("--processing-res", type=int, default=0, help="model resolution (default 0 = input size)")
    parser.add_argument("--batch", type=int, default=1, help="frames per forward pass (default 1)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first (default 2)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.iterations < 1 or args.warmup < 0:
        parser.error("--batch and --iterations must be >= 1, --warmup >= 0")
    return args


class StageTimer:
    def __init__(self, device):
        import torch

        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
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

        from ..ros.conversions import array_to_image, intrinsics_to_camera_info, points_to_cloud
    except ImportError:
        return None

    def build(products):
        header = Header(frame_id="camera_optical_frame")
        return [array_to_image(products.depth, "32FC1", header), array_to_image(products.relative, "32FC1", header),
                array_to_image(np.ascontiguousarray(products.colored[..., ::-1]), "bgr8", header),
                intrinsics_to_camera_info(products.camera, header), points_to_cloud(products.points, header)]

    return build


def bench_size(pipe, size, args) -> dict:
    import torch

    from ..geometry.pointcloud import depth_to_points
    from ..processing import DepthProcessor, ProcessingConfig
    from ..sample_scene import PinholeCamera, render
    from ..geometry.intrinsics import CameraIntrinsics

    height, width = size
    pinhole = PinholeCamera.with_size(width, height)
    rgb, _ = render(pinhole)
    camera = CameraIntrinsics.from_K(width, height, pinhole.K)
    config = ProcessingConfig(processing_res=args.processing_res, scale_mode="fixed", scale=0.5, shift=0.1)
    processor = DepthProcessor(pipe, config)
    build = message_builder()
    batch = torch.from_numpy(np.stack([rgb] * args.batch)).permute(0, 3, 1, 2)
    if pipe.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(pipe.device)

    timer = StageTimer(pipe.device)
    for iteration in range(args.warmup + args.iterations):
        if iteration == args.warmup:
            timer.times.clear()
        with torch.inference_mode():
            x = timer("preprocess", pipe.preprocess, batch, args.processing_res)
            latent = timer("encode", pipe.encode, x)
            latent = timer("unet", pipe.predict_latent, latent)
            prediction = timer("decode", pipe.decode, latent)
            relatives = timer("postprocess", lambda p: pipe.to_input_size(p, (height, width)).cpu().numpy(), prediction)
        for relative in relatives:  # per-frame work, timed per batch below
            products = timer("postprocess", processor.postprocess, rgb, relative, camera, {"colored", "depth"})
            products.points = timer("cloud", depth_to_points, products.depth, products.camera, 1, rgb)
            if build is not None:
                timer("message build", build, products)

    per_frame = {}
    for name, values in timer.times.items():
        values = np.array(values) * 1000.0
        if name in ("preprocess", "encode", "unet", "decode"):
            values = values / args.batch  # batch stages: time per frame
        elif name == "postprocess":  # one batch-level resize + batch per-frame calls per iteration
            values = values.reshape(args.iterations, 1 + args.batch).sum(axis=1) / args.batch
        per_frame[name] = {"p50_ms": float(np.percentile(values, 50)), "p95_ms": float(np.percentile(values, 95))}
    total = sum(stage["p50_ms"] for stage in per_frame.values())
    result = {"size": f"{height}x{width}", "batch": args.batch, "stages": per_frame, "total_p50_ms": total,
              "frames_per_s": 1000.0 / total}
    if pipe.device.type == "cuda":
        result["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(pipe.device) / 2**20
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ..model import CheckpointError, DepthMasterPipeline
    from ..model.architectures import random_pipeline

    try:
        if args.checkpoint:
            pipe = DepthMasterPipeline.from_pretrained(args.checkpoint, device=args.device, dtype=args.dtype)
        else:
            pipe = random_pipeline("full" if args.random_full else "tiny", device=args.device, dtype=args.dtype)
    except (CheckpointError, ValueError) as exc:
        print(f"depthmaster-bench: {exc}", file=sys.stderr)
        return 2
    device_name = str(pipe.device)
    if pipe.device.type == "cuda":
        import torch

        device_name += f" ({torch.cuda.get_device_name(pipe.device)})"
    print(f"depthmaster-bench: {pipe.describe()}; device {device_name}; processing_res {args.processing_res}; "
          f"batch {args.batch}; {args.iterations} iterations after {args.warmup} warm-up")
    results = []
    for size in args.sizes:
        result = bench_size(pipe, size, args)
        results.append(result)
        print(f"\n{result['size']} (HxW), batch {args.batch}: per frame")
        print(f"  {'stage':<16}{'p50 ms':>10}{'p95 ms':>10}")
        for name, stage in result["stages"].items():
            print(f"  {name:<16}{stage['p50_ms']:>10.2f}{stage['p95_ms']:>10.2f}")
        print(f"  {'total (p50)':<16}{result['total_p50_ms']:>10.2f}   -> {result['frames_per_s']:.2f} frames/s")
        if "peak_gpu_memory_mb" in result:
            print(f"  peak GPU memory {result['peak_gpu_memory_mb']:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"model": pipe.describe(), "device": device_name, "dtype": args.dtype,
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
