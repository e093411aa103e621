"""depthmaster-make-sample-bag: write the synthetic sample recording (see depthmaster_ros/samples/sample_bag.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="depthmaster-make-sample-bag",
        description="Write a short synthetic rosbag2: a moving camera over the sample scene with its true depth, a "
        "16-beam LiDAR as a sparse depth image (/lidar/depth) and a point cloud (/lidar/points), and CameraInfo.")
    parser.add_argument("out", type=Path, help="bag folder to create")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0, help="camera rate, Hz")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.rate <= 0 or args.width < 16 or args.height < 16:
        parser.error("need --frames >= 1, --rate > 0 and at least 16x16 pixels")
    if args.out.exists():
        parser.error(f"{args.out} already exists")

    from ..samples.sample_bag import LIDAR_TO_CAMERA, TOPICS, write_sample_bag

    path = write_sample_bag(args.out, args.frames, args.rate, args.width, args.height, args.storage)
    size = sum(f.stat().st_size for f in path.iterdir()) / 1e6
    print(f"wrote {path} ({args.frames} frames at {args.rate:g} Hz, {args.width}x{args.height}, {size:.1f} MB)")
    print("topics: " + ", ".join(TOPICS.values()))
    print(f"for scale_mode pointcloud on /lidar/points: lidar_to_camera: {LIDAR_TO_CAMERA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
