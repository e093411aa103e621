"""One parameter's declaration: name, default, meaning, constraints, live or read-only, per camera or not.

The node declares ROS parameters from these (with descriptors), ``config/depthmaster.yaml`` documents them, the
offline tools read params files against them and the command-line tools take their shared options from them.
Scale sources, engine stages and model backends declare their own parameters with the same class (their registries
hand them to the table); a layer above the table (the ROS node's wiring, ``ros/wiring_parameters.py``) hands its
group over with :func:`contribute_group`. No ROS imports here.
"""

from __future__ import annotations

import array
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    default: Any
    description: str
    read_only: bool = False  # set at start-up only
    model: bool = False  # a model setting: read at configure; a running node accepts it only while unconfigured
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None  # a callable: a registry's names
    min_value: float | None = None
    max_value: float | None = None
    item_type: type = float  # lists: float (a fixed-length vector) or str (names, any number)
    per_camera: bool = False  # with several cameras, each camera has its own value (parameter CAMERA.NAME)
    rule: Callable[[Any], str | None] | None = None  # a check beyond type and range: the reason, or None
    note: str = ""  # what ``rule`` demands, for the descriptor and config/depthmaster.yaml

    @property
    def type(self) -> type:
        """bool, int, float, str, or list (of ``item_type``)."""
        return list if isinstance(self.default, (list, tuple)) else type(self.default)

    @property
    def allowed(self) -> tuple[str, ...] | None:
        return self.choices() if callable(self.choices) else self.choices

    def coerce(self, value: Any) -> Any:
        """``value`` in this parameter's type where the meaning is unambiguous: an integer where a double is
        declared (``-p scale:=2``, ``camera_height: 1`` in YAML), integers in a list of doubles, a tuple for a
        list, the choice ``off`` of a string parameter that YAML read as false (``-p temporal_mode:=off``). Anything
        else is returned unchanged (and :meth:`check` says what is wrong with it)."""
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if self.type is str and isinstance(value, bool):
            # YAML 1.1 (ROS's -p and params files) reads off/no/false as false and on/yes/true as true: a choice
            # spelled that way (temporal_mode off) arrives as a bool; take it back where only one choice fits
            spellings = ("on", "yes", "true", "y") if value else ("off", "no", "false", "n")
            fitting = [choice for choice in (self.allowed or ()) if choice.lower() in spellings]
            if len(fitting) == 1:
                return fitting[0]
        if self.type is list and isinstance(value, (list, tuple, array.array)):  # rclpy gives array.array('d')
            if self.item_type is float:
                return [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in value]
            return list(value)
        return value

    def check(self, value: Any, name: str | None = None) -> str | None:
        """None if ``value`` (after :meth:`coerce`) is acceptable, else one line naming what was expected and
        what arrived. ``name``: the name to report (a per-camera CAMERA.NAME)."""
        name = name or self.name
        value = self.coerce(value)
        expected = self.type
        if expected is list and self.item_type is str:
            return _check_names(name, value)
        if expected is list:
            if not isinstance(value, list) or not all(isinstance(v, float) for v in value):
                return f"{name} must be a list of {len(self.default)} numbers, got {value!r}"
            if len(value) != len(self.default):
                return f"{name} must have {len(self.default)} values, got {len(value)}"
            if not all(math.isfinite(v) for v in value):
                return f"{name} must hold finite numbers, got {value!r}"
            return self._rule(value, name)
        if type(value) is not expected:
            kinds = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
            got = type(value).__name__
            hint = f"; write {int(value)}" if expected is int and isinstance(value, float) and value.is_integer() \
                else ""
            return f"{name} must be {kinds.get(expected, expected.__name__)}, got {got} {value!r}{hint}"
        if expected is float and not math.isfinite(value):
            return f"{name} must be a finite number, got {value!r}"
        allowed = self.allowed
        if allowed is not None and value not in allowed:
            return f"{name} must be one of {', '.join(allowed)}; got {value!r}"
        if self.min_value is not None and value < self.min_value:
            return f"{name} must be >= {self.min_value}, got {value!r}"
        if self.max_value is not None and value > self.max_value:
            return f"{name} must be <= {self.max_value}, got {value!r}"
        return self._rule(value, name)

    def _rule(self, value: Any, name: str) -> str | None:
        reason = self.rule(value) if self.rule else None
        return f"{name}: {reason}" if reason else None


def _check_names(name: str, value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return f"{name} must be a list of names, got {value!r}"
    for item in value:
        if not _NAME.fullmatch(item):
            return (f"{name}: {item!r} is not usable as a topic namespace and parameter prefix (expected a letter "
                    "then letters, digits or '_', such as front or cam_left)")
    if len(set(value)) != len(value):
        return f"{name} lists a camera twice: {list(value)!r}"
    return None


MAX_TRANSLATION_M = 100.0  # sensors on one robot or rig whose views overlap are meters apart, not kilometers
EXTRINSIC_NOTE = (f"translation x, y, z within +-{MAX_TRANSLATION_M:g} m; the quaternion is normalised when used, "
                  "its length between 1e-3 and 1e3")


def extrinsic_rule(value: list[float]) -> str | None:
    """[x, y, z, qx, qy, qz, qw]: a translation within ``MAX_TRANSLATION_M`` (a larger one is a unit mistake, mm
    for m, or a value from another frame: every point would miss the image), and a quaternion with a length (it
    is normalised when used; a huge one overflows)."""
    far = [v for v in value[:3] if abs(v) > MAX_TRANSLATION_M]
    if far:
        return (f"the translation {value[:3]} is beyond +-{MAX_TRANSLATION_M:g} m (meters from the sensor's optical "
                "frame to the camera's; millimeters by mistake?)")
    length = math.hypot(*value[3:])  # no overflow to inf for huge components
    if length < 1e-9:
        return f"the quaternion [qx, qy, qz, qw] = {value[3:]} has zero length; identity is [0, 0, 0, 1]"
    if not 1e-3 <= length <= 1e3:
        return (f"the quaternion [qx, qy, qz, qw] = {value[3:]} has length {length:.3g}; write a unit quaternion "
                "(identity is [0, 0, 0, 1])")
    return None


def region_rule(value: list[float]) -> str | None:
    """[x0, y0, x1, y1] fractions of the image: a non-empty box inside it."""
    x0, y0, x1, y1 = value
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        return (f"{list(value)} is not [x0, y0, x1, y1] with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 (fractions of "
                "the image width and height; the default, the lower 40 %, is [0, 0.6, 1, 1])")
    return None


_contributed: dict[str, tuple[ParameterSpec, ...]] = {}
_contributed_version = 0


def contribute_group(title: str, specs: tuple[ParameterSpec, ...]) -> None:
    """Add a group of parameters that a layer above the parameter table declares (the table cannot import it):
    they join the table after the model's, in the order contributed. The same title again replaces the group."""
    global _contributed_version
    _contributed[title] = tuple(specs)
    _contributed_version += 1


def contributed_groups() -> tuple[tuple[str, tuple[ParameterSpec, ...]], ...]:
    return tuple(_contributed.items())


def contributed_version() -> int:
    """Changes whenever a group is contributed (for caches of the table)."""
    return _contributed_version
