"""depthmaster_ros: monocular metric depth for ROS 2 robots with DepthMaster (arXiv 2501.02576)."""

__version__ = "0.1.0"
