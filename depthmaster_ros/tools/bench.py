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
import gc
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
    if args.rate < 0:
        parser.error("--rate must be >= 0")
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
    pipe = random_pipeline("full" if args.random_full else "tiny", device=values["device"], dtype=values["dtype"])
    backend = values["backend"]
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
    from ..model.resize import processing_size
    from ..samples.sample_scene import PinholeCamera

    pipe = backend.pipeline  # the stages, timed one by one
    height, width = size
    pinhole = PinholeCamera.with_size(width, height)
    rgb = test_image(args, size)
    camera = CameraIntrinsics.from_K(width, height, pinhole.K)
    config = ProcessingConfig(processing_res=args.processing_res, scale_mode="fixed", scale=0.5, shift=0.1)
    engine = FrameEngine(backend, max_batch=args.batch)
    job = FrameJob("", 0, rgb, config, camera=camera, outputs={"relative", "colored", "depth"})
    build = message_builder()
    batch = torch.from_numpy(np.stack([rgb] * args.batch)).permute(0, 3, 1, 2).contiguous(
        memory_format=pipe.memory_format)
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
            relatives = timer("postprocess", pipe.to_input_size, prediction, (height, width))
        for relative in relatives:  # per-frame work, timed per frame and added up per batch below
            products = timer("postprocess", engine.finish, job, relative)
            depth = torch.as_tensor(products.depth, device=pipe.device)
            products.points = timer("cloud", depth_to_points, depth, products.camera, 1, rgb)
            if build is not None:
                timer("message build", build, products)

    per_frame = {}
    for name, values in timer.times.items():
        values = np.array(values) * 1000.0
        if name in ("preprocess", "encode", "unet", "decode"):
            values = values / args.batch  # batch stages: time per frame
        elif name == "postprocess":  # one batch-level resize + one call per frame, each iteration
            values = values.reshape(args.iterations, 1 + args.batch).sum(axis=1) / args.batch
        per_frame[name] = {"p50_ms": float(np.percentile(values, 50)), "p95_ms": float(np.percentile(values, 95))}
    total = sum(stage["p50_ms"] for stage in per_frame.values())
    model_ms = sum(per_frame[s]["p50_ms"] for s in ("encode", "unet", "decode"))
    proc_h, proc_w = processing_size(height, width, args.processing_res)
    flops = stage_flops(dict(pipe.unet.config), dict(pipe.vae.config), 1, proc_h, proc_w)
    result = {"size": f"{width}x{height}", "processing_size": f"{proc_w}x{proc_h}", "batch": args.batch,
              "stages": per_frame, "total_p50_ms": total, "frames_per_s": 1000.0 / total,
              "model_p50_ms": model_ms, "batch_latency_ms": model_ms * args.batch,
              "tflop_per_frame": sum(flops.values()) / 1e12,
              "stage_tflop": {k: v / 1e12 for k, v in flops.items()},
              "achieved_tflops": sum(flops.values()) / 1e12 / (model_ms / 1000.0)}
    if pipe.device.type == "cuda":
        result["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(pipe.device) / 2**20
    return result


OUTPUT_TIMES = ("build", "publish", "delivered", "callback")  # per output, see node_frame
NODE_STAGES = (  # (name, what it is, the bench's or the node's mark it starts at, the mark it ends at)
    ("input", "the image's publish call -> the node's image callback (middleware, executor, deserialisation)",
     "publish", "received"),
    ("waiting", "newest-frame hand-over to the inference thread", "received", "taken"),
    ("decode", "image message -> RGB array", "taken", "decoded"),
    ("pairing", "camera info and measurements of the frame", "decoded", "paired"),
    ("batch", "the other cameras' frames of the pass", "paired", "model_start"),
    ("model", "the model pass (engine.infer)", "model_start", "model_done"),
    ("cameras before", "the stages and outputs of the cameras before it in the pass", "model_done", "finishing"),
    ("stages + render", "temporal and scale stages, metric depth, cloud (engine.finish)", "finishing", "finished"),
)


def node_command(args, checkpoint: str, names: list[str]) -> list[str]:
    """The node process of ``--node``: the benchmark's model options, ``scale_mode fixed``, warmed up at the
    benchmark's size, serving ``names`` (``[""]``: one camera)."""
    height, width = args.sizes[0]
    values = model_values(args)
    command = [str(Path(sys.executable).parent / "depthmaster-node"), "--ros-args", "-r", "__ns:=/bench",
               "-p", f"checkpoint:={checkpoint}", "-p", f"device:={values['device']}",
               "-p", f"dtype:={values['dtype']}", "-p", f"backend:={values['backend']}",
               "-p", f"cpu_threads:={values['cpu_threads']}", "-p", f"processing_res:={args.processing_res}",
               "-p", "scale_mode:=fixed", "-p", f"warmup_size:={width}x{height}"]
    if names != [""]:
        command += ["-p", f"cameras:=[{','.join(names)}]"]
    return command


def engine_reference(args, checkpoint: str, topics: tuple[str, ...], names: list[str]) -> dict:
    """The engine alone, in this process, on the node's work: the same checkpoint, parameters (``scale_mode
    fixed``), image, camera, cameras (``names``, one pass for all) and wanted outputs, the messages built as the
    node builds them; p50 ms of the model pass, the stages and outputs (engine.finish, all cameras), the messages
    (all cameras), and their sum per frame."""
    import torch
    from std_msgs.msg import Header

    from ..engine.config import ProcessingConfig
    from ..engine.engine import FrameEngine
    from ..engine.job import FrameJob
    from ..geometry.intrinsics import CameraIntrinsics
    from ..messages.outputs import output_messages
    from ..messages.topics import needed_outputs
    from ..parameters import defaults
    from ..samples.sample_scene import PinholeCamera

    height, width = args.sizes[0]
    values = {**model_values(args), "checkpoint": checkpoint, "processing_res": args.processing_res,
              "scale_mode": "fixed"}
    backend = create_backend(values)
    backend.warmup(width, height, batch=len(names), processing_res=args.processing_res)
    engine = FrameEngine(backend, max_batch=len(names))
    config = ProcessingConfig.from_parameters({**defaults(), **values})
    camera = CameraIntrinsics.from_K(width, height, PinholeCamera.with_size(width, height).K)
    rgb = test_image(args, (height, width))
    header = Header(frame_id="camera_optical_frame")
    times = {"model": [], "stages + render": [], "messages": []}
    for index in range(args.warmup + args.iterations):
        jobs = [FrameJob(name, index * 100_000_000, rgb, config, camera=camera, outputs=needed_outputs(topics))
                for name in names]
        start = time.perf_counter()
        with torch.inference_mode():
            relatives = engine.infer(jobs)
        model = time.perf_counter()
        products = [engine.finish(job, relative) for job, relative in zip(jobs, relatives)]
        finished = time.perf_counter()
        messages = [output_messages(item, header, set(topics), item.stamp_ns) for item in products]
        built = time.perf_counter()
        for item, made in zip(products, messages):
            if item.failed is not None or {topic for topic, _ in made} != set(topics):
                raise SystemExit(f"the engine did not make {', '.join(topics)}: {item.missing}")
        if index >= args.warmup:
            for name, seconds in (("model", model - start), ("stages + render", finished - model),
                                  ("messages", built - finished)):
                times[name].append(seconds * 1000.0)
    result = {name: float(np.percentile(values, 50)) for name, values in times.items()}
    result["total"] = float(np.percentile(np.sum([times[name] for name in times], axis=0), 50))
    return result


def _stamp_ns(message) -> int:
    """The image stamp a received output carries (depth/scale: its first value, seconds); a forgotten one is its
    stamp already (:func:`_forget_payloads`)."""
    from ..messages.conversions import stamp_to_ns

    if isinstance(message, int):
        return message
    if hasattr(message, "header"):
        return stamp_to_ns(message.header.stamp)
    return round(message.data[0] * 1e9)


def _carries(message, stamp: int) -> bool:
    return abs(_stamp_ns(message) - stamp) < 1000  # depth/scale's float seconds are good to a microsecond


def _forget_payloads(clients) -> None:
    """Keep only the stamps of what the clients received (a long run at several cameras would otherwise hold
    gigabytes of clouds)."""
    for client in clients:
        for messages in list(client.received.values()):
            for index, message in enumerate(messages):
                messages[index] = _stamp_ns(message)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_latency(args) -> dict:
    """Image stamp -> the wanted outputs received, through a node process, and where each frame's time goes.

    First the engine alone in this process on the same work (:func:`engine_reference`), then the node in its own
    process with a client here that plays the camera(s) and subscribes to ``--outputs``. With ``--batch N`` the
    node serves N cameras (``cameras: [cam0, ...]``), every frame is published on all of them with one stamp, and
    a frame is served when every camera's outputs are received. Without ``--rate`` one frame at a time, 0.1 s
    after the last was served (latency); with ``--rate HZ`` frames are published at that rate whatever the node
    serves (throughput: the node keeps the newest frame of each camera and drops the rest).

    The breakdown pairs the bench's CLOCK_MONOTONIC timestamps (publish, each output's callback) with the node's
    per-frame record on ``~/frame_timing`` (``ros/frame_timing.py``); the middleware's own share of an output's
    arrival comes from its MessageInfo (source and reception timestamps of the system clock)."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    from ..geometry.intrinsics import CameraIntrinsics
    from ..ros.client import DepthMasterClient
    from ..ros.frame_timing import FrameTiming
    from ..ros.middleware_profile import use_package_profile
    from ..samples.sample_scene import PinholeCamera
    from ..samples.tiny_checkpoint import write_tiny_checkpoint

    workdir = Path(tempfile.mkdtemp(prefix="depthmaster-bench-"))
    checkpoint = args.checkpoint
    if not checkpoint:
        if args.random_full:
            raise SystemExit("--node needs --checkpoint or --random-tiny (a full random checkpoint is 5 GB)")
        checkpoint = str(write_tiny_checkpoint(workdir / "tiny"))
    topics = args.outputs
    names = [f"cam{i}" for i in range(args.batch)] if args.batch > 1 else [""]
    reference = engine_reference(args, checkpoint, topics, names)
    gc.collect()  # its model, before the node loads its own
    height, width = args.sizes[0]
    # this process plays the camera, and publishes its images as the docs ask of a camera driver: with the
    # package's Fast DDS profile (unless the environment chooses); the node inherits the choice
    middleware = use_package_profile()
    log = open(workdir / "node.log", "w")
    node = subprocess.Popen(node_command(args, checkpoint, names), stdout=log, stderr=subprocess.STDOUT,
                            env=os.environ.copy())
    rclpy.init()
    clients = [DepthMasterClient(namespace="/bench" + (f"/{name}" if name else ""), outputs=topics,
                                 name=f"bench_client{index}", executor=args.client_executor)
               for index, name in enumerate(names)]
    records: dict[tuple[str, int], FrameTiming] = {}

    def keep(msg):
        record = FrameTiming.from_json(msg.data)
        records[(record.camera, record.stamp_ns)] = record

    timing_sub = clients[0].create_subscription(String, "/bench/depthmaster/frame_timing", keep,
                                                QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    frames, lost = [], 0
    try:
        for client in clients:
            if not client.wait_for_node(1800) or not client.spin_until(lambda: timing_sub.get_publisher_count(),
                                                                        30):
                raise SystemExit(f"the node did not come up; log: {workdir / 'node.log'}")
        camera = CameraIntrinsics.from_K(width, height, PinholeCamera.with_size(width, height).K)
        rgb = test_image(args, (height, width))
        count = args.warmup + args.iterations
        clock = clients[0].get_clock()
        offset = time.time_ns() - time.monotonic_ns()  # system clock - CLOCK_MONOTONIC, for MessageInfo times
        sent = []  # per frame: stamp, its CLOCK_MONOTONIC, per camera when its publish call started
        window = (0.0, 0.0, 0.0)
        for index in range(count):
            if index == args.warmup:
                window = (time.monotonic(), _cpu_seconds(node.pid), sum(os.times()[:2]))
            stamp = clock.now().nanoseconds
            stamp_mono = time.monotonic_ns()
            published = []  # per camera, when its image's publish call started
            for client in clients:
                published.append(time.monotonic_ns())
                client.publish_frame(rgb, camera, stamp)
            sent.append((stamp, stamp_mono, published))
            _forget_payloads(clients)
            if args.rate:
                clients[0].spin_until(lambda: False, max(0.0, stamp_mono / 1e9 + 1.0 / args.rate - time.monotonic()))
                continue

            def served():
                return all(any(_carries(m, stamp) for m in client.received[t])
                           for client in clients for t in topics)

            # Warm-up frames may compile; a timed frame not served within 10 s is counted as lost.
            clients[0].spin_until(served, 60.0 if index < args.warmup else 10.0)
            clients[0].spin_until(lambda: False, 0.1)  # 10 Hz
        elapsed = time.monotonic() - window[0]  # the timed frames' window, and the CPU the processes used in it
        node_cpu = (_cpu_seconds(node.pid) - window[1]) / elapsed
        client_cpu = (sum(os.times()[:2]) - window[2]) / elapsed
        clients[0].spin_until(lambda: False, 2.0 if args.rate else 0.5)  # the last outputs and timing records
        for stamp, stamp_mono, published in sent[args.warmup:]:
            frame = node_frame(stamp, stamp_mono, published, clients, names, topics, records, offset)
            if frame is None:
                lost += 1
            else:
                frames.append(frame)
    finally:
        for client in clients:
            client.destroy_node()
        rclpy.try_shutdown()
        node.send_signal(signal.SIGINT)
        node.wait(60)
        log.close()
    result = node_summary(frames, lost, names, topics, reference, args, elapsed, node_cpu, client_cpu)
    result["middleware"] = middleware
    return result


def node_frame(stamp, stamp_mono, published, clients, names, topics, records, offset) -> dict | None:
    """One frame's times (ms) from the bench's and the node's timestamps, per camera; None if an output never
    arrived. ``end_to_end``: the stamp -> the last wanted output's callback of the last camera."""
    cameras, last = {}, 0
    for name, client, before in zip(names, clients, published):
        arrivals = {}
        for topic in topics:
            index = next((i for i, m in enumerate(client.received[topic]) if _carries(m, stamp)), None)
            if index is None:
                return None
            arrivals[topic] = (client.receive_times[topic][index], client.message_info[topic][index])
        last = max([last] + [t for t, _ in arrivals.values()])
        record = records.get((name, stamp))
        if record is None:  # its timing record was lost: the frame counts, without its breakdown
            continue
        marks = {**record.marks, "publish": before}
        stages = {stage: (marks[end] - marks[start]) / 1e6 for stage, _, start, end in NODE_STAGES
                  if start in marks and end in marks}
        outputs = {}
        for topic, started, built, sent in record.outputs:
            entry = outputs[topic] = {"build": (built - started) / 1e6, "publish": (sent - built) / 1e6}
            if topic in arrivals:  # from the start of its publish call
                callback, info = arrivals[topic]
                if info is not None:
                    entry["delivered"] = (info["received_timestamp"] - offset - built) / 1e6
                entry["callback"] = (callback - built) / 1e6
        end = max(t for t, _ in arrivals.values())
        cameras[name] = {"stages": stages, "outputs": outputs, "end_to_end": (end - stamp_mono) / 1e6}
    return {"end_to_end": (last - stamp_mono) / 1e6, "cameras": cameras}


def _slowest(frame: dict) -> tuple[dict, dict]:
    """A frame's stage and output times, the camera that took longest counting for each."""
    stages, outputs = {}, {}
    for camera in frame["cameras"].values():
        for stage, value in camera["stages"].items():
            stages[stage] = max(stages.get(stage, value), value)
        for topic, entry in camera["outputs"].items():
            for key, value in entry.items():
                slot = outputs.setdefault(topic, {})
                slot[key] = max(slot.get(key, value), value)
    return stages, outputs


def _busy(frame: dict) -> float:
    """How long the node's inference thread worked on a frame (all its cameras): the model pass once, and per
    camera its decode, pairing, stages and outputs."""
    cameras = list(frame["cameras"].values())
    model = max((camera["stages"].get("model", 0.0) for camera in cameras), default=0.0)
    return model + sum(sum(camera["stages"].get(s, 0.0) for s in ("decode", "pairing", "stages + render"))
                       + sum(o["build"] + o["publish"] for o in camera["outputs"].values()) for camera in cameras)


def node_summary(frames, lost, names, topics, reference, args, elapsed, node_cpu, client_cpu) -> dict:
    """p50 / p95 of every time of :func:`node_frame` over the frames (per frame, the slowest camera), the
    engine's reference, the rates."""
    from ..messages.topics import OUTPUT_TOPICS

    def p(values, q):
        return float(np.percentile(values, q)) if len(values) else None

    end_to_end = [f["end_to_end"] for f in frames]
    slowest = [_slowest(f) for f in frames]
    stages = {stage: {"p50_ms": p(values, 50), "p95_ms": p(values, 95)} for stage, values in (
        (stage, [s[stage] for s, _ in slowest if stage in s]) for stage, *_ in NODE_STAGES) if values}
    outputs = {}
    for topic in OUTPUT_TOPICS:
        entries = [o[topic] for _, o in slowest if topic in o]
        outputs[topic] = {"subscribed": topic in topics, "built": len(entries)}
        for key in OUTPUT_TIMES:
            values = [entry[key] for entry in entries if key in entry]
            if values:
                outputs[topic][key] = {"p50_ms": p(values, 50), "p95_ms": p(values, 95)}
    busy = [_busy(f) for f in frames if f["cameras"]]
    result = {"frames": len(frames), "lost": lost, "cameras": len(names), "outputs": list(topics),
              "size": f"{args.sizes[0][1]}x{args.sizes[0][0]}", "rate_hz": args.rate or None,
              "client_executor": args.client_executor,
              "p50_ms": p(end_to_end, 50), "p95_ms": p(end_to_end, 95), "stages": stages, "per_output": outputs,
              "inference_thread_busy_p50_ms": p(busy, 50), "per_frame": frames,
              "served_frames_per_s": len(frames) / elapsed if elapsed > 0 else None,
              "node_cpu_cores": node_cpu, "client_cpu_cores": client_cpu}
    if reference is not None:
        result["engine"] = reference
        if frames:
            result["beyond_engine_p50_ms"] = result["p50_ms"] - reference["total"]
    return result


def print_node_result(result: dict) -> None:
    cameras, topics = result["cameras"], ", ".join(result["outputs"])
    mode = f"published at {result['rate_hz']:g} Hz" if result["rate_hz"] else "one at a time, 10 Hz"
    print(f"depthmaster-bench --node: {result['size']}, {cameras} camera(s), outputs {topics}; {result['frames']} "
          f"frames served ({result['lost']} {'not served' if result['rate_hz'] else 'lost'}), {mode}; receiving "
          f"executor: {result['client_executor']}\n  middleware of both processes: {result['middleware']}")
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
        print_node_result(result)
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
    if not hasattr(backend, "pipeline"):
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
        print(f"  model {result['model_p50_ms']:.2f} ms per frame ({result['batch_latency_ms']:.2f} ms per batch of "
              f"{args.batch}); {result['tflop_per_frame']:.3f} TFLOP per frame -> "
              f"{result['achieved_tflops']:.2f} TFLOP/s achieved")
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
