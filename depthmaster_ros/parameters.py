"""Every node parameter in one table: name, type, default, description, constraints, live or read-only.

The ROS node declares its parameters from this table (with descriptors), ``config/depthmaster.yaml``
documents the same names and defaults (a test keeps them in step), and the offline tools read the same YAML
into the same :class:`~depthmaster_ros.processing.ProcessingConfig`. No ROS imports here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCALE_MODES = ("none", "fixed")
DTYPE_CHOICES = ("fp32", "fp16", "bf16")
RELIABILITY_CHOICES = ("best_effort", "reliable")


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    default: Any
    description: str
    read_only: bool = False
    choices: tuple[str, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None

    @property
    def type(self) -> type:
        return type(self.default)

    def check(self, value: Any) -> str | None:
        """None if ``value`` is acceptable, else the reason (names what was expected and what arrived)."""
        expected = self.type
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not expected:
            return f"{self.name} must be a {expected.__name__}, got {type(value).__name__} {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"{self.name} must be one of {', '.join(self.choices)}; got {value!r}"
        if self.min_value is not None and value < self.min_value:
            return f"{self.name} must be >= {self.min_value}, got {value!r}"
        if self.max_value is not None and value > self.max_value:
            return f"{self.name} must be <= {self.max_value}, got {value!r}"
        return None


PARAMETERS: tuple[ParameterSpec, ...] = (
    # Model (read-only: loaded at configure)
    ParameterSpec("checkpoint", "zysong212/DepthMaster",
                  "Checkpoint folder in the official layout, or a Hugging Face repo id (looked up in the local "
                  "HF cache; downloaded only if allow_download).", read_only=True),
    ParameterSpec("allow_download", False, "Let a repo id be downloaded from the Hugging Face Hub at configure.",
                  read_only=True),
    ParameterSpec("device", "auto", "Torch device: auto (first CUDA GPU, else CPU), cpu, cuda or cuda:N.",
                  read_only=True),
    ParameterSpec("dtype", "fp32", "Model precision: fp32 (as the official code), fp16 or bf16. The Fourier "
                  "Enhancement block always runs in fp32.", read_only=True, choices=DTYPE_CHOICES),
    ParameterSpec("cpu_threads", 0, "Torch CPU threads (0 = torch's default). Only matters on the CPU.",
                  read_only=True, min_value=0, max_value=256),
    ParameterSpec("autostart", True, "Configure and activate at start-up, so a plain run works without a "
                  "lifecycle manager.", read_only=True),
    # Input / output wiring (read-only)
    ParameterSpec("input_transport", "raw", "raw: subscribe sensor_msgs/Image on 'image'; compressed: "
                  "sensor_msgs/CompressedImage (jpeg/png) on 'image/compressed'.", read_only=True,
                  choices=("raw", "compressed")),
    ParameterSpec("input_reliability", "best_effort", "QoS reliability of the image and camera_info "
                  "subscriptions (best_effort accepts both kinds of publishers).", read_only=True,
                  choices=RELIABILITY_CHOICES),
    ParameterSpec("input_depth", 1, "QoS history depth of the input subscriptions (1 = newest frame only).",
                  read_only=True, min_value=1, max_value=100),
    ParameterSpec("output_reliability", "reliable", "QoS reliability of every output (reliable reaches both "
                  "reliable and best-effort subscribers, RViz included).", read_only=True,
                  choices=RELIABILITY_CHOICES),
    ParameterSpec("output_depth", 5, "QoS history depth of the outputs. With 1, a reliable sample whose first "
                  "transmission is missed can be replaced before it is repaired and never arrive.", read_only=True,
                  min_value=1, max_value=100),
    ParameterSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", read_only=True,
                  min_value=0.1, max_value=60.0),
    # Processing (live: change with `ros2 param set`; applies from the next frame)
    ParameterSpec("processing_res", 768, "Long side (pixels) at which the model runs; 0 = the camera's native "
                  "size. 768 is the published model's default.", min_value=0, max_value=4096),
    ParameterSpec("camera_info_tolerance", 0.05, "Seconds: a camera_info whose stamp differs from the image's "
                  "by at most this much is used when none has the exact stamp.", min_value=0.0, max_value=10.0),
    ParameterSpec("scale_mode", "none", "How metric scale is obtained: none (relative outputs only) or fixed "
                  "(use scale and shift).", choices=SCALE_MODES),
    ParameterSpec("scale", 1.0, "Fixed mode: s in sqrt-disparity space, depth = 1 / max((s*p + t)^2, eps).",
                  min_value=0.0),
    ParameterSpec("shift", 0.0, "Fixed mode: t in sqrt-disparity space (1/sqrt(m))."),
    ParameterSpec("min_range", 0.1, "Meters; closer depth is published as -Inf (REP 117) and gives no point.",
                  min_value=0.0),
    ParameterSpec("max_range", 100.0, "Meters; farther depth is published as +Inf (REP 117) and gives no point.",
                  min_value=0.0),
    ParameterSpec("output_scale", 1.0, "Size of every output relative to the input image (camera_info is "
                  "rescaled to match); < 1 saves bandwidth.", min_value=0.05, max_value=1.0),
    ParameterSpec("cloud_stride", 1, "Keep every n-th pixel in both directions in 'points'.", min_value=1,
                  max_value=32),
    ParameterSpec("cloud_color", True, "Add the packed 'rgb' field (from the input image) to 'points'."),
    ParameterSpec("colormap", "turbo", "Matplotlib colormap of depth/colored (drawn from the relative map: "
                  "high values = near)."),
)
PARAMETERS_BY_NAME = {spec.name: spec for spec in PARAMETERS}


def defaults() -> dict[str, Any]:
    return {spec.name: spec.default for spec in PARAMETERS}


def check_values(values: dict[str, Any]) -> list[str]:
    """Problems with a set of values: unknown names, wrong types or ranges, and cross-parameter rules."""
    problems = []
    for name, value in values.items():
        spec = PARAMETERS_BY_NAME.get(name)
        if spec is None:
            problems.append(f"unknown parameter '{name}'")
        elif (reason := spec.check(value)) is not None:
            problems.append(reason)
    merged = {**defaults(), **values}
    if not problems and merged["max_range"] <= merged["min_range"]:
        problems.append(f"max_range ({merged['max_range']}) must be greater than min_range ({merged['min_range']})")
    if not problems and "colormap" in values:
        from .colormap import colormap_lut

        try:
            colormap_lut(merged["colormap"])
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def load_params_file(path: str | Path, node_name: str = "depthmaster") -> dict[str, Any]:
    """The parameter values for ``node_name`` in a ROS 2 params YAML (``/**`` and ``node_name`` blocks merged,
    node block winning), validated. For tools that run the processing path without a ROS node."""
    import yaml

    text = Path(path).read_text()
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from exc
    values: dict[str, Any] = {}
    for key in ("/**", node_name, f"/{node_name}"):
        block = document.get(key, {})
        values.update((block or {}).get("ros__parameters", {}) or {})
    problems = check_values(values)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return {**defaults(), **{k: float(v) if PARAMETERS_BY_NAME[k].type is float else v for k, v in values.items()}}
