"""Every parameter in one table: the model's, the processing's and the outputs' (declared here), those the scale
sources, engine stages and model backends declare (read from their registries), and the groups contributed by the
layers above with :func:`~depthmaster_ros.parameter_spec.contribute_group` (the ROS node's start-up and wiring,
``ros/wiring_parameters.py``, contributed by the package's ``__init__``).

The ROS node declares its parameters from this table (with descriptors), ``config/depthmaster.yaml``
documents the same names and defaults (a test keeps them in step), the offline tools read the same YAML into the
same :class:`~depthmaster_ros.processing_config.ProcessingConfig`, and the command-line tools take their shared
options from it (``tools/cli_options.py``). No ROS imports here.
"""

from __future__ import annotations

import dataclasses
import difflib
import warnings
from pathlib import Path
from typing import Any

from .engine.stage import stage_classes, stages_version
from .model.backends import backend_descriptions, backend_names, backend_parameters, backends_version
from .model.checkpoint_layout import DEFAULT_REPO_ID
from .parameter_spec import ParameterSpec, contributed_groups, contributed_version
from .plugins import PluginWarning
from .scale.source import registry_version, scale_modes, scale_sources

DTYPE_CHOICES = ("auto", "fp32", "fp16", "bf16")


def parse_size(text: str) -> tuple[int, int] | None:
    """(width, height) of 'WIDTHxHEIGHT' (the one spelling of image sizes in this package), or None."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        return None
    return (width, height) if width > 0 and height > 0 else None


MAX_SIDE = 16384  # pixels: larger than any camera sensor's side


def _size_rule(text: str) -> str | None:
    size = parse_size(text) if text else None
    if text and not size:
        return f"expected WIDTHxHEIGHT such as 640x480 (or '' for none), got {text!r}"
    if size and max(size) > MAX_SIDE:
        return f"{text} has a side over {MAX_SIDE} pixels, larger than any camera"
    return None


MIN_PROCESSING_RES = 64  # the model's latent is 1/8 of this; the U-Net halves it three times


def _processing_res_rule(value: int) -> str | None:
    if 0 < value < MIN_PROCESSING_RES:
        return (f"{value} is below the model's smallest useful size {MIN_PROCESSING_RES} (its latent is 1/8 of the "
                "image, halved three times by the U-Net): every frame would be refused or meaningless; use 0 "
                f"(native size) or {MIN_PROCESSING_RES}-4096")
    return None


def _colormap_rule(name: str) -> str | None:
    from .colormap import colormap_lut

    try:
        colormap_lut(name)
    except ValueError as exc:
        return str(exc)
    return None


MODEL_TITLE = "Model (loaded at configure; a running node takes changes only while unconfigured)"
MODEL_GROUP = (MODEL_TITLE, (
    ParameterSpec("checkpoint", DEFAULT_REPO_ID,
                  "Checkpoint folder in the official layout (e.g. the folder `hf download zysong212/DepthMaster "
                  "--local-dir DIR` wrote), or a Hugging Face repo id (looked up in the local HF cache; downloaded "
                  "only if allow_download).", model=True),
    ParameterSpec("allow_download", False, "Let a repo id be downloaded from the Hugging Face Hub at configure.",
                  model=True),
    ParameterSpec("device", "auto", "Torch device: auto (first CUDA GPU, else CPU), cpu, cuda or cuda:N.",
                  model=True),
    ParameterSpec("dtype", "auto", "Model precision: auto (bf16 on a GPU that supports it, else fp32), fp32 (as "
                  "the official code), fp16 or bf16. The Fourier Enhancement block always runs in fp32.",
                  model=True, choices=DTYPE_CHOICES),
    ParameterSpec("backend", "eager", "How the model runs: {backends}.",  # the registered backends
                  model=True, choices=backend_names),
    ParameterSpec("warmup_size", "", "WIDTHxHEIGHT of the camera images, to compile and warm the model at "
                  "configure instead of on the first frame ('' = no warm-up).", model=True, rule=_size_rule,
                  note=f"each side at most {MAX_SIDE}"),
    ParameterSpec("cpu_threads", 0, "Torch CPU threads for the model (0 = auto: one fewer than the CPUs this process "
                  "may use, at least 1, so other programs on the machine do not stall it). Only matters on the CPU.",
                  model=True, min_value=0, max_value=256),
))

PROCESSING_GROUP = ("Processing (live: `ros2 param set /depthmaster NAME VALUE` applies from the next frame)", (
    ParameterSpec("processing_res", 768, "Long side (pixels) at which the model runs; 0 = the camera's native "
                  "size. 768 is the published model's default.", min_value=0, max_value=4096,
                  rule=_processing_res_rule, note=f"0 or at least {MIN_PROCESSING_RES}"),
    ParameterSpec("batch_wait", 0.01, "Several cameras: seconds to wait, after one camera's frame arrives, for "
                  "the other cameras' frames so that they share one model pass (0 = take what is there).",
                  min_value=0.0, max_value=1.0),
    ParameterSpec("max_image_pixels", 50_000_000, "Largest image accepted, in pixels (width x height, read from the "
                  "message or the compressed image's header before anything is decoded); larger ones are rejected "
                  "(a 30000x30000 PNG of a few hundred kB would otherwise take gigabytes).", min_value=4096,
                  max_value=1_000_000_000),
    ParameterSpec("max_processing_pixels", 4_194_304, "Largest size the model runs at, in pixels (after "
                  "processing_res resizing); a frame that would need more is rejected with the reason. The "
                  "default, 2048x2048, is 9x the model's native 768 px long side.", min_value=4096,
                  max_value=100_000_000),
    ParameterSpec("max_frame_memory", 384, "Most memory one frame may take, MiB, estimated from the size its "
                  "message declares before anything is decoded: the message, the decoded image, the model's input "
                  "and output, the outputs and their messages. A frame over it is processed at the largest size that "
                  "fits (its outputs as with a lower output_scale, camera_info scaled to match; said on the log and "
                  "/diagnostics), or refused if even decoding it does not fit. The model's weights and its "
                  "activations at processing_res are the same for every frame and not part of it. 0 = no limit. "
                  "The default suits a robot with 8-16 GB shared by CPU and GPU (docs/robustness.md).",
                  min_value=0, max_value=1_048_576),
    ParameterSpec("camera_info_tolerance", 0.05, "Seconds: a camera_info whose stamp differs from the image's "
                  "by at most this much is used when none has the exact stamp.", min_value=0.0, max_value=10.0),
))

OUTPUT_GROUP = ("Depth image and point cloud (live)", (
    ParameterSpec("min_range", 0.1, "Meters; closer depth is published as -Inf (REP 117) and gives no point.",
                  min_value=0.0, max_value=1000.0),
    ParameterSpec("max_range", 100.0, "Meters; farther depth is published as +Inf (REP 117) and gives no point "
                  "(depth beyond 1e6 m is +Inf whatever this is).", min_value=0.0, max_value=1_000_000.0),
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
                  "high values = near).", rule=_colormap_rule),
))

# Parameters that were replaced, with their new name and value (params files and -p overrides keep working).
RENAMED = {
    "compile": ("backend", lambda on: "compile" if on else None),
    "cuda_graphs": ("backend", lambda on: "cuda_graphs" if on else None),
}


def _scale_groups() -> list[tuple[str, tuple[ParameterSpec, ...]]]:
    modes = scale_modes()
    listing = "; ".join([f"{modes[0]} (relative outputs only)"] + [s.description for s in scale_sources()])
    groups = [("Scale recovery (live)", (
        ParameterSpec("scale_mode", "none", f"How metric scale is obtained: {listing}. Without a scale there is "
                      "no metric depth and no point cloud.", choices=scale_modes),
        ParameterSpec("metric_source_tolerance", 0.1, "Seconds: the measurement (sparse depth image, LiDAR scan, "
                      "...) nearest to the image stamp is used if it is at most this far away.", min_value=0.0,
                      max_value=10.0),
    ))]
    for source in scale_sources():
        if source.parameters:
            groups.append((f"scale_mode {source.name} (live)", source.parameters))
    return groups


_cache: tuple[tuple, list, dict] | None = None


def groups() -> list[tuple[str, tuple[ParameterSpec, ...]]]:
    """(title, specs) in the order config/depthmaster.yaml documents them."""
    return _table()[1]


def _table():
    global _cache
    version = (registry_version(), stages_version(), backends_version(), contributed_version())
    if _cache is None or _cache[0] != version:
        model = (MODEL_TITLE, tuple(_described_backend(spec) for spec in MODEL_GROUP[1]))
        scale, *sources = _scale_groups()
        declared: set[str] = set()
        for _, specs in (model, *contributed_groups(), PROCESSING_GROUP, scale, OUTPUT_GROUP):
            for spec in specs:
                if spec.name in declared:
                    raise ValueError(f"parameter {spec.name!r} is declared twice")
                declared.add(spec.name)
        # what the registries bring (plug-ins among them): a name already declared is left out with a warning
        backends = [_unclaimed(f"backend {name} (read at configure)", backend_parameters(name), declared)
                    for name in backend_names()]
        sources = [_unclaimed(title, specs, declared) for title, specs in sources]
        stages = [_unclaimed(stage.title, stage.parameters, declared) for stage in stage_classes()]
        table = [model, *backends, *contributed_groups(), PROCESSING_GROUP, scale, *sources, *stages, OUTPUT_GROUP]
        table = [(title, specs) for title, specs in table if specs]
        by_name = {spec.name: spec for _, specs in table for spec in specs}
        _cache = (version, table, by_name)
    return _cache


def _described_backend(spec: ParameterSpec) -> ParameterSpec:
    """The ``backend`` parameter with the registered backends in its description."""
    if spec.name != "backend":
        return spec
    return dataclasses.replace(spec, description=spec.description.format(backends=backend_descriptions()))


def _unclaimed(title: str, specs, declared: set[str]) -> tuple[str, tuple[ParameterSpec, ...]]:
    kept = []
    for spec in specs:
        if spec.name in declared:
            warnings.warn(f"depthmaster_ros: parameter {spec.name!r} of '{title}' is already declared by another "
                          "part; this one is left out", PluginWarning, stacklevel=3)
        else:
            declared.add(spec.name)
            kept.append(spec)
    return title, tuple(kept)


def specs() -> tuple[ParameterSpec, ...]:
    return tuple(_table()[2].values())


def spec(name: str) -> ParameterSpec | None:
    return _table()[2].get(name)


def per_camera_names() -> tuple[str, ...]:
    return tuple(s.name for s in specs() if s.per_camera)


def live_names() -> tuple[str, ...]:
    """The parameters a running node applies from the next frame (the processing configuration)."""
    return tuple(s.name for s in specs() if not s.read_only and not s.model)


def defaults() -> dict[str, Any]:
    return {s.name: list(s.default) if s.type is list else s.default for s in specs()}


def spec_for(name: str, cameras=()) -> ParameterSpec | None:
    """The spec of a parameter name: a node-level name, or CAMERA.NAME for a per-camera one of ``cameras``."""
    camera, _, base = name.partition(".")
    if base and camera in cameras:
        found = spec(base)
        return found if found is not None and found.per_camera else None
    return spec(name)


def suggest(name: str, cameras=()) -> str:
    """' (did you mean X?)' for a name close to a known one, '' otherwise; a replaced name says what replaces it."""
    if name in RENAMED:
        return f" (replaced by {RENAMED[name][0]})"
    known = [s.name for s in specs()] + [f"{c}.{n}" for c in cameras for n in per_camera_names()]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def check_values(values: dict[str, Any]) -> list[str]:
    """Problems with a set of values: unknown names, wrong types or ranges, and cross-parameter rules. Integers
    are accepted for doubles (see :meth:`ParameterSpec.coerce`)."""
    return [reason for _, reason in named_problems(values)]


def _range_rule(values: dict[str, Any]) -> str | None:
    if values["max_range"] <= values["min_range"]:
        return f"max_range ({values['max_range']}) must be greater than min_range ({values['min_range']})"
    return None


# rules across parameters: (the names they read, the check: the reason or None)
CROSS_RULES = ((("min_range", "max_range"), _range_rule),)


def named_problems(values: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """:func:`check_values` with the names each problem is about (one, or those of a rule across parameters)."""
    problems: list[tuple[tuple[str, ...], str]] = []
    cameras = values.get("cameras", [])
    cameras = cameras if isinstance(cameras, (list, tuple)) else []
    for name, value in values.items():
        found = spec_for(name, cameras)
        if found is None:
            problems.append(((name,), f"unknown parameter '{name}'{suggest(name, cameras)}"))
        elif (reason := found.check(value, name)) is not None:
            problems.append(((name,), reason))
    return problems or cross_rule_problems(values, cameras)


def cross_rule_problems(values: dict[str, Any], cameras=()) -> list[tuple[tuple[str, ...], str]]:
    """The rules across parameters (``CROSS_RULES``) broken by ``values`` (valid each on its own) with the
    defaults for the rest: (the names of the rule, the reason)."""
    merged = {**defaults(), **{k: normalize(k, v, cameras) for k, v in values.items()}}
    return [(names, reason) for names, rule in CROSS_RULES if (reason := rule(merged)) is not None]


def camera_values(values: dict[str, Any], camera: str) -> dict[str, Any]:
    """The values one camera runs with: the node-level ones, with its CAMERA.NAME values in place (``camera`` ''
    gives the node-level values; a name not in ``cameras`` is an error)."""
    if camera and camera not in values.get("cameras", []):
        raise ValueError(f"camera {camera!r} is not one of cameras {values.get('cameras', [])!r}")
    merged = dict(values)
    for name in per_camera_names():
        key = f"{camera}.{name}"
        if key in values:
            merged[name] = values[key]
    return merged


def warmup_size(text: str) -> tuple[int, int] | None:
    """(width, height) of a warmup_size parameter, or None for ''."""
    return parse_size(text) if text else None


def normalize(name: str, value: Any, cameras=None) -> Any:
    """A parameter value in its canonical Python type (ints given for floats, arrays from rclpy, as lists)."""
    found = spec_for(name, cameras if cameras is not None else [name.partition(".")[0]])
    return found.coerce(value) if found is not None else value


def translate_renamed(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Replace the parameters in ``RENAMED`` by their successors; (values, one warning per replaced name)."""
    values = dict(values)
    warnings = []
    for old in sorted(RENAMED, key=lambda n: n == "cuda_graphs"):  # cuda_graphs wins over compile
        if old in values:
            new, convert = RENAMED[old]
            replacement = convert(values.pop(old))
            if replacement is not None:
                values[new] = replacement
            warnings.append(f"parameter '{old}' was replaced by '{new}'"
                            + (f": using {new}: {replacement}" if replacement is not None else "; ignored"))
    return values, warnings


