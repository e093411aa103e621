#!/usr/bin/env python3
"""Drive a real depthmaster node process under load and at its limits, and print what it did.

    python3 scripts/node_load_probe.py memory [--cases jpeg png raw] [--size 7000x7000]
    python3 scripts/node_load_probe.py flood [--frames 200] [--rate 10] [--sizes 640x480,1280x720,320x240]

``memory``: for each case a fresh node (tiny random model unless --checkpoint, processing_res 64, scale_mode fixed,
every output subscribed) serves fifty 640x480 frames (its resident memory grows over the first forty: the
middleware's queues fill, each thread's allocator arena forms); its resident memory then is the steady state
(VmRSS). The peak is reset (``/proc/PID/clear_refs``), one hostile frame is sent with its camera info: a JPEG or a PNG
of a few hundred bytes declaring SIZE, or a raw rgb8 image of that size. The peak while the node handles it (VmHWM)
and the resident memory after twenty more 640x480 frames are printed as multiples of the steady state.

``flood``: one node; FRAMES raw rgb8 frames at RATE Hz from reliable publishers, each camera info published just
before its image with the same stamp (the sizes in turn). The node's own count (/diagnostics): the frames it
processed and those it published without the metric outputs (depth, points, depth/scale: its camera info missing);
and what the probe received: the frames with an output, and those with all six (depth, depth/camera_info,
depth/relative, depth/colored, points, depth/scale). The two can differ by what the middleware lost on the way: a
reliable sample lost in transport is sent again at the next heartbeat (3 s with Fast DDS), and the node keeps only
``output_depth`` (5) samples per output.

``--json PATH`` also writes the results as JSON. Needs the ROS 2 Python packages of the venv; the node runs on this
machine with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from depthmaster_ros.host_memory import process_status

ALL_SIX = ("depth", "depth/camera_info", "depth/relative", "depth/colored", "points", "depth/scale")
MIB = 2**20


def reset_peak(pid: int) -> None:
    """Set the process's VmHWM back to its current RSS (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class Node:
    def __init__(self, namespace: str, log: Path, **params):
        args = [str(Path(sys.executable).parent / "depthmaster-node"), "--ros-args", "-r", f"__ns:={namespace}"]
        for key, value in params.items():
            args += ["-p", f"{key}:={value}"]
        self.log_path = log
        self._log = open(log, "w")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def stamps_of(client, topic: str) -> set[int]:
    from depthmaster_ros.messages.conversions import stamp_to_ns

    return {stamp_to_ns(m.header.stamp) for m in list(client.received[topic]) if hasattr(m, "header")}


def scale_stamps(client) -> set[int]:
    return {round(m.data[0] * 1e9) for m in list(client.received["depth/scale"])}


def complete(client, stamp: int) -> bool:
    """All six outputs of this frame arrived (depth/scale carries the stamp in its data, in seconds)."""
    return all(stamp in stamps_of(client, t) for t in ALL_SIX[:-1]) and any(
        abs(s - stamp) < 1000 for s in scale_stamps(client))


def serve_normal(client, frames: int, compressed: str | None = None, timeout: float = 300.0) -> None:
    """Send 640x480 frames (with camera info; ``compressed``: 'jpeg' for CompressedImage) until ``frames`` of them
    have been answered on depth/relative."""
    from depthmaster_ros.samples.sample_scene import PinholeCamera, render
    from depthmaster_ros.geometry.intrinsics import CameraIntrinsics

    pinhole = PinholeCamera.with_size(640, 480)
    rgb, _ = render(pinhole, t=0.0)
    camera = CameraIntrinsics.from_K(640, 480, pinhole.K)
    answered, deadline = 0, time.monotonic() + timeout
    while answered < frames and time.monotonic() < deadline:
        stamp = client.get_clock().now().nanoseconds
        client.publish_frame(rgb, camera, stamp, compressed=compressed)
        if client.spin_until(lambda: stamp in stamps_of(client, "depth/relative"), 10.0):
            answered += 1
    if answered < frames:
        raise RuntimeError(f"the node answered {answered} of {frames} normal frames")


def hostile_message(case: str, width: int, height: int, header):
    from sensor_msgs.msg import CompressedImage, Image

    from depthmaster_ros.samples.hostile_images import jpeg_bomb, png_bomb

    if case == "jpeg":
        return CompressedImage(header=header, format="jpeg", data=jpeg_bomb(width, height))
    if case == "png":
        return CompressedImage(header=header, format="png", data=png_bomb(width, height))
    return Image(header=header, height=height, width=width, encoding="rgb8", step=width * 3,
                 data=bytes(width * height * 3))


