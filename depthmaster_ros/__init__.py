"""depthmaster_ros: monocular metric depth for ROS 2 robots with DepthMaster (arXiv 2501.02576)."""

__version__ = "0.1.0"

# The composition root: the ROS node's start-up and wiring parameters (declared in ros/, without rclpy) join the one
# parameter table here, so the table is whole whatever module a program imports first, while no module below ros/
# imports ros/ (test/unit/test_import_graph.py).
from .ros import wiring_parameters as _wiring_parameters  # noqa: E402,F401