# rclpy's own parameters of every node (`ros2 param dump` writes them): not the node's configuration. The offline
# tools ignore them in a params file (they run on the bag's time without a ROS clock); qos_overrides.* likewise.
ROS_BUILTIN = ("use_sim_time", "start_type_description_service")


def is_ros_builtin(name: str) -> bool:
    return name in ROS_BUILTIN or name.startswith("qos_overrides.")


def load_params_file(path: str | Path, node_name: str = "depthmaster", warn=None) -> dict[str, Any]:
    """The parameter values for ``node_name`` in a ROS 2 params YAML (the ``/**`` block, then blocks of that node
    name in any namespace), validated. For tools that run the processing path without a ROS node. ``warn``: called
    with a message for each replaced parameter name. ValueError (one line: the file, the line, what was expected)
    for a file ROS could not read (``params_file.py``) or values the node would refuse. rclpy's own parameters
    (``ROS_BUILTIN``, ``qos_overrides.*``) are left out, so the output of ``ros2 param dump`` reads as it is."""
    from .params_file import read_params_file

    values, lines = read_params_file(path).for_node(node_name)
    values = {name: value for name, value in values.items() if not is_ros_builtin(name)}
    values, renamed = translate_renamed(values)
    for message in renamed:
        if warn is not None:
            warn(f"{path}: {message}")
    problems = named_problems(values)
    if problems:
        raise ValueError("; ".join(f"{path}{_line_of(names, lines)}: {reason}" for names, reason in problems))
    cameras = values.get("cameras", [])
    return {**defaults(), **{k: normalize(k, v, cameras) for k, v in values.items()}}


