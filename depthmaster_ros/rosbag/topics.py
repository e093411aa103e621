"""Choosing the topics of a bag to process: the colour image, its camera info, and the measurements the scale
source needs (whatever the registered sources declare: depth images, LiDAR clouds, their camera infos)."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from ..messages.topics import CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, MEASUREMENT_TYPES, message_class
from ..scale.source import get_source, measurement_inputs
from .io import BagError

DEPTH_ENCODINGS = {"16UC1", "32FC1"}
COMPRESSED = COMPRESSED_IMAGE


def first_encoding(reader, connection) -> str | None:
    from rclpy.serialization import deserialize_message

    for _, _, raw in reader.messages(connections=[connection]):
        return deserialize_message(raw, message_class(IMAGE)).encoding
    return None


def parent(topic: str) -> str:
    return posixpath.dirname(topic.rstrip("/")) or "/"


def is_ground_truth(topic: str) -> bool:
    """A topic named as ground truth (``/camera/depth_truth``, ``/gt/depth``, ``.../ground_truth/...``): the answer
    a recording keeps to score against, never a robot's measurement."""
    words = set(re.split(r"[/_\-.]+", topic.lower()))
    return bool(words & {"truth", "groundtruth", "gt"})


def measurement_candidates(candidates: list[str], what: str, option: str) -> list[str]:
    """The topics that may be a measurement: never one named as ground truth (a scale fitted on the truth would
    make any evaluation of the result meaningless); naming it with its option uses it anyway."""
    measured = [topic for topic in candidates if not is_ground_truth(topic)]
    if candidates and not measured:
        raise BagError(f"the bag's only {what} topic{'s' if len(candidates) > 1 else ''} "
                       f"({', '.join(sorted(candidates))}) {'are' if len(candidates) > 1 else 'is'} named as ground "
                       f"truth, not a measurement; to fit the scale on it anyway, name it with {option}")
    return measured


def pick(candidates: list[str], what: str, option: str, prefer_near: str | None = None) -> str:
    """The one candidate; with several, the one in ``prefer_near``'s namespace if that is unique."""
    if len(candidates) == 1:
        return candidates[0]
    if prefer_near is not None:
        near = [t for t in candidates if parent(t) == parent(prefer_near)]
        if len(near) == 1:
            return near[0]
    if not candidates:
        raise BagError(f"the bag has no {what} topic (name one with {option})")
    raise BagError(f"the bag has several {what} topics: {', '.join(sorted(candidates))}; choose one with {option}")


def choose_topics(reader, image_topic=None, camera_info_topic=None, scale_mode="none",
                  inputs: dict[str, str | None] | None = None) -> dict[str, str | None]:
    """Topic names for ``image`` (Image or CompressedImage), ``camera_info``, and each input of the scale mode's
    source, by input name (``inputs`` names some explicitly). Unique candidates are found automatically; Image
    topics are told apart by encoding (colour vs 16UC1/32FC1 depth); a measurement's camera info is the one in
    its namespace."""
    inputs = {name: topic for name, topic in (inputs or {}).items() if topic}
    options = {name: item.bag_option for name, item in measurement_inputs().items()}
    types = {c.topic: c.msgtype for c in reader.connections}
    named = [(image_topic, "--image-topic"), (camera_info_topic, "--camera-info-topic")]
    named += [(topic, options.get(name, name)) for name, topic in inputs.items()]
    for topic, option in named:
        if topic is not None and topic not in types:
            raise BagError(f"{option} {topic} is not in the bag; its topics: {', '.join(sorted(types))}")
    image_connections = [c for c in reader.connections if c.msgtype == IMAGE]
    encodings = {c.topic: first_encoding(reader, c) for c in image_connections}
    colour = [t for t, e in encodings.items() if e is not None and e not in DEPTH_ENCODINGS]
    depth = [t for t, e in encodings.items() if e in DEPTH_ENCODINGS]

    chosen = {"image": image_topic or pick(colour + [t for t, m in types.items() if m == COMPRESSED],
                                          "colour image", "--image-topic")}
    if types[chosen["image"]] not in (IMAGE, COMPRESSED):
        raise BagError(f"{chosen['image']} is a {types[chosen['image']]}, not an Image or CompressedImage")
    infos = [t for t, m in types.items() if m == CAMERA_INFO]
    colour_infos = [t for t in infos if parent(t) == parent(chosen["image"])] or infos
    chosen["camera_info"] = camera_info_topic or (pick(colour_infos, "camera info", "--camera-info-topic",
                                                       chosen["image"]) if colour_infos else None)
    source = get_source(scale_mode)
    for item in sorted(source.inputs if source else (), key=lambda i: i.at_stamp_of is not None):
        topic = inputs.get(item.name)
        if topic is None and item.kind == "camera_info":
            anchor = chosen.get(item.at_stamp_of) if item.at_stamp_of else chosen["image"]
            near = [t for t in infos if anchor and parent(t) == parent(anchor) and t != chosen["camera_info"]]
            topic = near[0] if len(near) == 1 else None
            if topic is None and not item.optional:
                raise BagError(f"no camera info topic for {item.description}; name it with {item.bag_option}")
        elif topic is None:
            candidates = depth if item.kind == "depth_image" else [t for t, m in types.items()
                                                                    if m == MEASUREMENT_TYPES[item.kind]]
            kind = " (16UC1/32FC1)" if item.kind == "depth_image" else f" ({MEASUREMENT_TYPES[item.kind]})"
            try:
                what = item.description + kind
                topic = pick(measurement_candidates(candidates, what, item.bag_option), what, item.bag_option)
            except BagError:
                if not item.optional:
                    raise
        chosen[item.name] = topic
    return chosen


@dataclass
class BagInput:
    """What a run needs to know of its input bag before it starts: the topics by role, the number of frames, and
    for a salvaged bag what was lost (:class:`~depthmaster_ros.rosbag.salvage.SalvageReport`)."""

    topics: dict[str, str | None]
    frames: int
    report: object = None


def inspect_input(path, scale_mode: str = "none", image_topic=None, camera_info_topic=None,
                  inputs: dict[str, str | None] | None = None, salvage: bool = False) -> BagInput:
    """Open the bag (``salvage``: as far as it is readable) and choose its topics (BagError naming the problem)."""
    from .io import open_reader

    reader = open_reader(path, salvage=salvage)
    try:
        topics = choose_topics(reader, image_topic, camera_info_topic, scale_mode, inputs)
        frames = sum(c.msgcount for c in reader.connections if c.topic == topics["image"]
                     and c.msgtype in (IMAGE, COMPRESSED))
        return BagInput(topics, frames, getattr(reader, "report", None))
    finally:
        reader.close()
