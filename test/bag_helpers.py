"""Helpers shared by the bag, salvage, fleet and README tests of both tiers: the sample bag's size, parameters, a
bag read back, an in-process bag run, the test double that knows the sample bag's frames, byte comparison, a bag
cut short and one with a damaged chunk in the middle."""

import shutil

from rclpy.serialization import deserialize_message

from depthmaster_ros.model.backends import PipelineBackend
from depthmaster_ros.parameters import defaults
from depthmaster_ros.rosbag.bag_run import BagRun
from depthmaster_ros.rosbag.io import message_class, open_reader
from depthmaster_ros.rosbag.topics import choose_topics
from depthmaster_ros.samples.sample_bag import TOPICS
from depthmaster_ros.samples.sample_scene import PinholeCamera, render

from fake_backend import FakeBackend, simulate

SIZE = dict(width=64, height=48)


def params(**changes):
    values = defaults()
    values.update({"processing_res": 64, **changes})
    return values


def read_all(path):
    """{topic: [(log_time, rclpy message)]} of a bag."""
    reader = open_reader(path)
    out = {}
    for connection, log_time, raw in reader.messages():
        out.setdefault(connection.topic, []).append((log_time, deserialize_message(raw, message_class(connection.msgtype))))
    reader.close()
    return out


def run_bag(backend, input_bag, output_bag, values, **kwargs):
    if not hasattr(backend, "infer"):  # a pipeline
        backend = PipelineBackend(backend)
    reader = open_reader(input_bag, salvage=kwargs.get("salvage", False))
    topics = choose_topics(reader, scale_mode=values["scale_mode"],
                           inputs={"sparse_depth": TOPICS["lidar_depth"]} if values["scale_mode"] == "sparse_depth"
                           else {})
    reader.close()
    run = BagRun(backend, values, input_bag, output_bag, topics, **kwargs)
    return run, run.run


def fake_for(sample_frames=6, size=SIZE):
    """The test double knowing the sample bag's frames (of this size)."""
    fake = FakeBackend()
    for index in range(sample_frames):
        rgb, depth = render(PinholeCamera.with_size(**size), t=index / 10.0)
        fake.register(rgb, simulate(depth))
    return fake


def same_bytes(a, b):
    import filecmp

    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        filecmp.cmp(a / name, b / name, shallow=False) for name in names)


def cut_short(bag, tmp_path, fraction, metadata=True):
    """A copy of ``bag`` whose storage file is cut at ``fraction`` of its length, as a power loss leaves it."""
    copy = tmp_path / f"cut_{bag.name}"
    shutil.copytree(bag, copy)
    storage = next(p for p in copy.iterdir() if p.suffix in (".mcap", ".db3"))
    with open(storage, "r+b") as handle:
        handle.truncate(int(storage.stat().st_size * fraction))
    if not metadata:
        (copy / "metadata.yaml").unlink()
    return copy


def damage_a_middle_chunk(bag, copy):
    """A copy of ``bag`` whose second mcap chunk holds 1,000 random bytes in the middle (its length intact);
    returns (copy, the chunk's [start, end) offsets)."""
    import random

    from mcap.records import Chunk
    from mcap.stream_reader import StreamReader

    shutil.copytree(bag, copy)
    storage = next(copy.glob("*.mcap"))
    chunks = []
    with storage.open("rb") as handle:
        start = 8
        for record in StreamReader(handle, emit_chunks=True).records:
            if isinstance(record, Chunk):
                chunks.append((start, handle.tell()))
            start = handle.tell()
    assert len(chunks) >= 3
    begin, end = chunks[1]
    data = bytearray(storage.read_bytes())
    middle = (begin + end) // 2
    rng = random.Random(0)
    data[middle:middle + 1000] = bytes(rng.randrange(256) for _ in range(1000))
    storage.write_bytes(bytes(data))
    return copy, chunks[1]
