"""depthmaster-demo: the node end to end on generated camera frames, with a printed summary.

Starts `depthmaster-node` as its own process, plays a short synthetic camera sequence (the sample scene, whose
true depth is known) into it as Image + CameraInfo, records every output, calibrates the fixed scale from the
first frame's true depth (a live parameter change) and prints what was published: topics, counts, rates,
latency, dropped frames, the scale used and the depth error against the truth. The last frame's colored view
and metric depth are saved in --output.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NAMESPACE = "/demo_camera"
FRAME_ID = "camera_optical_frame"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="depthmaster-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder (or repo id in the local HF cache)")
    parser.add_argument("--frames", type=int, default=12, help="frames to play after calibration (default 12)")
    parser.add_argument("--rate", type=float, default=4.0, help="camera rate in Hz (default 4)")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--processing-res", type=int, default=0, help="node processing_res (default 0 = native)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--output", type=Path, default=Path("build/demo/node"), help="where to save images")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.rate <= 0 or args.width < 8 or args.height < 8:
        parser.error("--frames >= 1, --rate > 0 and a size of at least 8x8 are needed")
    return args


def as_array(msg) -> np.ndarray:
    channels = 3 if msg.encoding == "bgr8" else 1
    dtype = np.uint8 if msg.encoding == "bgr8" else np.float32
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width, channels).squeeze(-1 if channels == 1
                                                                                                  else None)


def start_node(args, log_path: Path) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "depthmaster-node"), "--ros-args", "-r", f"__ns:={NAMESPACE}",
               "-p", f"checkpoint:={args.checkpoint}", "-p", f"processing_res:={args.processing_res}",
               "-p", f"device:={args.device}", "-p", f"dtype:={args.dtype}", "-p", "scale_mode:=fixed"]
    print(f"starting the node: {' '.join(command)}\n  (its log: {log_path})")
    with open(log_path, "w") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())


def summarize(client, stamps: list[int], truths: dict[int, np.ndarray], elapsed: float, fit) -> dict:
    from ..ros.conversions import stamp_to_ns

    print(f"\nPublished {len(stamps)} frames in {elapsed:.1f} s; received here from the node:")
    print(f"  {'topic':<28}{'messages':>9}{'rate Hz':>9}  last message")
    for topic in ("depth", "depth/camera_info", "depth/relative", "depth/colored", "points"):
        msgs = [m for m in client.received[topic] if stamp_to_ns(m.header.stamp) in truths]
        last = msgs[-1] if msgs else None
        if last is None:
            detail = "-"
        elif topic == "points":
            detail = f"PointCloud2 {last.width}x{last.height}, fields {','.join(f.name for f in last.fields)}"
        elif topic == "depth/camera_info":
            detail = f"CameraInfo {last.width}x{last.height}, fx={last.p[0]:.1f}"
        else:
            detail = f"Image {last.width}x{last.height} {last.encoding}, frame_id {last.header.frame_id}"
        print(f"  /{NAMESPACE.strip('/')}/{topic:<16}{len(msgs):>9}{len(msgs) / elapsed:>9.2f}  {detail}")
    diagnostics = client.latest_diagnostics()
    print(f"\nNode diagnostics: {diagnostics.get('message', '-')}")
    for key in ("model", "received", "processed", "frames_dropped", "rejected", "latency_p50_ms", "latency_p95_ms"):
        print(f"  {key:<16}{diagnostics.get(key, '-')}")
    print(f"\nFixed scale calibrated on frame 0: s = {fit.scale:.4f}, t = {fit.shift:.4f} (sqrt-disparity space)")
    errors = []
    for msg in client.received["depth"]:
        truth = truths.get(stamp_to_ns(msg.header.stamp))
        if truth is not None:
            depth = as_array(msg)
            valid = np.isfinite(depth) & np.isfinite(truth) & (truth > 0)
            if valid.any():
                errors.append(float(np.mean(np.abs(depth[valid] - truth[valid]) / truth[valid])))
    if errors:
        print(f"Depth vs the scene's true depth: mean AbsRel {np.mean(errors):.3f} over {len(errors)} frames")
    return diagnostics


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import rclpy
    from PIL import Image

    from ..geometry.intrinsics import CameraIntrinsics
    from ..geometry.scale_recovery import fit_scale_shift
    from ..model.checkpoint import CheckpointError, resolve_checkpoint
    from ..model.pipeline import RANDOM_WEIGHTS_MARKER
    from ..ros.client import DepthMasterClient
    from ..ros.conversions import stamp_to_ns
    from ..sample_scene import PinholeCamera, render

    try:
        random_weights = (resolve_checkpoint(args.checkpoint) / RANDOM_WEIGHTS_MARKER).is_file()
    except CheckpointError as exc:
        print(f"depthmaster-demo: {exc}", file=sys.stderr)
        return 2
    banner = ("=" * 78 + "\nDEMO ON RANDOM WEIGHTS: this shows the software working end to end; the depth values"
              "\nare meaningless. Get the real weights (README) for a real result.\n" + "=" * 78)
    if random_weights:
        print(banner)

    args.output.mkdir(parents=True, exist_ok=True)
    node = start_node(args, args.output / "node.log")
    rclpy.init()
    client = DepthMasterClient(namespace=NAMESPACE)
    try:
        if not client.wait_for_node(120):
            raise RuntimeError("the node did not come up")
        pinhole = PinholeCamera.with_size(args.width, args.height)
        camera = CameraIntrinsics.from_K(args.width, args.height, pinhole.K)

        # Calibrate the fixed scale on frame 0 with its true depth, and set it on the running node.
        rgb, truth = render(pinhole, t=0.0)
        stamp = client.get_clock().now().nanoseconds
        client.publish_frame(rgb, camera, stamp, FRAME_ID)
        if not client.spin_until(lambda: client.received["depth/relative"], 600):
            raise RuntimeError("no output from the node")
        fit = fit_scale_shift(as_array(client.received["depth/relative"][-1]), truth)
        results = client.set_node_parameters(scale=fit.scale, shift=fit.shift)
        if not all(ok for ok, _ in results):
            raise RuntimeError(f"the node refused the calibrated scale: {results}")
        client.clear()

        stamps, truths = [], {}
        start = time.monotonic()
        for index in range(args.frames):
            rgb, truth = render(pinhole, t=(index + 1) / args.rate)
            stamp = client.get_clock().now().nanoseconds
            client.publish_frame(rgb, camera, stamp, FRAME_ID)
            stamps.append(stamp)
            truths[stamp] = truth
            client.spin_until(lambda: False, max(0.0, start + (index + 1) / args.rate - time.monotonic()))
        # Wait for the last frame's outputs (the node serves the newest frame; older ones may be dropped).
        client.spin_until(lambda: any(stamp_to_ns(m.header.stamp) == stamps[-1] for m in client.received["points"]),
                          600)
        client.spin_until(lambda: False, 1.5)  # one more diagnostics message
        elapsed = time.monotonic() - start
        summarize(client, stamps, truths, elapsed, fit)
        if client.received["depth/colored"]:
            Image.fromarray(as_array(client.received["depth/colored"][-1])[..., ::-1]).save(args.output / "colored.png")
            np.save(args.output / "depth.npy", as_array(client.received["depth"][-1]))
            Image.fromarray(rgb).save(args.output / "camera.png")
            print(f"Last frame saved in {args.output}: camera.png, colored.png, depth.npy")
        if random_weights:
            print(banner)
        return 0
    except RuntimeError as exc:
        print(f"depthmaster-demo: {exc}; node log:\n{(args.output / 'node.log').read_text()}", file=sys.stderr)
        return 1
    finally:
        client.destroy_node()
        rclpy.try_shutdown()
        node.send_signal(signal.SIGINT)
        try:
            node.wait(30)
        except subprocess.TimeoutExpired:
            node.kill()


if __name__ == "__main__":
    sys.exit(main())
