"""The messages one frame's products become: one definition, used by the node (publishing), the bag tool and the
fleet runner (writing), so a bag gets exactly what the node would publish."""

from __future__ import annotations

from .conversions import array_to_image, intrinsics_to_camera_info, points_to_cloud, scale_to_msg


def output_messages(products, header, topics, stamp_ns: int) -> list[tuple[str, object]]:
    """(topic, message) for each wanted topic this frame's products can fill, in a fixed order."""
    return list(each_output_message(products, header, topics, stamp_ns))


def each_output_message(products, header, topics, stamp_ns: int):
    """The same, one message at a time, each built when asked for: the node publishes each before it builds the
    next."""
    if products.depth is not None and "depth" in topics:
        yield "depth", array_to_image(products.depth, "32FC1", header)
    if products.camera is not None and "depth/camera_info" in topics:
        yield "depth/camera_info", intrinsics_to_camera_info(products.camera, header)
    if products.relative is not None and "depth/relative" in topics:
        yield "depth/relative", array_to_image(products.relative, "32FC1", header)
    if products.colored is not None and "depth/colored" in topics:
        yield "depth/colored", array_to_image(products.colored[..., ::-1], "bgr8", header)
    if products.points is not None and "points" in topics:
        yield "points", points_to_cloud(products.points, header)
    if products.scale is not None and "depth/scale" in topics:
        # each stage that reported on the frame adds its fields (in processing order)
        yield "depth/scale", scale_to_msg(products.scale, stamp_ns, *products.stage_reports.values())
