"""The node's ROS parameters: declared from the one table (``parameters.py``) with descriptors, forgiving what ROS
users type, strict about what they mean.

* An integer where a double is declared (``-p scale:=2``, ``camera_height: 1`` in YAML, ``ros2 param set ...
  scale 2``) is taken as that double, and the parameter keeps its declared type for reads; integers in a list
  of doubles likewise.
* A start-up value that cannot be used (a double for an integer, a list of the wrong length, NaN, a value out of
  its range, a zero quaternion, an empty region, ``min_range`` above ``max_range``) is refused with a one-line
  reason on the log and ``/diagnostics``, and configure fails with that reason until the parameter is set to a
  valid value (``ros2 param set``; a model parameter while unconfigured): the node never runs in a mode nobody
  asked for (``-p scale_mode:=lidar`` does not start it in scale_mode none). ``depthmaster-bag`` refuses the same
  values with the same reasons. A read-only parameter (``cameras``, ``input_transport``, ...) that no later
  change can fix stops the node (exit 2).
* A name the node does not know (``scale_mod``) is named on the log and ``/diagnostics`` with the closest known
  name; parameters that were replaced (``compile``) are translated with a warning.
* Live changes are validated as a whole (ranges, finiteness, cross-parameter rules) and refused with the reason;
  the old value stays. The model's parameters (``checkpoint``, ``device``, ...) are read at configure: they change
  while the node is unconfigured, so a failed configure is fixed without a restart.
"""

from __future__ import annotations

from typing import Any, Callable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.parameter import Parameter

from ..parameters import RENAMED, check_values, constraints, cross_rule_problems, is_ros_builtin, normalize, \
    per_camera_names, spec, spec_for, specs, suggest, translate_renamed
from .user_commands import lifecycle_command, param_set_command

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
          list: ParameterType.PARAMETER_DOUBLE_ARRAY}


def descriptor(item, name: str | None = None) -> ParameterDescriptor:
    kind = ParameterType.PARAMETER_STRING_ARRAY if item.item_type is str else _TYPES[item.type]
    desc = ParameterDescriptor(name=name or item.name, type=kind, description=item.description,
                               read_only=item.read_only)
    if item.min_value is not None and item.max_value is not None:
        if item.type is int:
            desc.integer_range = [IntegerRange(from_value=int(item.min_value), to_value=int(item.max_value), step=1)]
        else:
            desc.floating_point_range = [FloatingPointRange(from_value=float(item.min_value),
                                                            to_value=float(item.max_value), step=0.0)]
    desc.additional_constraints = "; ".join(constraints(item))
    return desc


def _as_declared(item, value: Any) -> Any:
    """The value in the declared ROS type where that is unambiguous (see ParameterSpec.coerce)."""
    return item.coerce(list(value) if isinstance(value, tuple) else value)