def memory_case(case: str, size: tuple[int, int], checkpoint: str, folder: Path, extra: dict,
                outputs: tuple[str, ...] = ALL_SIX) -> dict:
    import numpy as np

    from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
    from depthmaster_ros.messages.conversions import intrinsics_to_camera_info, make_header
    from depthmaster_ros.ros.client import DepthMasterClient

    namespace = f"/memory_{case}"
    transport = "raw" if case == "raw" else "compressed"
    node = Node(namespace, folder / f"{case}.log", checkpoint=checkpoint, processing_res=64, scale_mode="fixed",
                input_transport=transport, **extra)
    client = DepthMasterClient(namespace=namespace, outputs=outputs)
    try:
        if not client.wait_for_node(120.0):
            raise RuntimeError("the node did not come up: " + node.log_path.read_text()[-2000:])
        serve_normal(client, 50, None if case == "raw" else "jpeg")
        client.clear()
        time.sleep(2.0)
        steady = process_status(node.process.pid)["VmRSS"]
        reset_peak(node.process.pid)
        width, height = size
        camera = CameraIntrinsics.from_K(width, height, np.array([[width, 0, (width - 1) / 2],
                                                                   [0, width, (height - 1) / 2], [0, 0, 1.0]]))
        stamp = client.get_clock().now().nanoseconds
        header = make_header(stamp, "camera_optical_frame")
        before = client.latest_diagnostics()
        client.info_pub.publish(intrinsics_to_camera_info(camera, header))
        message = hostile_message(case, width, height, header)
        (client.image_pub if case == "raw" else client.compressed_pub).publish(message)
        del message

        def handled():
            diagnostics = client.latest_diagnostics()
            moved = any(int(diagnostics.get(k, 0)) > int(before.get(k, 0)) for k in ("rejected", "errors"))
            return moved or stamp in stamps_of(client, "depth/relative")

        client.spin_until(handled, 300.0)
        time.sleep(2.0)
        status = process_status(node.process.pid)
        peak, settled = status["VmHWM"], status["VmRSS"]
        served = stamp in stamps_of(client, "depth/relative")
        outcome = "no answer"
        if served:
            relative = next(m for m in client.received["depth/relative"] if
                            m.header.stamp.sec * 10**9 + m.header.stamp.nanosec == stamp)
            outcome = f"served at {relative.width}x{relative.height}" + (
                ", all six outputs" if outputs == ALL_SIX and client.spin_until(lambda: complete(client, stamp), 10.0)
                else "")
        elif handled():
            outcome = "refused: " + client.latest_diagnostics().get("last_rejection", "")
        client.clear()
        serve_normal(client, 20, None if case == "raw" else "jpeg")
        time.sleep(2.0)
        after = process_status(node.process.pid)["VmRSS"]
        return {"case": case, "size": f"{width}x{height}", "steady_mb": steady / MIB, "peak_mb": peak / MIB,
                "settled_mb": settled / MIB, "after_mb": after / MIB, "peak_factor": peak / steady, "after_factor": after / steady,
                "outcome": outcome}
    finally:
        client.destroy_node()
        node.stop()


