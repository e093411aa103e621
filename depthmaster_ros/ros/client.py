"""A small camera-side client of the depthmaster node: publishes frames (Image or CompressedImage + CameraInfo)
and records everything the node publishes. Used by the demo and the tests; also handy from a notebook."""

from __future__ import annotations

import time
from collections import defaultdict

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from ..geometry.intrinsics import CameraIntrinsics
from ..geometry.pointcloud import XYZ_DTYPE
from ..messages.conversions import array_to_image, intrinsics_to_camera_info, make_header, points_to_cloud
from ..messages.topics import OUTPUT_TOPICS, message_class
from .background_node import BackgroundNode

OUTPUTS = {topic: message_class(msgtype) for topic, (msgtype, _) in OUTPUT_TOPICS.items()}


class DepthMasterClient(BackgroundNode):
    """``namespace``: where the node's topics are. ``outputs``: which outputs to subscribe to (default all);
    subscribing is what makes the node compute an output. The client spins itself on a background thread, so
    messages are received while the caller renders or waits; ``destroy_node()`` stops it."""

    def __init__(self, namespace: str = "", outputs=tuple(OUTPUTS), name: str = "depthmaster_client",
                 image: str = "image", camera_info: str = "camera_info", executor: str = "single"):
        """``image``, ``camera_info``: where the camera's topics are (the node's inputs after its remappings).
        ``executor``: ``single`` or ``events`` (``BackgroundNode``)."""
        super().__init__(name, executor=executor, namespace=namespace)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.create_publisher(Image, image, reliable)
        self.compressed_pub = self.create_publisher(CompressedImage, f"{image}/compressed", reliable)
        self.info_pub = self.create_publisher(CameraInfo, camera_info, reliable)
        self.sparse_pub = self.create_publisher(Image, "sparse_depth", reliable)
        self.sparse_info_pub = self.create_publisher(CameraInfo, "sparse_depth/camera_info", reliable)
        self.lidar_pub = self.create_publisher(PointCloud2, "lidar_points", reliable)
        self.received: dict[str, list] = defaultdict(list)
        # per topic, beside each received message: when its callback ran (time.monotonic_ns: CLOCK_MONOTONIC, one
        # clock for every process of the machine) and its MessageInfo (source_timestamp: when the publisher wrote
        # it, received_timestamp: when the middleware had it; both ns of the system clock; None with the events
        # executor)
        self.receive_times: dict[str, list[int]] = defaultdict(list)
        self.message_info: dict[str, list] = defaultdict(list)
        self._output_subs = [self._subscribe(topic, OUTPUTS[topic], reliable) for topic in outputs]
        self._diagnostics_sub = self._subscribe("/diagnostics", DiagnosticArray, reliable)

    def _subscribe(self, topic: str, msg_type, qos):
        def store(msg, info):
            self.receive_times[topic].append(time.monotonic_ns())
            self.received[topic].append(msg)
            self.message_info[topic].append(info)

        # the EventsExecutor of rclpy 9.1.2 fails on callbacks that take the MessageInfo: none there
        callback = (lambda msg: store(msg, None)) if self.events_executor else store
        return self.create_subscription(msg_type, topic, callback, qos)

    def wait_for_node(self, timeout: float = 30.0) -> bool:
        """Until discovery is done both ways: the node subscribes to our image (raw or compressed) and camera_info
        topics, and each of our output subscriptions has the node's publisher."""
        def matched():
            inputs = (self.image_pub.get_subscription_count() > 0 or self.compressed_pub.get_subscription_count() > 0)
            return inputs and self.info_pub.get_subscription_count() > 0 and all(
                sub.get_publisher_count() > 0 for sub in self._output_subs)

        return self.spin_until(matched, timeout)

    def publish_frame(self, rgb: np.ndarray, camera: CameraIntrinsics | None, stamp_ns: int,
                      frame_id: str = "camera_optical_frame", encoding: str = "rgb8",
                      compressed: str | None = None) -> Header:
        """Publish one frame (and its CameraInfo with the same header, unless ``camera`` is None).
        ``encoding``: rgb8 or bgr8 for raw images; ``compressed``: 'jpeg' or 'png' to send a CompressedImage."""
        header = make_header(stamp_ns, frame_id)
        if camera is not None:
            self.info_pub.publish(intrinsics_to_camera_info(camera, header))
        if compressed:
            ok, data = cv2.imencode(".jpg" if compressed == "jpeg" else ".png", rgb[..., ::-1].copy())
            if not ok:
                raise ValueError(f"could not encode the frame as {compressed}")
            self.compressed_pub.publish(CompressedImage(header=header, format=compressed, data=data.tobytes()))
        else:
            pixels = rgb if encoding == "rgb8" else np.ascontiguousarray(rgb[..., ::-1])
            self.image_pub.publish(array_to_image(pixels, encoding, header))
        return header

    def publish_sparse_depth(self, depth: np.ndarray, camera: CameraIntrinsics | None, stamp_ns: int,
                             frame_id: str = "depth_optical_frame") -> None:
        """A metric depth image (float32 meters, NaN = none) as 32FC1, with its CameraInfo unless None."""
        header = make_header(stamp_ns, frame_id)
        if camera is not None:
            self.sparse_info_pub.publish(intrinsics_to_camera_info(camera, header))
        self.sparse_pub.publish(array_to_image(np.ascontiguousarray(depth, dtype=np.float32), "32FC1", header))

    def publish_lidar(self, points: np.ndarray, stamp_ns: int, frame_id: str = "lidar") -> None:
        """N x 3 points (meters, LiDAR frame) as an unorganised x, y, z PointCloud2."""
        cloud = np.zeros(len(points), dtype=XYZ_DTYPE)
        for index, name in enumerate("xyz"):
            cloud[name] = points[:, index]
        self.lidar_pub.publish(points_to_cloud(cloud[None, :], make_header(stamp_ns, frame_id)))

    def _parameter_client(self, node_name: str):
        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(self, node_name)
        if not client.wait_for_services(timeout_sec=20.0):
            raise TimeoutError(f"parameter services of {node_name} not available")
        return client

    def control(self, node_name: str = "depthmaster", timeout: float = 20.0):
        """The node's lifecycle, parameters and /diagnostics (:class:`~depthmaster_ros.ros.node_control.NodeControl`:
        ``state()``, ``change_state("configure")``, ``set_parameter(name, text)``, ``diagnostics()``, ...);
        ``node_name`` relative to this client's namespace, or absolute."""
        from .node_control import NodeControl, node_name as qualified

        return NodeControl(self, qualified(node_name, self.get_namespace()), timeout)

    def set_node_parameters(self, node_name: str = "depthmaster", **values) -> list[tuple[bool, str]]:
        """Set parameters of the node (relative name: in this client's namespace); (successful, reason) each."""
        from rclpy.parameter import Parameter

        future = self._parameter_client(node_name).set_parameters([Parameter(k, value=v) for k, v in values.items()])
        return [(r.successful, r.reason) for r in self.wait(future).results]

    def get_node_parameter(self, name: str, node_name: str = "depthmaster"):
        from rclpy.parameter import parameter_value_to_python

        return parameter_value_to_python(self.wait(self._parameter_client(node_name).get_parameters([name])).values[0])

    def latest_diagnostics(self, camera: str = "") -> dict[str, str]:
        """Key/values (plus 'level' and 'message') of the newest depthmaster diagnostic status received (of
        ``camera``, for a node serving several)."""
        suffix = ": depth" + (f" {camera}" if camera else "")
        for array in reversed(self.received["/diagnostics"]):
            for status in array.status:
                if status.name.endswith(suffix):
                    values = {kv.key: kv.value for kv in status.values}
                    values.update(level=str(status.level[0]), message=status.message)
                    return values
        return {}

    def clear(self) -> None:
        self.received.clear()
        self.receive_times.clear()
        self.message_info.clear()
