"""Extrinsics from TF: where the sparse depth sensor and the LiDAR sit relative to the camera, looked up in TF
(``tf2_ros``) from each measurement message's frame_id to the image's optical frame, instead of the
``sparse_depth_to_camera`` / ``lidar_to_camera`` parameters.

``extrinsics_source``: ``tf`` (TF only: a measurement whose transform cannot be found is unusable, with the
reason), ``parameters`` (never TF; the venv route, where tf2_ros cannot be installed), ``auto`` (TF when tf2_ros is
importable and the lookup succeeds, else the parameter). Each transform is cached and looked up again once it is
``refresh_s`` old (a sensor mount that moves, a calibration republished); when a refresh fails the last good one
stays in use. A frame_id equal to the image's needs no lookup (a depth image registered to the colour image).
The lookup is injectable (``lookup(target_frame, source_frame) -> [x, y, z, qx, qy, qz, qw]``), which the tests
use where tf2 is not installed.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from ..scale.source import get_source
from .wiring_parameters import EXTRINSICS_SOURCES as SOURCES

IDENTITY = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
REFRESH_S = 1.0
Lookup = Callable[[str, str], list]


def tf2_lookup(node) -> tuple[Lookup | None, str, object]:
    """(lookup over a tf2_ros Buffer filled by a TransformListener on ``node``, "" , the listener) or (None, why
    not, None) when tf2_ros is not installed."""
    try:
        import tf2_ros
    except ImportError as exc:
        return None, f"tf2_ros is not installed ({exc.name or exc}): extrinsics from the parameters", None
    from rclpy.time import Time

    buffer = tf2_ros.Buffer()
    listener = tf2_ros.TransformListener(buffer, node)

    def lookup(target: str, source: str) -> list:
        transform = buffer.lookup_transform(target, source, Time()).transform  # the latest
        t, q = transform.translation, transform.rotation
        return [t.x, t.y, t.z, q.x, q.y, q.z, q.w]

    return lookup, "", listener


class TfExtrinsics:
    """The extrinsic parameters of a frame's measurements, from TF where ``mode`` says so. ``node``: where a
    TransformListener subscribes (none needed with ``lookup`` given or mode ``parameters``)."""

    def __init__(self, mode: str, node=None, lookup: Lookup | None = None, refresh_s: float = REFRESH_S,
                 clock: Callable[[], float] = time.monotonic):
        if mode not in SOURCES:
            raise ValueError(f"extrinsics_source must be one of {', '.join(SOURCES)}, got {mode!r}")
        self.mode = mode
        self.unavailable = ""  # why TF is not used at all
        self._listener = None
        if mode != "parameters" and lookup is None:
            lookup, self.unavailable, self._listener = tf2_lookup(node)
        self._lookup = None if mode == "parameters" else lookup
        self._refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[tuple, float]] = {}  # (camera, sensor) -> (transform, fetched)
        self._last: dict[str, str] = {}  # extrinsic parameter -> how its value was found, for /diagnostics
        self._updated = None  # ((config, changes), the config with them)

    def transform(self, camera_frame: str, sensor_frame: str) -> tuple[tuple | None, str]:
        """(the transform from ``sensor_frame`` to ``camera_frame``, "") or (None, why there is none)."""
        if self._lookup is None:
            return None, self.unavailable or "extrinsics_source is parameters"
        if sensor_frame == camera_frame:
            return IDENTITY, ""
        if not sensor_frame or not camera_frame:
            return None, f"a message without a frame_id ({'image' if not camera_frame else 'measurement'})"
        key = (camera_frame, sensor_frame)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[1] < self._refresh_s:
            return cached[0], ""
        try:
            value = tuple(float(v) for v in self._lookup(camera_frame, sensor_frame))
        except Exception as exc:  # noqa: BLE001 - tf2's lookup, connectivity and extrapolation errors alike
            if cached is not None:  # a refresh that failed: the last good transform stays in use
                return cached[0], ""
            return None, f"no TF from {sensor_frame} to {camera_frame}: {type(exc).__name__}: {exc}".rstrip(": ")
        with self._lock:
            self._cache[key] = (value, now)
        return value, ""

    def apply(self, config, frames: dict[str, str], camera_frame: str):
        """(``config`` with the extrinsic parameters of the measurements in ``frames`` ({input: frame_id}) taken
        from TF where the mode says so, {input: why it is unusable} in mode ``tf``)."""
        source = get_source(config.scale_mode)
        changes, unusable = {}, {}
        for item in (source.inputs if source is not None else ()):
            if item.extrinsic is None or item.name not in frames:
                continue
            value, why = self.transform(camera_frame, frames[item.name])
            if value is not None:
                if tuple(getattr(config, item.extrinsic)) != value:
                    changes[item.extrinsic] = list(value)
                self._last[item.extrinsic] = f"tf: {frames[item.name] or '?'} -> {camera_frame}"
            elif self.mode == "tf":
                unusable[item.name] = f"extrinsics_source is tf and {why}"
                self._last[item.extrinsic] = f"tf: none ({why})"
            else:
                self._last[item.extrinsic] = f"parameter ({why})"
        if not changes:
            return config, unusable
        key = (config, tuple(sorted((name, tuple(value)) for name, value in changes.items())))
        with self._lock:  # the same config and transforms frame after frame: validated once
            if self._updated is None or self._updated[0] != key:
                self._updated = (key, config.with_measured(**changes))  # measured: no typing bounds
            return self._updated[1], unusable

    def report(self, config) -> dict[str, str]:
        """For /diagnostics: how each extrinsic of the scale mode in use was last found."""
        source = get_source(config.scale_mode)
        names = [item.extrinsic for item in (source.inputs if source is not None else ()) if item.extrinsic]
        if not names:
            return {}
        default = "parameter" + (f" ({self.unavailable})" if self.unavailable else "" if self._lookup else
                                 " (extrinsics_source: parameters)")
        return {"extrinsics": "; ".join(f"{name}: {self._last.get(name, default)}" for name in names)}
