"""depthmaster-demo: the whole product on a recorded bag, with a printed summary.

1. the sample bag (`depthmaster-make-sample-bag`: a moving camera with true depth and a 16-beam LiDAR);
2. live: `depthmaster-node` in its own process, `depthmaster-record` recording its outputs, and
   `depthmaster-play` replaying the bag into it; then a summary of what the node published (topics, counts,
   rates, latency, dropped frames, the scale fit, the depth error against the true depth);
3. offline: `depthmaster-bag` on the same bag with the same parameters.

With real weights the scale comes live from the LiDAR (scale_mode sparse_depth); random weights cannot be
calibrated against anything, so the demo then uses a fixed scale and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..messages.topics import OUTPUT_TOPICS
from .cli_options import add_model_options, model_values

NODE_NAMESPACE = "/camera"
RECORDED = [f"{NODE_NAMESPACE}/{topic}" for topic in OUTPUT_TOPICS] + ["/diagnostics"]


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="depthmaster-demo", description=__doc__.split("\n\n")[0])
    add_model_options(parser)
    parser.add_argument("--output", type=Path, default=Path("build/demo/node"), help="where bags and logs go")
    parser.add_argument("--frames", type=int, default=20, help="frames in the sample bag (default 20, 10 Hz)")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--processing-res", type=int, default=0, help="node processing_res (default 0 = native)")
    args = parser.parse_args(argv)
    args.values = model_values(args)
    return args


def write_params(path: Path, args, random_weights: bool) -> str:
    """The node's parameters for the demo (also given to depthmaster-bag, so both do the same)."""
    from ..samples.sample_bag import LIDAR_TO_CAMERA

    if random_weights:
        scale = "    scale_mode: fixed\n    scale: 0.5\n    shift: 0.1\n"
    else:
        scale = "    scale_mode: sparse_depth\n"
    path.write_text("/**:\n  ros__parameters:\n"
                    + "".join(f"    {name}: {json.dumps(args.values[name])}\n" for name in
                              ("checkpoint", "allow_download", "device", "dtype", "backend", "cpu_threads")) +
                    f"    processing_res: {args.processing_res}\n{scale}"
                    f"    lidar_to_camera: {LIDAR_TO_CAMERA}\n    max_range: 50.0\n")
    return "fixed (s = 0.5, t = 0.1: random weights cannot be calibrated)" if random_weights else \
        "sparse_depth from /lidar/depth"


def run_tool(name: str, *args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / name), *map(str, args)], text=True, **kwargs)


