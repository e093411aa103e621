"""A robot's RGB-D recording as training data: colour frames paired with a depth image registered to them
(e.g. a RealSense ``aligned_depth_to_color``: 16UC1 millimeters or 32FC1 meters, 0/NaN = none).

The bag is read once and every ``every_n``-th pair (exact stamp match) is written to a cache folder as
``rgb/NNNNNN.png`` and ``depth/NNNNNN.png`` (16-bit millimeters) with a file list, which the training reads like the
other datasets. The cache is reused while the bag and the settings are the same.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..eval.datasets import DatasetSpec

RGBD_SPEC = DatasetSpec("rgbd_bag", "rgbd.tar", "filenames.txt", 0, 1e-3, 65.535, "png_1000")


def extract_rgbd_bag(bag: Path, cache_root: Path, color_topic: str, depth_topic: str, every_n: int = 1) -> Path:
    """The cache folder of (colour, depth) pairs of ``bag``; written on first use."""
    from rclpy.serialization import deserialize_message

    from ..rosbag.io import message_class, open_reader
    from ..messages.conversions import decode_image, depth_image_to_meters, stamp_to_ns

    if every_n < 1:
        raise ValueError(f"every_n must be >= 1, got {every_n}")
    metadata = (bag / "metadata.yaml").read_bytes() if (bag / "metadata.yaml").is_file() else b""
    key = hashlib.sha256(metadata + f"{bag.resolve()}|{color_topic}|{depth_topic}|{every_n}".encode()).hexdigest()[:16]
    folder = cache_root / key
    if (folder / "filenames.txt").is_file():
        return folder
    reader = open_reader(bag)
    types = {c.topic: c.msgtype for c in reader.connections}
    for topic in (color_topic, depth_topic):
        if topic not in types:
            raise ValueError(f"topic {topic} is not in {bag}; its topics: {', '.join(sorted(types))}")
    compressed = types[color_topic].endswith("CompressedImage")
    colours, depths = {}, {}
    connections = [c for c in reader.connections if c.topic in (color_topic, depth_topic)]
    lines = []
    (folder / "rgb").mkdir(parents=True, exist_ok=True)
    (folder / "depth").mkdir(exist_ok=True)
    pairs = 0
    for connection, _, raw in reader.messages(connections=connections):
        msg = deserialize_message(raw, message_class(connection.msgtype))
        stamp = stamp_to_ns(msg.header.stamp)
        (colours if connection.topic == color_topic else depths)[stamp] = msg
        if stamp in colours and stamp in depths:
            colour, depth = colours.pop(stamp), depths.pop(stamp)
            if pairs % every_n == 0:
                rgb = decode_image(colour, compressed)
                meters = depth_image_to_meters(depth)
                if meters.shape != rgb.shape[:2]:
                    raise ValueError(f"depth {depth_topic} is {meters.shape[1]}x{meters.shape[0]} but colour "
                                     f"{color_topic} is {rgb.shape[1]}x{rgb.shape[0]}: record the depth registered "
                                     "to the colour camera (e.g. aligned_depth_to_color)")
                name = f"{len(lines):06d}.png"
                Image.fromarray(rgb).save(folder / "rgb" / name)
                millimeters = np.round(np.nan_to_num(meters, nan=0.0) * 1000.0).clip(0, 65535).astype(np.uint16)
                Image.fromarray(millimeters).save(folder / "depth" / name)
                lines.append(f"rgb/{name} depth/{name}")
            pairs += 1
        for pending in (colours, depths):  # unmatched messages older than the latest pair are dropped
            for old in [s for s in pending if s < stamp - 10**9]:
                del pending[old]
    reader.close()
    if not lines:
        raise ValueError(f"no colour/depth pair with equal stamps on {color_topic} and {depth_topic} in {bag}")
    (folder / "source.json").write_text(json.dumps({"bag": str(bag.resolve()), "color_topic": color_topic,
                                                    "depth_topic": depth_topic, "every_n": every_n,
                                                    "pairs": pairs, "written": len(lines)}))
    (folder / "filenames.txt").write_text("\n".join(lines) + "\n")
    return folder


