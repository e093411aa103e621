"""Stand-ins for the camera drivers the launch files start (realsense2_camera, usb_cam, image_transport's
republish), installed as packages an ament prefix holds, so `ros2 launch` runs the launch files here as on a robot.
Each publishes what the real driver publishes, where it publishes it: the sample scene's image, its CameraInfo and
(RealSense) its depth aligned to the colour image in 16UC1 millimeters, with the driver's frame ids; the republish
stand-in decodes CompressedImage into Image. Each prints the parameters it was given (a JSON line) for the test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

DRIVERS = {"realsense2_camera": "realsense2_camera_node", "usb_cam": "usb_cam_node_exe",
           "image_transport": "republish"}
TEST_DIR = Path(__file__).resolve().parent


def install_stand_ins(prefix: Path) -> Path:
    """An ament prefix holding the stand-ins; put it on AMENT_PREFIX_PATH."""
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True, exist_ok=True)
    for package, executable in DRIVERS.items():
        (index / package).write_text("")
        (prefix / "share" / package).mkdir(parents=True, exist_ok=True)
        script = prefix / "lib" / package / executable
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(TEST_DIR)!r})\n"
                          "from driver_stand_ins import main\nsys.exit(main())\n")
        script.chmod(0o755)
    return prefix


def main() -> int:
    import cv2
    import numpy as np
    import signal

    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.signals import SignalHandlerOptions
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
    from depthmaster_ros.messages.conversions import array_to_image, intrinsics_to_camera_info, make_header
    from depthmaster_ros.samples.sample_scene import PinholeCamera, render

    executable = Path(sys.argv[0]).name
    stop = []  # Ctrl-C reaches a launched process twice (from the terminal and from launch): end once, cleanly

    def end(*_):
        stop.append(True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, end)
    rclpy.init(args=sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("stand_in", automatically_declare_parameters_from_overrides=True)
    values = {name: parameter.value for name, parameter in node._parameters.items()}
    print(f"stand-in {executable}: {json.dumps(values, sort_keys=True)}", flush=True)
    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    pinhole = PinholeCamera.with_size(64, 48)
    camera = CameraIntrinsics.from_K(64, 48, pinhole.K)
    rgb, depth = render(pinhole, t=0.0)

    if executable == "republish":
        out = node.create_publisher(Image, "out", reliable)

        def decode(msg):
            bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
            out.publish(array_to_image(bgr, "bgr8", msg.header))

        node.create_subscription(CompressedImage, "in/compressed", decode, reliable)
    else:
        if executable == "realsense2_camera_node":
            prefix, frame = "~/color/", f"{values['camera_name']}_color_optical_frame"
            depth_pub = node.create_publisher(Image, "~/aligned_depth_to_color/image_raw", reliable)
            depth_info_pub = node.create_publisher(CameraInfo, "~/aligned_depth_to_color/camera_info", reliable)
        else:  # usb_cam
            prefix, frame = "", values["frame_id"]
        image_pub = node.create_publisher(Image, prefix + "image_raw", reliable)
        info_pub = node.create_publisher(CameraInfo, prefix + "camera_info", reliable)
        millimeters = np.where(np.isfinite(depth), np.round(depth * 1000), 0).clip(0, 65535).astype(np.uint16)

        def publish():
            header = make_header(node.get_clock().now().nanoseconds, frame)
            image_pub.publish(array_to_image(rgb, "rgb8", header))
            info_pub.publish(intrinsics_to_camera_info(camera, header))
            if executable == "realsense2_camera_node":
                depth_pub.publish(Image(header=header, height=48, width=64, encoding="16UC1", step=128,
                                        data=millimeters.tobytes()))
                depth_info_pub.publish(intrinsics_to_camera_info(camera, header))

        node.create_timer(0.5, publish)
    try:
        while not stop:
            rclpy.spin_once(node, timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
