"""depthmaster-node's command line before anything heavy is imported: ``--help``, and the ROS arguments checked
before rclpy reads them.

rclpy hands ``--params-file`` files and ``-p NAME:=VALUE`` values to rcl, which stops the process with a
traceback and exit 1 on a file it cannot parse (invalid YAML, a list mixing integers and decimals, a missing
file). They are read here first with the reader the command-line tools use (``params_file.py``), so every such
problem is one line naming the file, the line and what was expected, and exit code 2. What the values mean
(types, ranges) is checked when the node declares its parameters (``node_parameters.py``). No torch, no rclpy.
"""

from __future__ import annotations

import re
import textwrap

from ..params_file import ParamsFileError, parse_override, read_params_file

HELP_FLAGS = ("-h", "--help")
# ROS arguments (after --ros-args) that take a value, so that the value is not read as an argument itself
_WITH_VALUE = {"-r", "--remap", "-p", "--param", "--params-file", "--log-level", "--log-config-file", "-e",
               "--enclave", "--log-file-name"}

OUTPUT_MEANINGS = {
    "depth": "metric depth, 32FC1 meters (REP 118); -Inf too close, +Inf too far, NaN invalid (REP 117)",
    "depth/camera_info": "the camera info of the outputs (rescaled with output_scale)",
    "depth/relative": "the model's relative map, 32FC1 in [0, 1], 1 = near",
    "depth/colored": "the relative map through colormap, bgr8, for viewing",
    "points": "organised PointCloud2 (x, y, z[, rgb]) of the metric depth, in the image's frame",
    "depth/scale": "the scale fit in use, Float64MultiArray (labels in layout.dim[0].label)",
}


def split_arguments(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the program's own arguments, the ROS arguments), as rcl splits them: ROS arguments run from each
    ``--ros-args`` to the next ``--`` or the end. ``argv`` without the program name."""
    own: list[str] = []
    ros: list[str] = []
    inside = False
    for token in argv:
        if token == "--ros-args":
            inside = True
        elif token == "--" and inside:
            inside = False
        else:
            (ros if inside else own).append(token)
    return own, ros


def check_arguments(argv: list[str]) -> str | None:
    """Why these arguments cannot start the node (one line), or None. Reads every ``--params-file`` and ``-p``
    value as rcl will."""
    own, ros = split_arguments(argv)
    if own:
        return (f"unexpected argument {own[0]!r}: the node takes ROS arguments after --ros-args, e.g. "
                "depthmaster-node --ros-args -p scale_mode:=fixed (depthmaster-node --help lists them)")
    index = 0
    while index < len(ros):
        token = ros[index]
        value = ros[index + 1] if index + 1 < len(ros) else None
        if token in _WITH_VALUE and value is None:
            return f"{token} needs a value (depthmaster-node --help)"
        try:
            if token == "--params-file":
                read_params_file(value)
            elif token in ("-p", "--param"):
                parse_override(value)
        except ParamsFileError as exc:
            return str(exc)
        index += 2 if token in _WITH_VALUE else 1
    return None


def wants_help(argv: list[str]) -> bool:
    own, _ = split_arguments(argv)
    return any(token in HELP_FLAGS for token in own)


def usage() -> str:
    """The text of ``depthmaster-node --help``: topics, parameters with their defaults and ranges, examples."""
    from ..messages.topics import MEASUREMENT_TYPES, OUTPUT_TOPICS
    from ..parameters import groups
    from ..scale.source import measurement_inputs

    lines = [
        "usage: depthmaster-node [-h] [--ros-args [-p NAME:=VALUE ...] [--params-file FILE ...] [-r FROM:=TO ...] "
        "[--log-level LEVEL]]",
        "",
        "DepthMaster monocular depth as a ROS 2 lifecycle node: camera images in; metric depth, relative depth, a",
        "coloured view and an organised point cloud out. It configures and activates itself at start-up "
        "(autostart).",
        "",
        "Inputs (relative to the node's namespace; remap with -r NAME:=/your/topic):",
        f"  {'image':<26}sensor_msgs/Image (input_transport raw): rgb8, bgr8, rgba8, bgra8, mono8 or mono16",
        f"  {'image/compressed':<26}sensor_msgs/CompressedImage (input_transport compressed): jpeg or png",
        f"  {'camera_info':<26}sensor_msgs/CameraInfo of the image (same stamp and frame_id): needed for depth "
        "and points",
    ]
    for name, item in measurement_inputs().items():
        msgtype = MEASUREMENT_TYPES[item.kind].replace("/msg/", "/")
        lines.append(f"  {name:<26}{msgtype}: {item.description}" + (" (shared by all cameras)" if item.shared
                                                                        else ""))
    lines += ["", "Outputs (published only while someone subscribes):"]
    for topic, (msgtype, _) in OUTPUT_TOPICS.items():
        lines.append(f"  {topic:<26}{msgtype.replace('/msg/', '/')}: {OUTPUT_MEANINGS.get(topic, '')}")
    lines += [f"  {'/diagnostics':<26}diagnostic_msgs/DiagnosticArray: state, rates, latency and every reason "
              "a frame or output was refused", "",
              "Parameters (-p NAME:=VALUE, or a --params-file; config/depthmaster.yaml lists them all with their "
              "full descriptions):"]
    for title, specs in groups():
        lines.append(f"  {title}:")
        for item in specs:
            default = item.default
            shown = ("true" if default else "false") if isinstance(default, bool) else (
                repr(default) if isinstance(default, str) else str(default))
            limits = []
            if item.allowed:
                limits.append("|".join(item.allowed))
            if item.min_value is not None or item.max_value is not None:
                low = "" if item.min_value is None else f"{item.min_value:g}"
                high = "" if item.max_value is None else f"{item.max_value:g}"
                limits.append(f"[{low}, {high}]")
            if item.note:
                limits.append(f"({item.note})")
            head = f"    {item.name} = {shown}" + (f"  {' '.join(limits)}" if limits else "")
            summary = re.split(r"(?<=[a-z0-9)\]'])\. (?=[A-Z])", item.description)[0].rstrip(".") + "."
            lines.append(head)
            lines += textwrap.wrap(summary, 110, initial_indent="        ", subsequent_indent="        ",
                                   break_on_hyphens=False)
    lines += [
        "",
        "Examples:",
        "  depthmaster-node --ros-args -p checkpoint:=/models/DepthMaster -r image:=/camera/color/image_raw \\",
        "      -r camera_info:=/camera/color/camera_info",
        "  depthmaster-node --ros-args --params-file my_robot.yaml -p scale_mode:=fixed -p scale:=0.6",
        "  depthmaster-node --ros-args -r __ns:=/front -p input_transport:=compressed   # topics under /front",
        "  depthmaster-node --ros-args -r __node:=depth_front   # another node name (two nodes of one name are "
        "refused)",
        "",
        "Exit status: 0 after Ctrl-C, SIGTERM or the lifecycle shutdown; 2 when the arguments or a params file "
        "cannot be read, a",
        "read-only parameter is invalid, or a node of the same name already runs. An invalid live parameter "
        "value given at",
        "start-up fails configure with the reason (the node stays up, unconfigured, and says so on the log and "
        "/diagnostics).",
    ]
    return "\n".join(lines) + "\n"