def _line_of(names: tuple[str, ...], lines: dict[str, int]) -> str:
    found = sorted(lines[name] for name in names if name in lines)
    return f" line {found[-1]}" if found else ""


def constraints(item: ParameterSpec) -> list[str]:
    """What a parameter accepts beyond its type, and how it may change, as short phrases (the generated docs and
    the ROS parameter descriptor's additional_constraints)."""
    extra = []
    if item.allowed:
        extra.append("one of " + ", ".join(item.allowed))
    if item.min_value is not None and item.max_value is not None:
        extra.append(f"range [{item.min_value}, {item.max_value}]")
    elif item.min_value is not None:
        extra.append(f">= {item.min_value}")
    if item.note:
        extra.append(item.note)
    if item.per_camera:
        extra.append("per camera")
    if item.model:
        extra.append("changes only while unconfigured")
    return extra


def _yaml_value(value: Any) -> str:
    """A default as YAML (and ROS) spell it: true/false, quoted strings, lists, numbers."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, list, tuple)):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    return repr(value)


def parameters_yaml() -> str:
    """config/depthmaster.yaml: every parameter with its default, description and constraints, by group. The
    block is ``/**`` so it applies to the node under any name and namespace (a ``depthmaster:`` key would not
    match ``/camera/depthmaster``). Regenerate with ``python -m depthmaster_ros.parameters > config/...``."""
    import textwrap

    lines = ["# Parameters of the depthmaster node with their defaults: every parameter the node declares.",
             "# Generated by `python -m depthmaster_ros.parameters`; copy it and edit the values for your robot.",
             "# Use: depthmaster-node --ros-args --params-file config/depthmaster.yaml",
             "#      ros2 launch depthmaster_ros depthmaster.launch.py params_file:=<your copy>",
             "# '/**' applies it to the node in any namespace; use '/<namespace>/depthmaster' to target one node.",
             "# Several cameras: cameras: [front, rear], and per-camera values nested under each name, e.g.",
             "#   front: {camera_height: 0.45, camera_pitch: 0.2}",
             "/**:", "  ros__parameters:"]
    for title, group in groups():
        lines.append(f"    # --- {title}")
        for item in group:
            extra = constraints(item)
            text = item.description + (" (" + "; ".join(extra) + ")" if extra else "")
            lines += [f"    # {line}" for line in textwrap.wrap(text, 110)]
            lines.append(f"    {item.name}: {_yaml_value(item.default)}")
    return "\n".join(lines) + "\n"


def parameters_markdown() -> str:
    """docs/parameters.md: the same table as :func:`parameters_yaml`, for reading. Regenerate with
    ``python -m depthmaster_ros.parameters --markdown > docs/parameters.md``."""
    lines = ["# Parameters",
             "",
             "Every parameter of the `depthmaster` node, by group, with its default, what it accepts and what it "
             "means. Generated from the parameter table (`depthmaster_ros/parameters.py`, with the parameters the "
             "model backends, scale sources and engine stages declare, plug-ins included, and the node's own, "
             "`ros/wiring_parameters.py`) by `python -m depthmaster_ros.parameters --markdown > "
             "docs/parameters.md`; `config/depthmaster.yaml` is generated from the same table and is the file to "
             "copy and edit. A test keeps both in step with the code.",
             "",
             "How parameters are set, which ones change live and what happens to a bad value: "
             "[node.md](node.md#parameters).",
             ""]
    for title, group in groups():
        lines += [f"## {title}", "", "| parameter | default | accepts | meaning |", "|---|---|---|---|"]
        for item in group:
            accepts = constraints(item) + (["set at start-up only"] if item.read_only else [])
            cells = [f"`{item.name}`", f"`{_yaml_value(item.default)}`", "; ".join(accepts), item.description]
            lines.append("| " + " | ".join(cell.replace("|", "\\|").replace("<", "&lt;") for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(parameters_markdown() if sys.argv[1:] == ["--markdown"] else parameters_yaml(), end="")