def flood(sizes: list[tuple[int, int]], frames: int, rate: float, checkpoint: str, folder: Path,
          extra: dict) -> dict:
    from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
    from depthmaster_ros.ros.client import DepthMasterClient
    from depthmaster_ros.samples.sample_scene import PinholeCamera, render

    namespace = "/flood"
    node = Node(namespace, folder / "flood.log", checkpoint=checkpoint, processing_res=64, scale_mode="fixed",
                **extra)
    client = DepthMasterClient(namespace=namespace)
    try:
        if not client.wait_for_node(120.0):
            raise RuntimeError("the node did not come up: " + node.log_path.read_text()[-2000:])
        scenes = []
        for width, height in sizes:
            pinhole = PinholeCamera.with_size(width, height)
            scenes.append((render(pinhole, t=0.0)[0], CameraIntrinsics.from_K(width, height, pinhole.K)))
        serve_normal(client, 2)
        time.sleep(1.5)  # the warm-up's counts on /diagnostics
        diagnostics = client.latest_diagnostics()
        before = {key: int(diagnostics.get(key, 0)) for key in ("processed", "without_metric")}
        client.clear()
        sent: dict[int, str] = {}
        start = time.monotonic()
        for index in range(frames):
            time.sleep(max(0.0, start + index / rate - time.monotonic()))
            rgb, camera = scenes[index % len(scenes)]
            stamp = client.get_clock().now().nanoseconds
            client.publish_frame(rgb, camera, stamp)  # camera info first, then the image, same stamp
            sent[stamp] = f"{camera.width}x{camera.height}"
        client.spin_until(lambda: False, 10.0)  # the last frames' outputs
        counts = client.latest_diagnostics()
        processed = stamps_of(client, "depth/relative") & set(sent)
        result = {"frames": frames, "rate_hz": rate, "sizes": {}}
        for size in dict.fromkeys(sent.values()):
            ours = {s for s in processed if sent[s] == size}
            result["sizes"][size] = {"sent": sum(1 for v in sent.values() if v == size), "processed": len(ours),
                                     "all_six": sum(1 for s in ours if complete(client, s))}
        result["processed"] = len(processed)
        result["all_six"] = sum(1 for s in processed if complete(client, s))
        missing: dict[str, int] = {}
        for stamp in processed:
            for topic in ALL_SIX[:-1]:
                if stamp not in stamps_of(client, topic):
                    missing[topic] = missing.get(topic, 0) + 1
            if not any(abs(s - stamp) < 1000 for s in scale_stamps(client)):
                missing["depth/scale"] = missing.get("depth/scale", 0) + 1
        result["missing"] = missing
        result["log"] = str(node.log_path)
        result["diagnostics"] = client.latest_diagnostics()
        result["node_processed"] = int(counts.get("processed", 0)) - before["processed"]
        result["node_without_metric"] = int(counts.get("without_metric", 0)) - before["without_metric"]
        return result
    finally:
        client.destroy_node()
        node.stop()


def parse_size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("memory", "flood"))
    parser.add_argument("--checkpoint", help="checkpoint folder (default: a tiny random one, made now)")
    parser.add_argument("--cases", nargs="+", default=["jpeg", "png", "raw"], choices=("jpeg", "png", "raw"))
    parser.add_argument("--size", default="7000x7000", help="memory: the hostile frame's size")
    parser.add_argument("--outputs", default=",".join(ALL_SIX), help="memory: the outputs subscribed")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--sizes", default="640x480", help="flood: comma-separated sizes, sent in turn")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="an extra node parameter")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    extra = dict(item.split(":=", 1) for item in args.param)
    import rclpy

    folder = Path(tempfile.mkdtemp(prefix="depthmaster-probe-"))
    checkpoint = args.checkpoint
    if checkpoint is None:
        from depthmaster_ros.samples.tiny_checkpoint import write_tiny_checkpoint

        checkpoint = str(write_tiny_checkpoint(folder / "tiny"))
    rclpy.init()
    try:
        if args.mode == "memory":
            outputs = tuple(args.outputs.split(","))
            results = [memory_case(case, parse_size(args.size), checkpoint, folder, extra, outputs)
                       for case in args.cases]
            print(f"{'case':5} {'size':10} {'steady MiB':>10} {'peak MiB':>8} {'x':>5} {'2 s later':>9} "
                  f"{'after MiB':>9} {'x':>5}  outcome")
            for r in results:
                print(f"{r['case']:5} {r['size']:10} {r['steady_mb']:10.0f} {r['peak_mb']:8.0f} {r['peak_factor']:5.2f} "
                      f"{r['settled_mb']:9.0f} {r['after_mb']:9.0f} {r['after_factor']:5.2f}  {r['outcome']}")
        else:
            results = flood([parse_size(s) for s in args.sizes.split(",")], args.frames, args.rate, checkpoint,
                            folder, extra)
            print(f"{results['frames']} frames at {results['rate_hz']:g} Hz: the node processed "
                  f"{results['node_processed']}, {results['node_without_metric']} of them without metric outputs; "
                  f"received: {results['processed']} frames, {results['all_six']} with all six outputs")
            for size, r in results["sizes"].items():
                print(f"  {size}: sent {r['sent']}, received {r['processed']}, with all six outputs {r['all_six']}")
            if results["missing"]:
                print("  received frames without: " + ", ".join(f"{t} {n}" for t, n in results["missing"].items()))
            print("  /diagnostics: " + results["diagnostics"].get("message", ""))
    finally:
        rclpy.try_shutdown()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"(node logs in {folder})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
