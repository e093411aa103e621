"""rclpy glue only: the lifecycle node, message conversions, QoS, diagnostics."""
