"""ROS messages <-> arrays, pairing of images with their camera infos and measurements, and the topic tables. No
rclpy node code: the node, the bag tools and training share it (it works on rclpy and rosbags messages alike)."""
