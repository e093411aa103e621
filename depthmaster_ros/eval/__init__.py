"""The paper's zero-shot evaluation protocol: datasets on disk, alignment, metrics (no ROS)."""
