"""An Intel RealSense (realsense2_camera) with the depthmaster node: the colour image in, the camera's own depth
aligned to the colour image as the metric scale (scale_mode sparse_depth, registered: no extrinsic needed).

    ros2 launch depthmaster_ros realsense.launch.py params_file:=$HOME/my_depthmaster.yaml

The driver runs as camera_namespace/camera_name (realsense-ros' defaults: /camera/camera) with its colour and depth
streams and align_depth on; the node runs in the same namespace, so its outputs sit beside the camera's topics
(/camera/camera/depth, /camera/camera/points, ...). Its inputs: color/image_raw and color/camera_info, and
aligned_depth_to_color/image_raw (16UC1 millimeters) with its camera_info, all in the colour optical frame
(CAMERA_NAME_color_optical_frame, REP 103), which the outputs carry. Needs ros-$ROS_DISTRO-realsense2-camera.
Every argument of depthmaster.launch.py applies too (checkpoint, params_file, log_level, use_rviz, ...).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    args = [
        DeclareLaunchArgument("camera_namespace", default_value="camera", description="the driver's namespace"),
        DeclareLaunchArgument("camera_name", default_value="camera",
                              description="the driver's node name (also the prefix of its frame ids)"),
        DeclareLaunchArgument("serial_no", default_value="''",
                              description="the camera's serial number, with several connected ('' = any)"),
        DeclareLaunchArgument("color_profile", default_value="640,480,30",
                              description="colour stream WIDTH,HEIGHT,FPS"),
        DeclareLaunchArgument("depth_profile", default_value="640,480,30",
                              description="depth stream WIDTH,HEIGHT,FPS"),
        DeclareLaunchArgument("scale_mode", default_value="sparse_depth",
                              description="sparse_depth: the scale from the camera's own depth ('' = the params "
                              "file's)"),
    ]
    namespace = [LaunchConfiguration("camera_namespace"), "/", LaunchConfiguration("camera_name")]
    driver = Node(
        package="realsense2_camera",
        executable="realsense2_camera_node",
        namespace=LaunchConfiguration("camera_namespace"),
        name=LaunchConfiguration("camera_name"),
        output="screen",
        parameters=[{
            "camera_name": LaunchConfiguration("camera_name"),
            "serial_no": LaunchConfiguration("serial_no"),
            "enable_color": True,
            "enable_depth": True,
            "align_depth.enable": True,
            "rgb_camera.color_profile": LaunchConfiguration("color_profile"),
            "depth_module.depth_profile": LaunchConfiguration("depth_profile"),
            "pointcloud.enable": False,
        }],
    )
    depthmaster = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(get_package_share_directory("depthmaster_ros"), "launch",
                                                   "depthmaster.launch.py")),
        launch_arguments={
            "namespace": namespace,
            "image": "color/image_raw",
            "camera_info": "color/camera_info",
            "sparse_depth": "aligned_depth_to_color/image_raw",
            "sparse_depth_info": "aligned_depth_to_color/camera_info",
            "scale_mode": LaunchConfiguration("scale_mode"),
        }.items(),
    )
    return LaunchDescription(args + [driver, depthmaster])
