"""Choosing the topics of a bag to process: the colour image, its camera info, and the metric sources."""

from __future__ import annotations

import posixpath

from .io import BagError, message_class

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POINTCLOUD = "sensor_msgs/msg/PointCloud2"
DEPTH_ENCODINGS = {"16UC1", "32FC1"}


def first_encoding(reader, connection) -> str | None:
    from rclpy.serialization import deserialize_message

    for _, _, raw in reader.messages(connections=[connection]):
        return deserialize_message(raw, message_class(IMAGE)).encoding
    return None


def parent(topic: str) -> str:
    return posixpath.dirname(topic.rstrip("/")) or "/"


def pick(candidates: list[str], what: str, option: str, prefer_near: str | None = None) -> str:
    """The one candidate; with several, the one in ``prefer_near``'s namespace if that is unique."""
    if len(candidates) == 1:
        return candidates[0]
    if prefer_near is not None:
        near = [t for t in candidates if parent(t) == parent(prefer_near)]
        if len(near) == 1:
            return near[0]
    if not candidates:
        raise BagError(f"the bag has no {what} topic")
    raise BagError(f"the bag has several {what} topics: {', '.join(sorted(candidates))}; choose one with {option}")


def choose_topics(reader, image_topic=None, camera_info_topic=None, scale_mode="none", sparse_depth_topic=None,
                  sparse_info_topic=None, lidar_topic=None) -> dict[str, str | None]:
    """Topic names for 'image' (Image or CompressedImage), 'camera_info', and the metric source the scale mode
    needs ('sparse_depth' and optional 'sparse_info', or 'lidar'). Unique candidates are found automatically;
    Image topics are told apart by encoding (colour vs 16UC1/32FC1 depth)."""
    types = {c.topic: c.msgtype for c in reader.connections}
    for topic, option in ((image_topic, "--image-topic"), (camera_info_topic, "--camera-info-topic"),
                          (sparse_depth_topic, "--sparse-depth-topic"), (sparse_info_topic, "--sparse-info-topic"),
                          (lidar_topic, "--lidar-topic")):
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
    chosen["sparse_depth"] = chosen["sparse_info"] = chosen["lidar"] = None
    if scale_mode == "sparse_depth":
        chosen["sparse_depth"] = sparse_depth_topic or pick(depth, "depth image (16UC1/32FC1)",
                                                            "--sparse-depth-topic")
        near = [t for t in infos if parent(t) == parent(chosen["sparse_depth"]) and t != chosen["camera_info"]]
        chosen["sparse_info"] = sparse_info_topic or (near[0] if len(near) == 1 else None)
    elif scale_mode == "pointcloud":
        chosen["lidar"] = lidar_topic or pick([t for t, m in types.items() if m == POINTCLOUD], "point cloud",
                                              "--lidar-topic")
    return chosen
