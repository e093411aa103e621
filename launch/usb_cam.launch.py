"""A USB (V4L2) camera through usb_cam with the depthmaster node.

    ros2 launch depthmaster_ros usb_cam.launch.py video_device:=/dev/video0 \
        camera_info_url:=file://$HOME/.ros/camera_info/my_camera.yaml params_file:=$HOME/my_depthmaster.yaml

The driver runs in camera_namespace (default /camera) and publishes image_raw and camera_info there, stamped with
frame_id (default camera_optical_frame: the optical frame of REP 103, z forward, x right, y down; name your
robot's URDF frame here); the node runs in the same namespace, its outputs beside them (/camera/depth,
/camera/points, ...). Metric depth and points need the camera's calibration (camera_info_url, from
camera_calibration): an uncalibrated camera's all-zero CameraInfo is refused and only the relative outputs flow.
A USB camera has no depth: scale_mode fixed (depthmaster-calibrate) or ground_plane suits it. Needs
ros-$ROS_DISTRO-usb-cam. Every argument of depthmaster.launch.py applies too (checkpoint, scale_mode, ...).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    args = [
        DeclareLaunchArgument("camera_namespace", default_value="camera", description="namespace of the camera's "
                              "topics and of the node"),
        DeclareLaunchArgument("video_device", default_value="/dev/video0", description="the V4L2 device"),
        DeclareLaunchArgument("image_width", default_value="640", description="image width (pixels)"),
        DeclareLaunchArgument("image_height", default_value="480", description="image height (pixels)"),
        DeclareLaunchArgument("framerate", default_value="30.0", description="frames per second"),
        DeclareLaunchArgument("pixel_format", default_value="yuyv2rgb",
                              description="usb_cam's pixel_format (yuyv2rgb, mjpeg2rgb, uyvy2rgb, ...)"),
        DeclareLaunchArgument("frame_id", default_value="camera_optical_frame",
                              description="frame_id of the images: the camera's optical frame (REP 103)"),
        DeclareLaunchArgument("camera_info_url", default_value="",
                              description="the calibration (file:///path/camera.yaml); '' = uncalibrated"),
    ]
    driver = Node(
        package="usb_cam",
        executable="usb_cam_node_exe",
        name="usb_cam",
        namespace=LaunchConfiguration("camera_namespace"),
        output="screen",
        parameters=[{
            "video_device": LaunchConfiguration("video_device"),
            "image_width": ParameterValue(LaunchConfiguration("image_width"), value_type=int),
            "image_height": ParameterValue(LaunchConfiguration("image_height"), value_type=int),
            "framerate": ParameterValue(LaunchConfiguration("framerate"), value_type=float),
            "pixel_format": LaunchConfiguration("pixel_format"),
            "frame_id": LaunchConfiguration("frame_id"),
            "camera_name": LaunchConfiguration("camera_namespace"),
            "camera_info_url": LaunchConfiguration("camera_info_url"),
        }],
    )
    depthmaster = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(get_package_share_directory("depthmaster_ros"), "launch",
                                                   "depthmaster.launch.py")),
        launch_arguments={
            "namespace": LaunchConfiguration("camera_namespace"),
            "image": "image_raw",
            "camera_info": "camera_info",
        }.items(),
    )
    return LaunchDescription(args + [driver, depthmaster])
