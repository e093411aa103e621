"""The model's stages timed one by one on one backend (``depthmaster-bench``): preprocess (resize, normalise, host ->
device), encode (VAE encoder), unet (one pass + FE), decode (VAE decoder), postprocess (resize back, metric
depth, colormap, device -> host: the engine's ``finish``), cloud (depth -> organised xyz+rgb), message build (the
node's messages, when rclpy is importable); per frame p50/p95 ms, frames/s, achieved TFLOP/s of the model stages
against their FLOP count (counted on the meta device), peak GPU memory, and, for a fast configuration (not fp32
eager), the largest difference of its [0, 1] map from the fp32 eager map of the same weights on the same image.
On CUDA every stage is synchronised before its clock stops.

``args``: the benchmark's options (``tools/bench.py`` parses them): ``values`` (the parameter values of the
model: checkpoint, device, dtype, backend, cpu_threads), ``random_full`` / ``random_tiny`` (a random model built
in memory instead of the checkpoint), ``sizes`` ((height, width) each), ``processing_res``, ``batch``,
``iterations``, ``warmup`` and ``image`` (the picture for the fast-vs-fp32 error; None: the sample scene).
"""

from __future__ import annotations

import time

import numpy as np

from ..model.backends import PIPELINE_BACKENDS, backend_from_parameters


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

    values = dict(args.values)
    values["dtype"] = dtype or values["dtype"]
    if not fast:
        values["backend"] = "eager"
    if not (args.random_full or args.random_tiny):
        return backend_from_parameters(values)
    preset = "full" if args.random_full else "tiny"
    backend = values["backend"]
    if backend == "onnxruntime":  # exported from the pipeline in memory, into the ONNX cache (seed 0: same weights)
        from ..model.backends import ModelConfig
        from ..model.onnx_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(ModelConfig.from_parameters(values), cache_key=f"random-{preset}-seed0",
                                  pipeline=lambda precision: random_pipeline(preset, device="cpu", dtype=precision))
    pipe = random_pipeline(preset, device=values["device"], dtype=values["dtype"])
    if backend not in PIPELINE_BACKENDS:
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

    from ..processing_config import ProcessingConfig
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
