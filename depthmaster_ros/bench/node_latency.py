"""The node in its own process, through a real ROS graph (``depthmaster-bench --node``): image stamp -> the wanted
outputs received, and where each frame's time goes. A client in this process plays the camera(s) and subscribes to
the outputs; the node's per-frame timing record (``~/frame_timing``, ``ros/frame_timing.py``) and this process's
timestamps share CLOCK_MONOTONIC. The engine alone on the same work runs first, in this process, for comparison.

``args``: the benchmark's options, as in ``model_stages.py`` (``values``, ``checkpoint``, ``random_full``,
``sizes``, ``processing_res``, ``batch``: cameras served, ``warmup``, ``iterations``, ``image``) and ``outputs``
(topics to subscribe to), ``rate`` (Hz; 0: one frame at a time), ``client_executor`` (single or events) and
``client_malloc`` (reuse: this process keeps freed memory as the node does, ``ros/memory_reuse.py``; default:
glibc's defaults, so every large message received is copied into freshly faulted pages).
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..model.backends import backend_from_parameters
from .model_stages import test_image


OUTPUT_TIMES = ("build", "publish", "delivered", "callback")  # per output, see node_frame
NODE_STAGES = (  # (name, what it is, the bench's or the node's mark it starts at, the mark it ends at)
    ("input", "the image's publish call -> the node's image callback (middleware, executor, deserialisation)",
     "publish", "received"),
    ("waiting", "newest-frame hand-over to the inference thread", "received", "taken"),
    ("decode", "image message -> RGB array", "taken", "decoded"),
    ("batch", "the other cameras' frames of the pass", "decoded", "model_start"),
    ("model", "the model pass (engine.infer)", "model_start", "model_done"),
    ("cameras before", "the stages and outputs of the cameras before it in the pass", "model_done", "finishing"),
    ("pairing", "camera info and measurements of the frame (after the pass)", "finishing", "paired"),
    ("stages + render", "temporal and scale stages, metric depth, cloud (engine.finish)", "paired", "finished"),
)


def node_command(args, checkpoint: str, names: list[str]) -> list[str]:
    """The node process of ``--node``: the benchmark's model options, ``scale_mode fixed``, warmed up at the
    benchmark's size, serving ``names`` (``[""]``: one camera)."""
    height, width = args.sizes[0]
    values = args.values
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

    from ..processing_config import ProcessingConfig
    from ..engine.engine import FrameEngine
    from ..engine.job import FrameJob
    from ..geometry.intrinsics import CameraIntrinsics
    from ..messages.outputs import output_messages
    from ..messages.topics import needed_outputs
    from ..parameters import defaults
    from ..samples.sample_scene import PinholeCamera

    height, width = args.sizes[0]
    values = {**args.values, "checkpoint": checkpoint, "processing_res": args.processing_res,
              "scale_mode": "fixed"}
    backend = backend_from_parameters(values)
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
    from ..ros.memory_reuse import keep_freed_memory
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
    # the engine alone and the receiving client: by default with the node's malloc settings (a Python subscriber
    # without them spends ~8 ms of a 640x480 frame faulting in fresh pages for the cloud it receives)
    memory = keep_freed_memory() if args.client_malloc == "reuse" else "malloc: glibc defaults"
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
        first = time.monotonic()
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
            if args.rate:  # on a fixed schedule: a late frame does not delay the ones after it
                clients[0].spin_until(lambda: False, max(0.0, first + (index + 1) / args.rate - time.monotonic()))
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
    result["client_malloc"] = memory
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
              "published_hz": args.iterations / elapsed if args.rate and elapsed > 0 else None,
              "node_cpu_cores": node_cpu, "client_cpu_cores": client_cpu}
    if reference is not None:
        result["engine"] = reference
        if frames:
            result["beyond_engine_p50_ms"] = result["p50_ms"] - reference["total"]
    return result