def live(args, bag: Path, params: Path, out: Path) -> Path:
    """Node + recorder + player; returns the recorded bag."""
    binaries = Path(sys.executable).parent
    log = open(out / "node.log", "w")
    node = subprocess.Popen([str(binaries / "depthmaster-node"), "--ros-args", "--params-file", str(params),
                             "-p", "use_sim_time:=true",
                             "-r", f"__ns:={NODE_NAMESPACE}", "-r", "image:=image_raw",
                             "-r", "sparse_depth:=/lidar/depth", "-r", "lidar_points:=/lidar/points"],
                            stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    recorded = out / "recorded"
    recorder = subprocess.Popen([str(binaries / "depthmaster-record"), str(recorded), "--topics", *RECORDED,
                                 "--wait", "120", "--duration", "600"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    try:
        print(f"node, recorder and player are starting (node log: {out / 'node.log'}) ...")
        play = run_tool("depthmaster-play", bag, "--clock", "--wait-for-subscribers", "180", "--delay", "2",
                        "--topics", "/camera/image_raw", "/camera/camera_info", "/lidar/depth",
                        capture_output=True, timeout=900)
        print(play.stdout.strip() or play.stderr.strip())
        if play.returncode != 0:
            raise RuntimeError(f"the player failed: {play.stderr.strip()}")
        time.sleep(3.0)  # the last frames in flight
    finally:
        recorder.send_signal(signal.SIGINT)
        print(recorder.communicate(timeout=120)[0].strip())
        node.send_signal(signal.SIGINT)
        node.wait(60)
        log.close()
    return recorded


def summarize(recorded: Path, bag: Path) -> None:
    from ..messages.conversions import SCALE_LAYOUT, depth_image_to_meters, stamp_to_ns
    from ..rosbag.io import message_class, open_reader
    from rclpy.serialization import deserialize_message

    def read(path, topics):
        reader = open_reader(path)
        found = {}
        for connection, log_time, raw in reader.messages([c for c in reader.connections if c.topic in topics]):
            found.setdefault(connection.topic, []).append((log_time, deserialize_message(
                raw, message_class(connection.msgtype))))
        reader.close()
        return found

    outputs = read(recorded, RECORDED)
    inputs = read(bag, ["/camera/image_raw", "/camera/depth_truth"])
    stamps = [stamp_to_ns(m.header.stamp) for _, m in inputs["/camera/image_raw"]]
    frames, duration = len(stamps), (stamps[-1] - stamps[0]) / 1e9 if len(stamps) > 1 else 0.0
    print(f"\nThe bag played {frames} frames over {duration:.1f} s of bag time, its time on /clock (the node uses "
          "sim time, so latency is bag time from image stamp to publish). The node takes the newest frame when it "
          "is free, so on a slow machine it serves some of them; per output topic (recorded by "
          "depthmaster-record):")
    print(f"  {'topic':<28}{'frames served':>14}{'per s of bag time':>19}")
    for topic in RECORDED[:-1]:
        served = {stamp_to_ns(m.header.stamp) if hasattr(m, "header") else round(m.data[0] * 1e9)
                  for _, m in outputs.get(topic, [])}
        rate = len(served) / duration if duration else 0.0
        print(f"  {topic:<28}{len(served):>8} of {frames:<3}{rate:>14.2f}")
    diagnostics = [s for _, m in outputs.get("/diagnostics", []) for s in m.status if s.name.endswith(": depth")]
    if diagnostics:
        values = {kv.key: kv.value for kv in diagnostics[-1].values}
        print(f"\nNode diagnostics (its last report before the recorder stopped): {diagnostics[-1].message}")
        for key in ("model", "latency_p50_ms", "latency_p95_ms", "scale_state"):
            print(f"  {key:<16}{values.get(key, '-')}")
        counts = {key: int(values.get(key, 0)) for key in ("received", "processed", "frames_dropped", "rejected",
                                                          "errors", "ignored")}
        flight = counts["received"] - sum(v for k, v in counts.items() if k != "received")
        print(f"  frames received {counts['received']} = processed {counts['processed']} + dropped (replaced by a "
              f"newer one while the model was busy) {counts['frames_dropped']} + rejected {counts['rejected']} + "
              f"errors {counts['errors']} + ignored (no subscriber yet) {counts['ignored']} + in flight {flight}")
    if outputs.get("/camera/depth/scale"):
        fit = dict(zip(SCALE_LAYOUT, outputs["/camera/depth/scale"][-1][1].data))
        quality = f", inliers {fit['inlier_ratio']:.0%} of {int(fit['pairs'])} pairs" if fit["pairs"] else ""
        print(f"Scale in use on the last frame: s = {fit['scale']:.4f}, t = {fit['shift']:.4f}{quality}")
    truth = {stamp_to_ns(m.header.stamp): depth_image_to_meters(m) for _, m in inputs["/camera/depth_truth"]}
    errors = []
    for _, msg in outputs.get("/camera/depth", []):
        expected = truth.get(stamp_to_ns(msg.header.stamp))
        depth = np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)
        valid = np.isfinite(depth) & np.isfinite(expected) if expected is not None else None
        if valid is not None and valid.any():
            errors.append(float(np.mean(np.abs(depth[valid] - expected[valid]) / expected[valid])))
    if errors:
        print(f"Depth against the scene's true depth: mean AbsRel {np.mean(errors):.3f} over {len(errors)} frames")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ..model.checkpoint import CheckpointError, resolve_checkpoint
    from ..model.checkpoint_layout import RANDOM_WEIGHTS_MARKER, RANDOM_WEIGHTS_WARNING

    try:
        random_weights = (resolve_checkpoint(args.values["checkpoint"]) / RANDOM_WEIGHTS_MARKER).is_file()
    except CheckpointError as exc:
        print(f"depthmaster-demo: {exc}", file=sys.stderr)
        return 2
    banner = ("=" * 78 + "\nDEMO ON RANDOM WEIGHTS: this shows the software working end to end.\n"
              + RANDOM_WEIGHTS_WARNING + ".\nGet the real weights (README) for a real result.\n" + "=" * 78)
    if random_weights:
        print(banner)
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    for old in ("sample_bag", "recorded", "offline", "offline.partial", "recorded.partial"):
        shutil.rmtree(out / old, ignore_errors=True)
    bag = out / "sample_bag"
    made = run_tool("depthmaster-make-sample-bag", bag, "--frames", args.frames, "--width", args.width,
                    "--height", args.height, capture_output=True)
    if made.returncode != 0:
        print(made.stderr, file=sys.stderr)
        return 1
    print(made.stdout.strip())
    params = out / "demo_params.yaml"
    mode = write_params(params, args, random_weights)
    print(f"scale: {mode}; parameters in {params}")

    print("\n== live: node + recorder + player ==")
    try:
        recorded = live(args, bag, params, out)
        summarize(recorded, bag)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"depthmaster-demo: {exc}; node log:\n{(out / 'node.log').read_text()}", file=sys.stderr)
        return 1

    print("\n== offline: depthmaster-bag on the same bag ==")
    offline = run_tool("depthmaster-bag", bag, out / "offline", "--params", params, "--sparse-depth-topic",
                       "/lidar/depth", "--no-copy-input", capture_output=True)
    print(offline.stdout.strip())
    if offline.returncode != 0:
        print(offline.stderr, file=sys.stderr)
        return 1
    print(f"\nBags: {bag} (input), {recorded} (live outputs), {out / 'offline'} (offline outputs)")
    if random_weights:
        print(banner)
    return 0


if __name__ == "__main__":
    sys.exit(main())
