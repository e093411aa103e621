"""Launch the depthmaster lifecycle node (configured and activated automatically), optionally with RViz.

    ros2 launch depthmaster_ros depthmaster.launch.py \
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info \
        params_file:=/path/to/depthmaster.yaml namespace:=front use_rviz:=true

Equivalent without launch (what the tests run):
    depthmaster-node --ros-args --params-file config/depthmaster.yaml \
        -r image:=/camera/color/image_raw -r camera_info:=/camera/color/camera_info

checkpoint, scale_mode and input_transport override the params file's values when given (empty: the file's).
The launch files that start a camera driver with the node (realsense.launch.py, usb_cam.launch.py,
compressed_camera.launch.py) include this one with their topics.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

# Node parameters a launch argument may set over the params file, when not empty.
OVERRIDES = ("checkpoint", "scale_mode", "input_transport")


def node(context):
    parameters = {"autostart": LaunchConfiguration("autostart")}
    for name in OVERRIDES:
        value = LaunchConfiguration(name).perform(context)
        if value:
            parameters[name] = value
    return [LifecycleNode(
        package="depthmaster_ros",
        executable="depthmaster_node",
        name="depthmaster",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[LaunchConfiguration("params_file"), parameters],
        remappings=[
            ("image", LaunchConfiguration("image")),
            ("image/compressed", LaunchConfiguration("compressed_image")),
            ("camera_info", LaunchConfiguration("camera_info")),
            ("sparse_depth", LaunchConfiguration("sparse_depth")),
            ("sparse_depth/camera_info", LaunchConfiguration("sparse_depth_info")),
            ("lidar_points", LaunchConfiguration("lidar_points")),
        ],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
    )]


def generate_launch_description():
    share = get_package_share_directory("depthmaster_ros")
    args = [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "depthmaster.yaml"),
                              description="ROS parameters file of the node"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("checkpoint", default_value="",
                              description="model weights: a checkpoint folder or a Hugging Face repo id (default: "
                              "the params file's)"),
        DeclareLaunchArgument("scale_mode", default_value="",
                              description="none, fixed, sparse_depth, pointcloud or ground_plane (default: the "
                              "params file's)"),
        DeclareLaunchArgument("input_transport", default_value="",
                              description="raw (subscribe 'image') or compressed ('image/compressed'; default: the "
                              "params file's)"),
        DeclareLaunchArgument("image", default_value="image", description="input image topic"),
        DeclareLaunchArgument("compressed_image", default_value="image/compressed",
                              description="input CompressedImage topic (input_transport: compressed)"),
        DeclareLaunchArgument("camera_info", default_value="camera_info", description="input CameraInfo topic"),
        DeclareLaunchArgument("sparse_depth", default_value="sparse_depth",
                              description="depth image topic for scale_mode sparse_depth"),
        DeclareLaunchArgument("sparse_depth_info", default_value="sparse_depth/camera_info",
                              description="its CameraInfo topic"),
        DeclareLaunchArgument("lidar_points", default_value="lidar_points",
                              description="PointCloud2 topic for scale_mode pointcloud"),
        DeclareLaunchArgument("autostart", default_value="true", description="configure and activate at start"),
        DeclareLaunchArgument("log_level", default_value="info", description="node log level"),
        DeclareLaunchArgument("use_rviz", default_value="false", description="also start RViz with the view"),
    ]
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        namespace=LaunchConfiguration("namespace"),
        arguments=["-d", os.path.join(share, "config", "depthmaster.rviz")],
        condition=IfCondition(LaunchConfiguration("use_rviz")),
    )
    return LaunchDescription(args + [OpaqueFunction(function=node), rviz])
