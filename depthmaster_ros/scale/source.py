"""Scale sources: where a metric scale comes from, as plug-ins registered in one place.

A source is a subclass of :class:`ScaleSource` that declares

* ``name``: its ``scale_mode`` value, and a one-line ``description``;
* ``parameters``: its own parameters (:class:`~depthmaster_ros.parameter_spec.ParameterSpec`), which the node
  declares, ``config/depthmaster.yaml`` documents and params files may set;
* ``inputs``: the measurements it needs (:class:`MeasurementInput`): the node subscribes to them, pairs them with
  each frame by stamp, and ``depthmaster-bag`` finds their topics in a bag;

and computes either a scale known without measurements (:meth:`ScaleSource.known_scale`, the fixed mode) or the
(prediction, metric depth) pairs that the robust fit turns into a scale (:meth:`ScaleSource.pairs`). Everything
else (the mode list, the parameter table, subscriptions, pairing, bag topic options) derives from the registry,
so a new source is one module plus its test: define the class and call :func:`register_source`, or publish it as
an entry point of another package (``depthmaster_ros.scale_sources``, see ``plugins.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..parameter_spec import ParameterSpec
from .robust_fit import ScaleFit

NONE = "none"  # the scale_mode without a source: relative outputs only
MEASUREMENT_KINDS = ("depth_image", "camera_info", "points")


@dataclass(frozen=True)
class MeasurementInput:
    """A measurement a source needs, arriving as messages on a topic.

    ``name``: the topic, relative to the camera's namespace (``sparse_depth`` -> ``NAME/sparse_depth`` with several
    cameras), and the key of its value in ``measurements``. ``kind``: ``depth_image`` (sensor_msgs/Image, 32FC1
    meters or 16UC1 millimeters; its value is an H x W float array of meters, NaN = none), ``camera_info``
    (sensor_msgs/CameraInfo; a CameraIntrinsics) or ``points`` (sensor_msgs/PointCloud2 with x, y, z; an N x 3
    float64 array). ``shared``: one topic for every camera (a LiDAR), not one per camera. ``optional``: the frame
    is fitted without it. ``at_stamp_of``: paired at the stamp of that other input's message rather than the
    image's (the camera info of a depth image). ``published_with_image``: a live node waits up to the pairing
    tolerance for the message with the image's exact stamp (a registered depth image comes with its colour
    image). ``option``: the depthmaster-bag option naming its topic (default ``--NAME-topic``). ``extrinsic``: the
    source's parameter holding the transform from this measurement's frame to the camera's optical frame ([x, y, z,
    qx, qy, qz, qw]); a node with TF looks it up instead, from the message's frame_id to the image's.
    """

    name: str
    kind: str
    description: str
    shared: bool = False
    optional: bool = False
    at_stamp_of: str | None = None
    published_with_image: bool = False
    option: str | None = None
    extrinsic: str | None = None

    def __post_init__(self):
        if self.kind not in MEASUREMENT_KINDS:
            raise ValueError(f"measurement {self.name!r}: kind must be one of {', '.join(MEASUREMENT_KINDS)}, "
                             f"got {self.kind!r}")

    @property
    def bag_option(self) -> str:
        return self.option or "--" + self.name.replace("/", "-").replace("_", "-") + "-topic"


class ScaleSource:
    """Base class of the scale sources (see the module documentation)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parameters: ClassVar[tuple[ParameterSpec, ...]] = ()
    inputs: ClassVar[tuple[MeasurementInput, ...]] = ()

    def known_scale(self, config) -> ScaleFit | None:
        """A scale that needs no measurement and no fit (the fixed mode), or None for a fitted source."""
        return None

    def pairs(self, relative: np.ndarray, camera, measurements: dict[str, Any], config) -> tuple[np.ndarray, np.ndarray]:
        """(predictions, metric depths) for the robust fit. ``relative``: the frame's H x W map (float, numpy);
        ``camera``: its intrinsics; ``measurements``: the decoded values of this source's inputs that arrived
        with the frame (a required one is always there: the engine reports a missing one itself); ``config``: the
        frame's processing parameters (this source's parameters are attributes). Raise ValueError with a reason
        a user can act on when no pairs can be made."""
        raise NotImplementedError


_sources: dict[str, ScaleSource] = {}
_builtins_loaded = False
_plugins_loaded = False
_version = 0


def _ensure_builtins() -> None:
    """The built-in sources, then the installed plug-ins' (entry points), once."""
    global _builtins_loaded, _plugins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        held, _plugins_loaded = _plugins_loaded, True  # no plug-in before the built-ins are all in
        from . import sources  # noqa: F401  (registers the built-in sources)
        _plugins_loaded = held
    if not _plugins_loaded:
        _plugins_loaded = True
        from ..plugins import load_plugins

        load_plugins("scale_sources", lambda name, source: register_source(source))


def register_source(source: ScaleSource | type[ScaleSource]) -> ScaleSource:
    """Make a source available as a ``scale_mode`` (and its parameters and inputs known everywhere)."""
    global _version
    _ensure_builtins()
    if isinstance(source, type) and issubclass(source, ScaleSource):
        source = source()
    if not isinstance(source, ScaleSource):
        raise TypeError(f"expected a subclass of depthmaster_ros.scale.source.ScaleSource, got {source!r}")
    name = source.name
    if not name or name == NONE or not name.replace("_", "").isalnum():
        raise ValueError(f"a scale source needs a name of letters, digits and '_' other than {NONE!r}; got {name!r}")
    if name in _sources:
        raise ValueError(f"scale source {name!r} is already registered")
    taken = {spec.name for other in _sources.values() for spec in other.parameters}
    clash = [spec.name for spec in source.parameters if spec.name in taken]
    if clash:
        raise ValueError(f"scale source {name!r} declares parameters that another source declares: {clash}")
    _sources[name] = source
    _version += 1
    return source


def unregister_source(name: str) -> None:
    global _version
    _sources.pop(name, None)
    _version += 1


def scale_sources() -> tuple[ScaleSource, ...]:
    """The registered sources, in registration order."""
    _ensure_builtins()
    return tuple(_sources.values())


def get_source(name: str) -> ScaleSource | None:
    """The source of a scale mode; None for ``none`` (and for an unknown name)."""
    _ensure_builtins()
    return _sources.get(name)


def scale_modes() -> tuple[str, ...]:
    """Every valid ``scale_mode``: ``none`` and the registered sources."""
    return (NONE, *(source.name for source in scale_sources()))


def registry_version() -> int:
    """Changes whenever a source is registered or removed (for caches of derived tables)."""
    _ensure_builtins()
    return _version


def measurement_inputs() -> dict[str, MeasurementInput]:
    """Every input any registered source needs, by name (sources may share one, e.g. a LiDAR topic)."""
    found: dict[str, MeasurementInput] = {}
    for source in scale_sources():
        for item in source.inputs:
            if item.name in found and found[item.name].kind != item.kind:
                raise ValueError(f"measurement {item.name!r} is declared as {found[item.name].kind} and {item.kind}")
            found.setdefault(item.name, item)
    return found
