"""rosbag2 files without the ROS CLI: reading, writing, topic detection and the offline processing run, on
`rosbags` (pure Python; sqlite3 and mcap). Message bytes are (de)serialised with rclpy, so what is written is
exactly what the node would publish."""
