"""Image stamp -> depth and points received, through a real ROS graph: the node in its own process, fed at a
camera-like 10 Hz by a client in this one (``depthmaster-bench --node``). ``args``: the benchmark's options, as in
``model_stages.py`` (``values``, ``random_full``, ``sizes``, ``processing_res``, ``batch``: cameras served,
``warmup``, ``iterations``, ``image``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .model_stages import test_image


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
    values = args.values
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
