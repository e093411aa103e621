"""Camera geometry without ROS: intrinsics and their rescaling, relative -> metric depth, depth -> points."""
