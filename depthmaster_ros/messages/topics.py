"""The topic tables, written once: the outputs (the node publishes them, the bag tool writes them, the client and
the demo record them), the message types of the inputs, and ROS type names <-> message classes."""

from __future__ import annotations

import importlib
from functools import lru_cache

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POINTCLOUD = "sensor_msgs/msg/PointCloud2"
FLOAT64_ARRAY = "std_msgs/msg/Float64MultiArray"

# output topic (relative to the node's namespace, or NAME/ with several cameras) -> (type, the product it carries)
OUTPUT_TOPICS = {
    "depth": (IMAGE, "depth"),
    "depth/camera_info": (CAMERA_INFO, None),
    "depth/relative": (IMAGE, "relative"),
    "depth/colored": (IMAGE, "colored"),
    "points": (POINTCLOUD, "points"),
    "depth/scale": (FLOAT64_ARRAY, "scale"),
}
# the message type of each kind of scale-source measurement (scale/source.py)
MEASUREMENT_TYPES = {"depth_image": IMAGE, "camera_info": CAMERA_INFO, "points": POINTCLOUD}


def needed_outputs(topics) -> set[str]:
    """The engine outputs to compute for these wanted output topics."""
    return {need for topic, (_, need) in OUTPUT_TOPICS.items() if topic in topics and need}


@lru_cache(maxsize=None)
def message_class(msgtype: str):
    """``sensor_msgs/msg/Image`` -> the rclpy class, or None when it is not installed."""
    try:
        package, kind, name = msgtype.split("/")
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ValueError, ImportError, AttributeError):
        return None


def msgtype_of(message) -> str:
    """The ROS type name of an rclpy message: ``sensor_msgs/msg/Image``."""
    return f"{type(message).__module__.split('.')[0]}/msg/{type(message).__name__}"
