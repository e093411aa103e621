"""Launch the depthmaster lifecycle node (configured and activated automatically), optionally with RViz.

    ros2 launch depthmaster_ros depthmaster.launch.py \
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info \
        params_file:=/path/to/depthmaster.yaml namespace:=front use_rviz:=true

Equivalent without launch (what the tests run):
    depthmaster-node --ros-args --params-file config/depthmaster.yaml \
        -r image:=/camera/color/image_raw -r camera_info:=/camera/color/camera_info
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node


def generate_launch_description():
    share = get_package_share_directory("depthmaster_ros")
    args = [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "depthmaster.yaml"),
                              description="ROS parameters file of the node"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("image", default_value="image", description="input image topic"),
        DeclareLaunchArgument("compressed_image", default_value="image/compressed",
                              description="input CompressedImage topic (input_transport: compressed)"),
        DeclareLaunchArgument("camera_info", default_value="camera_info", description="input CameraInfo topic"),
        DeclareLaunchArgument("autostart", default_value="true", description="configure and activate at start"),
        DeclareLaunchArgument("log_level", default_value="info", description="node log level"),
        DeclareLaunchArgument("use_rviz", default_value="false", description="also start RViz with the view"),
    ]
    node = LifecycleNode(
        package="depthmaster_ros",
        executable="depthmaster_node",
        name="depthmaster",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[LaunchConfiguration("params_file"), {"autostart": LaunchConfiguration("autostart")}],
        remappings=[
            ("image", LaunchConfiguration("image")),
            ("image/compressed", LaunchConfiguration("compressed_image")),
            ("camera_info", LaunchConfiguration("camera_info")),
        ],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        namespace=LaunchConfiguration("namespace"),
        arguments=["-d", os.path.join(share, "config", "depthmaster.rviz")],
        condition=IfCondition(LaunchConfiguration("use_rviz")),
    )
    return LaunchDescription(args + [node, rviz])
