"""The ROS node's own parameters: start-up (autostart, what to do with a second node of its name), the cameras it
serves, input and output QoS, the /diagnostics period, where the sensors' extrinsics come from (TF or the
parameters). Declared here, beside the node that uses them, and contributed to the one parameter table
(``depthmaster_ros/parameters.py``) by the package's ``__init__``, so the node declares them with descriptors,
``config/depthmaster.yaml`` documents them and the offline tools accept them in a node's params file. No rclpy
here: the table and the tools' ``--help`` import this module.
"""

from __future__ import annotations

from ..parameter_spec import ParameterSpec, contribute_group

RELIABILITY_CHOICES = ("best_effort", "reliable")
# QoS history of the camera infos: unread ones beyond it are dropped oldest first, so it covers the pairing's
# longest wait (stamp_cache.EXACT_WAIT_S, 5 s) at 20 Hz. With 32 (3.2 s at 10 Hz) an executor held up for longer
# on a loaded machine lost the camera info of the frame the inference thread was about to pair (a flood test, once
# in three full runs). A camera info is a few hundred bytes.
CAMERA_INFO_DEPTH = 100
MEASUREMENT_DEPTH = 8  # QoS history of the scale sources' inputs: what may arrive while the executor is busy
EXTRINSICS_SOURCES = ("auto", "tf", "parameters")  # ros/tf_extrinsics.py

TITLE = "Node start-up and wiring (read-only)"
WIRING_PARAMETERS = (
    ParameterSpec("autostart", True, "Configure and activate at start-up, so a plain run works without a "
                  "lifecycle manager.", read_only=True),
    ParameterSpec("input_transport", "raw", "raw: subscribe sensor_msgs/Image on 'image'; compressed: "
                  "sensor_msgs/CompressedImage (jpeg/png) on 'image/compressed'.", read_only=True,
                  choices=("raw", "compressed")),
    ParameterSpec("input_reliability", "auto", "QoS reliability of the input subscriptions. auto: reliable when "
                  "every publisher of the topic is reliable, else best_effort, re-checked every 0.5 s (Fast DDS "
                  "drops best-effort messages over 0.5 MB, e.g. a 640x480 image, between processes on one host; a "
                  "reliable publisher does not lose them). best_effort accepts every publisher.", read_only=True,
                  choices=("auto", *RELIABILITY_CHOICES)),
    ParameterSpec("input_depth", 1, "QoS history depth of the image subscription (1 = newest frame only); the "
                  f"camera info keeps at least {CAMERA_INFO_DEPTH} and the scale sources' inputs at least "
                  f"{MEASUREMENT_DEPTH}, so that what comes with an image is still there when a busy node takes it.",
                  read_only=True, min_value=1, max_value=100),
    ParameterSpec("output_reliability", "reliable", "QoS reliability of every output (reliable reaches both "
                  "reliable and best-effort subscribers, RViz included).", read_only=True,
                  choices=RELIABILITY_CHOICES),
    ParameterSpec("output_depth", 5, "QoS history depth of the outputs. With 1, a reliable sample whose first "
                  "transmission is missed can be replaced before it is repaired and never arrive.", read_only=True,
                  min_value=1, max_value=100),
    ParameterSpec("cameras", [], "Several cameras in one node, their frames batched through the model: one name "
                  "per camera, e.g. [front, rear]. Each camera's topics are NAME/image, NAME/camera_info, "
                  "NAME/sparse_depth, ... and its outputs NAME/depth, NAME/points, ...; 'lidar_points' is shared. "
                  "Parameters marked 'per camera' in this file have one value per camera, the parameters "
                  "NAME.<parameter> (default: the node-level value at start-up). [] = one camera on the node's "
                  "own topics.", read_only=True, item_type=str),
    ParameterSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", read_only=True,
                  min_value=0.1, max_value=60.0),
    ParameterSpec("extrinsics_source", "auto", "Where the sparse depth sensor's and the LiDAR's pose in the camera "
                  "optical frame comes from. tf: TF (tf2_ros), from each message's frame_id to the image's, looked "
                  "up again every second; parameters: sparse_depth_to_camera / lidar_to_camera; auto: TF where "
                  "tf2_ros is installed (a ROS install; not the venv) and the lookup succeeds, else the parameters.",
                  read_only=True, choices=EXTRINSICS_SOURCES),
    ParameterSpec("duplicate_name", "refuse", "What to do when a node of the same fully qualified name already runs "
                  "(checked at start-up for a few seconds): refuse (exit with code 2 and the reason) or warn (log, "
                  "report on /diagnostics and run). Two nodes of one name publish every output twice and a lifecycle "
                  "call drives both.", read_only=True, choices=("refuse", "warn")),
)

contribute_group(TITLE, WIRING_PARAMETERS)