class NodeParameters:
    """Declares the table's parameters on ``node`` and keeps them valid. ``problems``: the start-up values that
    were refused or unknown (one line each), for /diagnostics; ``refused``: the refused ones by name, which fail
    configure until they are set to valid values."""

    def __init__(self, node, on_change: Callable[[], None],
                 check: Callable[[dict[str, Any], set[str]], list[str]] = lambda values, changed: []):
        """``check(values, changed names)``: the node's own objections to a change (e.g. the memory a processing
        size needs), as reasons."""
        self._node = node
        self._check = check
        self._held_back: dict[str, str] = {}  # live values refused before rclpy's own checks: name -> reason
        self._problems: dict[str, str] = {}  # name -> the line for the log and /diagnostics
        self.refused: dict[str, str] = {}  # start-up values refused: name -> reason
        overrides = node._parameter_overrides  # the -p / --params-file values, before anything is declared
        self._translate_renamed(overrides)
        cameras = self._cameras(overrides)
        self.cameras = cameras
        for item in specs():
            self._clean_override(overrides, item.name, item)
        self._check_cross_rules(overrides)
        for item in specs():
            if item.item_type is str:  # an empty default would make rclpy guess a byte array
                node.declare_parameter(item.name, Parameter.Type.STRING_ARRAY, descriptor(item))
            else:
                node.declare_parameter(item.name, item.default, descriptor(item))
        for camera in cameras:
            for name in per_camera_names():
                key = f"{camera}.{name}"
                self._clean_override(overrides, key, spec(name))
                node.declare_parameter(key, node.get_parameter(name).value, descriptor(spec(name), key))
        for name in sorted(overrides):
            if not node.has_parameter(name) and not is_ros_builtin(name):
                self._problem(name, f"unknown parameter '{name}' ignored{suggest(name, cameras)}")
        node.add_pre_set_parameters_callback(self._coerce)
        node.add_on_set_parameters_callback(self._validate)
        node.add_post_set_parameters_callback(lambda parameters: self._changed(parameters, on_change))

    @property
    def problems(self) -> list[str]:
        return list(self._problems.values())

    def refused_reason(self) -> str:
        """Why configure must fail: the start-up values refused and not yet set to valid ones ('' if none)."""
        if not self.refused:
            return ""
        names = sorted(self.refused)
        return ("start-up value(s) refused: " + "; ".join(dict.fromkeys(self.refused[name] for name in names))
                + f". Set {', '.join(names)} to valid values ("
                f"{param_set_command(self._node.get_fully_qualified_name(), 'NAME', 'VALUE')}) and configure again, "
                "or restart with them")

    def _changed(self, parameters, on_change: Callable[[], None]) -> None:
        for parameter in parameters:  # a valid value was set: its start-up refusal no longer holds
            if self.refused.pop(parameter.name, None) is not None:
                self._problems.pop(parameter.name, None)
        on_change()

    # ------------------------------------------------------------------ start-up
    def _problem(self, name: str, message: str) -> None:
        self._problems[name] = message
        self._node.get_logger().error(message)

    def _refuse(self, name: str, reason: str) -> None:
        item = spec_for(name, self.cameras)
        if item is not None and item.read_only:  # nothing after start-up can change it
            raise ValueError(f"{reason} ({name} is read-only: restart with a valid value)")
        self.refused[name] = reason
        self._problem(name, f"{reason}: configure fails until {name} is set to a valid value")

    def _translate_renamed(self, overrides: dict) -> None:
        old = {name: overrides[name].value for name in RENAMED if name in overrides}
        if not old:
            return
        translated, warnings = translate_renamed(old)
        for name in old:
            del overrides[name]
        for name, value in translated.items():
            overrides.setdefault(name, Parameter(name, value=value))
        for message in warnings:
            self._node.get_logger().warning(message)

    def _cameras(self, overrides: dict) -> list[str]:
        item = spec("cameras")
        value = list(overrides["cameras"].value or []) if "cameras" in overrides else []
        reason = item.check(value)
        if reason:  # a structural parameter that no later transition can fix
            raise ValueError(reason)
        return value

    def _clean_override(self, overrides: dict, name: str, item) -> None:
        """Coerce a start-up value to the declared type, or refuse it (the default stays) with the reason."""
        if name not in overrides:
            return
        value = overrides[name].value
        if value is None and item.type is list and not item.default:  # an empty YAML list: rclpy gives no value
            del overrides[name]
            return
        reason = item.check(value, name)
        if reason is None:
            overrides[name] = Parameter(name, value=_as_declared(item, value))
        else:
            del overrides[name]  # declared with its default, which configure will not run with
            self._refuse(name, reason)

    def _check_cross_rules(self, overrides: dict) -> None:
        """Rules across parameters (min_range < max_range) on the start-up values: each value given for a
        broken rule is refused."""
        known = {name: overrides[name].value for name in overrides if spec(name) is not None}
        for names, reason in cross_rule_problems(known):
            for name in names:
                if name in overrides:
                    del overrides[name]
                    self._refuse(name, reason)

    # ------------------------------------------------------------------ live changes
    def _coerce(self, parameters: list) -> list:
        """pre-set: integers for doubles become doubles, so the declared type is kept. A value of another wrong
        type, or one its own check refuses (a range, NaN, a rule), is held back with its reason (rclpy's own checks
        would only say 'Wrong parameter type, expected 2 got 3' or 'out of range Min: 0.0, Max: 100.0, value:
        nan'), for the validation that follows to refuse with the sentence the start-up check and the tools give."""
        result = []
        for parameter in parameters:
            item = spec_for(parameter.name, self.cameras)
            if item is not None and parameter.type_ != Parameter.Type.NOT_SET and self._node.has_parameter(
                    parameter.name):
                value = _as_declared(item, parameter.value)
                declared = self._node.describe_parameter(parameter.name).type
                wrong_type = Parameter(parameter.name, value=value).type_.value != declared
                reason = item.check(value, parameter.name)
                if wrong_type or reason:
                    self._held_back[parameter.name] = reason or (
                        f"{parameter.name} has the wrong type: {parameter.value!r}")
                    parameter = self._node.get_parameter(parameter.name)  # a placeholder, refused below
                else:
                    parameter = Parameter(parameter.name, value=value)
            result.append(parameter)
        return result

    def _validate(self, parameters) -> SetParametersResult:
        held_back = [self._held_back.pop(p.name) for p in parameters if p.name in self._held_back]
        self._held_back.clear()
        if held_back:
            return SetParametersResult(successful=False, reason="; ".join(held_back))
        changes = {}
        for parameter in parameters:
            item = spec_for(parameter.name, self.cameras)
            if item is not None:
                if item.model and self._node.lifecycle_state != "unconfigured":
                    return SetParametersResult(successful=False, reason=(
                        f"{parameter.name} is read when the model loads: change it while the node is unconfigured "
                        f"({lifecycle_command(self._node.get_fully_qualified_name(), 'deactivate')}, then cleanup; "
                        "set it; then configure and activate)"))
                changes[parameter.name] = normalize(parameter.name, parameter.value, self.cameras)
        problems = check_values({**self.values(), **changes}) if changes else []
        if changes and not problems:
            problems = self._check({**self.values(), **changes}, set(changes))
        return SetParametersResult(successful=not problems, reason="; ".join(problems))

    def values(self) -> dict[str, Any]:
        """Every parameter's current value (canonical Python types), per-camera ones as CAMERA.NAME."""
        node = self._node
        values = {item.name: normalize(item.name, node.get_parameter(item.name).value, ())
                  for item in specs() if item.item_type is not str}
        values["cameras"] = list(self.cameras)
        for camera in self.cameras:
            for name in per_camera_names():
                key = f"{camera}.{name}"
                values[key] = normalize(key, node.get_parameter(key).value, self.cameras)
        return values
