"""The node's output topics and the messages one frame's products become: one definition, used by the node
(publishing) and the bag tool (writing), so a bag gets exactly what the node would publish."""

from __future__ import annotations

from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Float64MultiArray

from .conversions import array_to_image, intrinsics_to_camera_info, points_to_cloud, scale_to_msg

# topic (relative to the node's namespace) -> (message type, the processing output it needs)
OUTPUT_TOPICS = {
    "depth": (Image, "depth"),
    "depth/camera_info": (CameraInfo, None),
    "depth/relative": (Image, "relative"),
    "depth/colored": (Image, "colored"),
    "points": (PointCloud2, "points"),
    "depth/scale": (Float64MultiArray, "scale"),
}


def needed_outputs(topics) -> set[str]:
    """The processing outputs to compute for these wanted topics."""
    return {need for topic, (_, need) in OUTPUT_TOPICS.items() if topic in topics and need}


def output_messages(products, header, topics, stamp_ns: int) -> list[tuple[str, object]]:
    """(topic, message) for each wanted topic this frame's products can fill, in a fixed order."""
    messages = []
    if products.depth is not None and "depth" in topics:
        messages.append(("depth", array_to_image(products.depth, "32FC1", header)))
    if products.camera is not None and "depth/camera_info" in topics:
        messages.append(("depth/camera_info", intrinsics_to_camera_info(products.camera, header)))
    if "depth/relative" in topics:
        messages.append(("depth/relative", array_to_image(products.relative, "32FC1", header)))
    if products.colored is not None and "depth/colored" in topics:
        messages.append(("depth/colored", array_to_image(products.colored[..., ::-1], "bgr8", header)))
    if products.points is not None and "points" in topics:
        messages.append(("points", points_to_cloud(products.points, header)))
    if products.scale is not None and "depth/scale" in topics:
        messages.append(("depth/scale", scale_to_msg(products.scale, stamp_ns)))
    return messages
