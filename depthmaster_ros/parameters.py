"""Every node parameter in one table: name, type, default, description, constraints, live or read-only.

The ROS node declares its parameters from this table (with descriptors), ``config/depthmaster.yaml``
documents the same names and defaults (a test keeps them in step), and the offline tools read the same YAML
into the same :class:`~depthmaster_ros.processing.ProcessingConfig`. No ROS imports here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCALE_MODES = ("none", "fixed", "sparse_depth", "pointcloud", "ground_plane")
DTYPE_CHOICES = ("auto", "fp32", "fp16", "bf16")
RELIABILITY_CHOICES = ("best_effort", "reliable")
# With several cameras (the `cameras` parameter), these have one value per camera: parameter CAMERA.NAME.
PER_CAMERA = ("scale", "shift", "sparse_depth_to_camera", "lidar_to_camera", "camera_height", "camera_pitch",
              "camera_roll", "ground_region")


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    default: Any
    description: str
    read_only: bool = False
    choices: tuple[str, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    item_type: type = float  # lists: float (a fixed-length vector) or str (names, any number)

    @property
    def type(self) -> type:
        """bool, int, float, str, or list (of ``item_type``)."""
        return list if isinstance(self.default, (list, tuple)) else type(self.default)

    def check(self, value: Any, name: str | None = None) -> str | None:
        """None if ``value`` is acceptable, else the reason (names what was expected and what arrived).
        ``name``: the name to report (a per-camera CAMERA.NAME)."""
        name = name or self.name
        expected = self.type
        if expected is list and self.item_type is str:
            return _check_names(name, value)
        if expected is list:
            if not isinstance(value, (list, tuple)) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and v == v for v in value):
                return f"{name} must be a list of numbers, got {value!r}"
            if len(value) != len(self.default):
                return f"{name} must have {len(self.default)} values, got {len(value)}"
            return None
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not expected:
            return f"{name} must be a {expected.__name__}, got {type(value).__name__} {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"{name} must be one of {', '.join(self.choices)}; got {value!r}"
        if self.min_value is not None and value < self.min_value:
            return f"{name} must be >= {self.min_value}, got {value!r}"
        if self.max_value is not None and value > self.max_value:
            return f"{name} must be <= {self.max_value}, got {value!r}"
        return None


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _check_names(name: str, value: Any) -> str | None:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        return f"{name} must be a list of names, got {value!r}"
    for item in value:
        if not _NAME.fullmatch(item):
            return (f"{name}: {item!r} is not usable as a topic namespace and parameter prefix (expected a letter "
                    "then letters, digits or '_', such as front or cam_left)")
    if len(set(value)) != len(value):
        return f"{name} lists a camera twice: {list(value)!r}"
    return None


GROUPS: tuple[tuple[str, tuple[ParameterSpec, ...]], ...] = (
    ("Model (read-only: set before start-up; loaded at configure)", (
    ParameterSpec("checkpoint", "zysong212/DepthMaster",
                  "Checkpoint folder in the official layout, or a Hugging Face repo id (looked up in the local "
                  "HF cache; downloaded only if allow_download).", read_only=True),
    ParameterSpec("allow_download", False, "Let a repo id be downloaded from the Hugging Face Hub at configure.",
                  read_only=True),
    ParameterSpec("device", "auto", "Torch device: auto (first CUDA GPU, else CPU), cpu, cuda or cuda:N.",
                  read_only=True),
    ParameterSpec("dtype", "auto", "Model precision: auto (bf16 on a GPU that supports it, else fp32), fp32 (as "
                  "the official code), fp16 or bf16. The Fourier Enhancement block always runs in fp32.",
                  read_only=True, choices=DTYPE_CHOICES),
    ParameterSpec("compile", False, "torch.compile the model at configure (fast on a GPU; the first frame of each "
                  "size compiles for minutes unless warmup_size is set; kernels are cached across restarts).",
                  read_only=True),
    ParameterSpec("cuda_graphs", False, "Also replay CUDA graphs (implies compile; GPU only).", read_only=True),
    ParameterSpec("warmup_size", "", "WIDTHxHEIGHT of the camera images, to compile and warm the model at "
                  "configure instead of on the first frame ('' = no warm-up).", read_only=True),
    ParameterSpec("cpu_threads", 0, "Torch CPU threads (0 = torch's default). Only matters on the CPU.",
                  read_only=True, min_value=0, max_value=256),
    ParameterSpec("autostart", True, "Configure and activate at start-up, so a plain run works without a "
                  "lifecycle manager.", read_only=True),
    )),
    ("Input and output wiring (read-only)", (
    ParameterSpec("input_transport", "raw", "raw: subscribe sensor_msgs/Image on 'image'; compressed: "
                  "sensor_msgs/CompressedImage (jpeg/png) on 'image/compressed'.", read_only=True,
                  choices=("raw", "compressed")),
    ParameterSpec("input_reliability", "auto", "QoS reliability of the input subscriptions. auto: reliable when "
                  "every publisher of the topic is reliable, else best_effort, re-checked every 0.5 s (Fast DDS "
                  "drops best-effort messages over 0.5 MB, e.g. a 640x480 image, between processes on one host; a "
                  "reliable publisher does not lose them). best_effort accepts every publisher.", read_only=True,
                  choices=("auto", *RELIABILITY_CHOICES)),
    ParameterSpec("input_depth", 1, "QoS history depth of the input subscriptions (1 = newest frame only).",
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
                  "Per-camera values of " + ", ".join(PER_CAMERA) + " are the parameters NAME.<parameter> "
                  "(default: the node-level value at start-up). [] = one camera on the node's own topics.",
                  read_only=True, item_type=str),
    ParameterSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", read_only=True,
                  min_value=0.1, max_value=60.0),
    )),
    ("Processing (live: `ros2 param set /depthmaster NAME VALUE` applies from the next frame)", (
    ParameterSpec("processing_res", 768, "Long side (pixels) at which the model runs; 0 = the camera's native "
                  "size. 768 is the published model's default.", min_value=0, max_value=4096),
    ParameterSpec("batch_wait", 0.01, "Several cameras: seconds to wait, after one camera's frame arrives, for "
                  "the other cameras' frames so that they share one model pass (0 = take what is there).",
                  min_value=0.0, max_value=1.0),
    ParameterSpec("camera_info_tolerance", 0.05, "Seconds: a camera_info whose stamp differs from the image's "
                  "by at most this much is used when none has the exact stamp.", min_value=0.0, max_value=10.0),
    )),
    ("Scale recovery (live)", (
    ParameterSpec("scale_mode", "none", "How metric scale is obtained: none (relative outputs only), fixed (scale "
                  "and shift), sparse_depth (a depth image topic), pointcloud (a LiDAR topic) or ground_plane "
                  "(the camera height over a flat floor).", choices=SCALE_MODES),
    ParameterSpec("scale", 1.0, "Fixed mode: s in sqrt-disparity space, depth = 1 / max((s*p + t)^2, eps).",
                  min_value=0.0),
    ParameterSpec("shift", 0.0, "Fixed mode: t in sqrt-disparity space (1/sqrt(m))."),
    ParameterSpec("metric_source_tolerance", 0.1, "Seconds: the sparse depth image or LiDAR scan nearest to the "
                  "image stamp is used if it is at most this far away.", min_value=0.0, max_value=10.0),
    ParameterSpec("sparse_depth_to_camera", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], "sparse_depth mode: "
                  "[x, y, z, qx, qy, qz, qw] from the sparse depth optical frame to the camera optical frame "
                  "(identity: already registered to the colour image)."),
    ParameterSpec("lidar_to_camera", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], "pointcloud mode: [x, y, z, qx, qy, "
                  "qz, qw] from the LiDAR frame to the camera optical frame (X_cam = R X_lidar + t)."),
    ParameterSpec("camera_height", 1.0, "ground_plane mode: height of the camera's optical centre above the "
                  "floor, meters.", min_value=0.01, max_value=100.0),
    ParameterSpec("camera_pitch", 0.0, "ground_plane mode: radians the camera looks down (negative: up).",
                  min_value=-1.5, max_value=1.5),
    ParameterSpec("camera_roll", 0.0, "ground_plane mode: radians of roll about the optical axis, clockwise as "
                  "seen from behind the camera.", min_value=-1.5, max_value=1.5),
    ParameterSpec("ground_region", [0.0, 0.6, 1.0, 1.0], "ground_plane mode: [x0, y0, x1, y1], fractions of the "
                  "image width and height, where floor is expected (default: the lower 40 %)."),
    ParameterSpec("scale_min_pairs", 50, "Fewer valid depth/prediction pairs: the frame's fit is rejected.",
                  min_value=2, max_value=1000000),
    ParameterSpec("scale_min_p_spread", 0.05, "The pairs' predictions must span at least this much (5th-95th "
                  "percentile of p), else the fit is rejected (everything at one depth).", min_value=0.0,
                  max_value=1.0),
    ParameterSpec("scale_inlier_threshold", 0.05, "Relative sqrt-disparity residual under which a pair is an "
                  "inlier (0.05 is about 10 % in depth).", min_value=0.001, max_value=1.0),
    ParameterSpec("scale_min_inlier_ratio", 0.3, "Fits with fewer inliers than this fraction are rejected.",
                  min_value=0.0, max_value=1.0),
    ParameterSpec("scale_time_constant", 0.5, "Seconds of exponential smoothing of (s, t) over frames "
                  "(0 = use each frame's fit as is).", min_value=0.0, max_value=60.0),
    ParameterSpec("scale_jump_threshold", 0.25, "A new fit whose depths differ from the smoothed one by more "
                  "than this fraction for 3 frames in a row replaces it (no slow drift after a real change).",
                  min_value=0.01, max_value=10.0),
    ParameterSpec("scale_hold_s", 1.0, "Seconds the last good fit is reused when fits fail; after that metric "
                  "depth and points stop (relative outputs continue).", min_value=0.0, max_value=3600.0),
    )),
    ("Depth image and point cloud (live)", (
    ParameterSpec("min_range", 0.1, "Meters; closer depth is published as -Inf (REP 117) and gives no point.",
                  min_value=0.0),
    ParameterSpec("max_range", 100.0, "Meters; farther depth is published as +Inf (REP 117) and gives no point.",
                  min_value=0.0),
    ParameterSpec("output_scale", 1.0, "Size of every output relative to the input image (camera_info is "
                  "rescaled to match); < 1 saves bandwidth.", min_value=0.05, max_value=1.0),
    ParameterSpec("sky_threshold", 0.0, "Pixels with p below this (far/sky) are +Inf in depth and give no point "
                  "(0 = off).", min_value=0.0, max_value=1.0),
    ParameterSpec("flying_pixel_threshold", 0.0, "A pixel whose depth differs from a 4-neighbour's by more than "
                  "this fraction of its depth is NaN in depth and points (0 = off; 0.05-0.1 removes edge "
                  "streaks).", min_value=0.0, max_value=10.0),
    ParameterSpec("cloud_stride", 1, "Keep every n-th pixel in both directions in 'points'.", min_value=1,
                  max_value=32),
    ParameterSpec("cloud_color", True, "Add the packed 'rgb' field (from the input image) to 'points'."),
    ParameterSpec("colormap", "turbo", "Matplotlib colormap of depth/colored (drawn from the relative map: "
                  "high values = near)."),
    )),
)
PARAMETERS: tuple[ParameterSpec, ...] = tuple(spec for _, specs in GROUPS for spec in specs)
PARAMETERS_BY_NAME = {spec.name: spec for spec in PARAMETERS}


def defaults() -> dict[str, Any]:
    return {spec.name: list(spec.default) if spec.type is list else spec.default for spec in PARAMETERS}


def check_values(values: dict[str, Any]) -> list[str]:
    """Problems with a set of values: unknown names, wrong types or ranges, and cross-parameter rules."""
    problems = []
    cameras = values.get("cameras", [])
    for name, value in values.items():
        spec = spec_for(name, cameras if isinstance(cameras, (list, tuple)) else [])
        if spec is None:
            problems.append(f"unknown parameter '{name}'")
        elif (reason := spec.check(value, name)) is not None:
            problems.append(reason)
    merged = {**defaults(), **values}
    if not problems and merged["max_range"] <= merged["min_range"]:
        problems.append(f"max_range ({merged['max_range']}) must be greater than min_range ({merged['min_range']})")
    if not problems and merged["warmup_size"] and not _parse_size(merged["warmup_size"]):
        problems.append(f"warmup_size must be WIDTHxHEIGHT such as 640x480, got {merged['warmup_size']!r}")
    if not problems and "colormap" in values:
        from .colormap import colormap_lut

        try:
            colormap_lut(merged["colormap"])
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def spec_for(name: str, cameras=()) -> ParameterSpec | None:
    """The spec of a parameter name: a node-level name, or CAMERA.NAME for a per-camera one of ``cameras``."""
    camera, _, base = name.partition(".")
    if base and camera in cameras and base in PER_CAMERA:
        return PARAMETERS_BY_NAME[base]
    return PARAMETERS_BY_NAME.get(name)


def camera_values(values: dict[str, Any], camera: str) -> dict[str, Any]:
    """The values one camera runs with: the node-level ones, with its CAMERA.NAME values in place (``camera`` ''
    gives the node-level values; a name not in ``cameras`` is an error)."""
    if camera and camera not in values.get("cameras", []):
        raise ValueError(f"camera {camera!r} is not one of cameras {values.get('cameras', [])!r}")
    merged = dict(values)
    for name in PER_CAMERA:
        key = f"{camera}.{name}"
        if key in values:
            merged[name] = values[key]
    return merged


def _parse_size(text: str) -> tuple[int, int] | None:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        return None
    return (width, height) if width > 0 and height > 0 else None


def warmup_size(text: str) -> tuple[int, int] | None:
    """(width, height) of a warmup_size parameter, or None for ''."""
    return _parse_size(text) if text else None


def load_params_file(path: str | Path, node_name: str = "depthmaster") -> dict[str, Any]:
    """The parameter values for ``node_name`` in a ROS 2 params YAML (the ``/**`` block, then blocks of that node
    name in any namespace), validated. For tools that run the processing path without a ROS node."""
    import yaml

    text = Path(path).read_text()
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from exc
    values: dict[str, Any] = {}
    keys = ["/**"] + [key for key in document if key != "/**" and str(key).rstrip("/").split("/")[-1] == node_name]
    for key in keys:  # the wildcard first, the node's own block (any namespace) wins
        block = document.get(key, {})
        values.update(_flatten((block or {}).get("ros__parameters", {}) or {}))
    problems = check_values(values)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return {**defaults(), **{k: normalize(k, v) for k, v in values.items()}}


def _flatten(block: dict, prefix: str = "") -> dict[str, Any]:
    """ROS params YAML nesting (``front: {camera_height: 0.5}``) as the dotted names ROS gives them."""
    flat = {}
    for key, value in block.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def normalize(name: str, value: Any) -> Any:
    """A parameter value in its canonical Python type (ints given for floats, arrays from rclpy, as lists)."""
    spec = spec_for(name, [name.partition(".")[0]])
    if spec.type is float:
        return float(value)
    if spec.type is list:
        return [spec.item_type(v) for v in value]
    return value


def parameters_yaml() -> str:
    """config/depthmaster.yaml: every parameter with its default, description and constraints, by group. The
    block is ``/**`` so it applies to the node under any name and namespace (a ``depthmaster:`` key would not
    match ``/camera/depthmaster``). Regenerate with ``python -m depthmaster_ros.parameters > config/...``."""
    import json
    import textwrap

    lines = ["# Parameters of the depthmaster node with their defaults: every parameter the node declares.",
             "# Generated by `python -m depthmaster_ros.parameters`; copy it and edit the values for your robot.",
             "# Use: depthmaster-node --ros-args --params-file config/depthmaster.yaml",
             "#      ros2 launch depthmaster_ros depthmaster.launch.py params_file:=<your copy>",
             "# '/**' applies it to the node in any namespace; use '/<namespace>/depthmaster' to target one node.",
             "# Several cameras: cameras: [front, rear], and per-camera values nested under each name, e.g.",
             "#   front: {camera_height: 0.45, camera_pitch: 0.2}",
             "/**:", "  ros__parameters:"]
    for title, specs in GROUPS:
        lines.append(f"    # --- {title}")
        for spec in specs:
            extra = []
            if spec.choices:
                extra.append("one of " + ", ".join(spec.choices))
            if spec.min_value is not None and spec.max_value is not None:
                extra.append(f"range [{spec.min_value}, {spec.max_value}]")
            elif spec.min_value is not None:
                extra.append(f">= {spec.min_value}")
            text = spec.description + (" (" + "; ".join(extra) + ")" if extra else "")
            lines += [f"    # {line}" for line in textwrap.wrap(text, 110)]
            value = spec.default
            if isinstance(value, bool):
                rendered = "true" if value else "false"
            elif isinstance(value, (str, list)):
                rendered = json.dumps(value)
            else:
                rendered = repr(value)
            lines.append(f"    {spec.name}: {rendered}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(parameters_yaml(), end="")
