"""A camera elsewhere on the network that publishes compressed images (sensor_msgs/CompressedImage, JPEG or PNG:
image_transport's 'compressed' topic, e.g. a robot's camera seen from an off-board GPU), with the depthmaster node.

    ros2 launch depthmaster_ros compressed_camera.launch.py \
        compressed_image:=/robot/camera/image_raw/compressed camera_info:=/robot/camera/camera_info

decoder:=node (default): the node subscribes to the compressed topic itself (input_transport: compressed) and
decodes each frame it serves; frames it drops while busy are never decoded, and nothing else travels the network.
decoder:=republish: image_transport's republish (compressed -> raw) decodes every frame into raw_image (default
image_raw in the node's namespace), which the node and anything else on this machine subscribe to (needs
ros-$ROS_DISTRO-image-transport-plugins). The frame_id is the remote driver's: it must be the camera's optical frame
(REP 103). Every argument of depthmaster.launch.py applies too (namespace, checkpoint, scale_mode, ...).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.conditions import LaunchConfigurationEquals
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    args = [
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("compressed_image", default_value="/camera/image_raw/compressed",
                              description="the camera's CompressedImage topic"),
        DeclareLaunchArgument("camera_info", default_value="/camera/camera_info",
                              description="the camera's CameraInfo topic"),
        DeclareLaunchArgument("decoder", default_value="node", choices=["node", "republish"],
                              description="node: the depthmaster node decodes; republish: image_transport's "
                              "republish decodes into raw_image"),
        DeclareLaunchArgument("raw_image", default_value="image_raw",
                              description="decoder republish: the raw image topic it publishes (in the namespace)"),
    ]
    share = get_package_share_directory("depthmaster_ros")
    source = PythonLaunchDescriptionSource(os.path.join(share, "launch", "depthmaster.launch.py"))
    own = IncludeLaunchDescription(source, condition=LaunchConfigurationEquals("decoder", "node"),
                                   launch_arguments={
                                       "input_transport": "compressed",
                                       "compressed_image": LaunchConfiguration("compressed_image"),
                                       "camera_info": LaunchConfiguration("camera_info"),
                                   }.items())
    republish = Node(
        package="image_transport",
        executable="republish",
        name="depthmaster_republish",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[{"in_transport": "compressed", "out_transport": "raw"}],
        remappings=[("in/compressed", LaunchConfiguration("compressed_image")),
                    ("out", LaunchConfiguration("raw_image"))],
        condition=LaunchConfigurationEquals("decoder", "republish"),
    )
    decoded = IncludeLaunchDescription(source, condition=LaunchConfigurationEquals("decoder", "republish"),
                                       launch_arguments={
                                           "input_transport": "raw",
                                           "image": LaunchConfiguration("raw_image"),
                                           "camera_info": LaunchConfiguration("camera_info"),
                                       }.items())
    return LaunchDescription(args + [own, republish, decoded])
