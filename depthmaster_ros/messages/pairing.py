"""Everything that accompanies one camera's frames (its camera info, and the measurements of the scale sources:
sparse depth images, LiDAR scans, ...), kept by stamp and paired with each frame. Shared by the node (live
messages) and the offline tools (messages read from bags), so all pair, validate and reject the same way.

The inputs are those the registered scale sources declare (``scale/source.py``): adding a source adds its
topics here without a change to this module.
"""

from __future__ import annotations

from typing import Any, Callable

from ..engine.job import METRIC_OUTPUTS, OUTPUTS, FrameJob
from ..scale.source import MeasurementInput, ScaleSource, get_source, measurement_inputs
from .conversions import InputError, camera_info_to_intrinsics, cloud_to_xyz, depth_image_to_meters, stamp_to_ns
from .stamp_cache import StampCache

DECODERS: dict[str, Callable[[Any], Any]] = {
    "depth_image": depth_image_to_meters,
    "camera_info": camera_info_to_intrinsics,
    "points": cloud_to_xyz,
}


def decode_measurement(kind: str, msg) -> Any:
    """A measurement message -> its value; InputError (with the reason) for anything unusable, whatever went
    wrong inside the decoder."""
    try:
        return DECODERS[kind](msg)
    except InputError:
        raise
    except Exception as exc:  # a malformed message must never cost the frame more than this measurement
        raise InputError(f"{kind.replace('_', ' ')} message could not be read: {type(exc).__name__}: {exc}") from exc


class FramePairing:
    def __init__(self):
        self.camera_infos = StampCache("camera_info", "camera_info_tolerance")
        self._caches: dict[str, StampCache] = {}

    def cache(self, name: str) -> StampCache:
        if name not in self._caches:
            item = measurement_inputs().get(name)
            self._caches[name] = StampCache(item.description if item else name, "metric_source_tolerance")
        return self._caches[name]

    def clear(self) -> None:
        self.camera_infos.clear()
        for cache in self._caches.values():
            cache.clear()

    # ------------------------------------------------------------------ arrivals
    def add_camera_info(self, msg) -> str | None:
        """Validate and keep the camera's CameraInfo; the reason if it is rejected."""
        try:
            camera = camera_info_to_intrinsics(msg)
        except InputError as exc:
            return str(exc)
        self.camera_infos.add(stamp_to_ns(msg.header.stamp), camera)
        return None

    def add(self, name: str, msg) -> str | None:
        """Keep a measurement message of input ``name``. Camera infos are validated now (the reason if
        rejected); images and clouds are decoded only when a frame uses them."""
        item = measurement_inputs().get(name)
        if item is None:
            return f"no scale source takes the input {name!r}"
        value = msg
        if item.kind == "camera_info":
            try:
                value = (decode_measurement("camera_info", msg), stamp_to_ns(msg.header.stamp))
            except InputError as exc:
                return str(exc)
        self.cache(name).add(stamp_to_ns(msg.header.stamp), value)
        return None

    # ------------------------------------------------------------------ pairing a frame
    def await_companions(self, stamp_ns: int, source: ScaleSource | None, camera_tolerance_s: float,
                         source_tolerance_s: float, published: Callable[[str], bool] = lambda name: False) -> None:
        """Live streams: give the camera info (and measurements published with the image, such as a registered
        depth image) with this frame's exact stamp up to the pairing tolerance to arrive, since drivers often
        publish them just after the image. ``published(name)`` says a publisher exists for ``camera_info`` or an
        input, so the very first one is waited for too."""
        self.camera_infos.wait_for(stamp_ns, camera_tolerance_s, published("camera_info"))
        for item in (source.inputs if source is not None else ()):
            if item.published_with_image:
                self.cache(item.name).wait_for(stamp_ns, source_tolerance_s, published(item.name))

    def camera_for(self, stamp_ns: int, image_shape, tolerance_s: float, frame_id: str | None = None):
        """(intrinsics or None, why none, rejection reason if the matching camera info does not fit the image:
        another size, or another ``frame_id`` than the image's, when given)."""
        camera, note = self.camera_infos.lookup(stamp_ns, int(tolerance_s * 1e9))
        if camera is not None and frame_id is not None and camera.frame_id.lstrip("/") != frame_id.lstrip("/"):
            # The outputs are in the image's frame (REP: depth shares its image's frame_id): a camera info of
            # another frame is another sensor's calibration (a remap mistake), or a driver whose frame ids
            # disagree; using it silently would publish wrong geometry at full confidence.
            reason = (f"camera_info frame_id '{camera.frame_id}' is not the image's '{frame_id}': it is another "
                      "camera's calibration, or the driver's frame ids disagree; metric depth and points need the "
                      "image's own camera_info")
            return None, reason, reason
        if camera is not None and (camera.width, camera.height) != (image_shape[1], image_shape[0]):
            reason = (f"camera_info is {camera.width}x{camera.height} but the image is {image_shape[1]}x"
                      f"{image_shape[0]}; metric depth and points need matching sizes")
            return None, reason, reason
        return camera, note, None

    def measurements_for(self, source: ScaleSource | None, stamp_ns: int, tolerance_s: float,
                         frames: dict[str, str] | None = None):
        """(values by input name, why an input has none, rejection reasons) for the inputs ``source`` needs at
        this frame's stamp. An input ``at_stamp_of`` another is looked up at that one's message stamp.
        ``frames``: filled with the frame_id of each measurement message used (not camera infos)."""
        values: dict[str, Any] = {}
        notes: dict[str, str] = {}
        rejections: list[str] = []
        stamps: dict[str, int] = {}
        tolerance_ns = int(tolerance_s * 1e9)
        for item in _anchored_last(source.inputs if source is not None else ()):
            at = stamp_ns
            if item.at_stamp_of is not None:
                if item.at_stamp_of not in stamps:
                    continue
                at = stamps[item.at_stamp_of]
            found, note = self.cache(item.name).lookup(at, tolerance_ns)
            if found is None:
                notes[item.name] = note
                continue
            try:
                if item.kind == "camera_info":
                    values[item.name], stamps[item.name] = found
                else:
                    values[item.name] = decode_measurement(item.kind, found)
                    stamps[item.name] = stamp_to_ns(found.header.stamp)
                    if frames is not None:
                        frames[item.name] = found.header.frame_id
            except InputError as exc:
                notes[item.name] = str(exc)
                rejections.append(str(exc))
        return values, notes, rejections

    def job(self, stream: str, stamp_ns: int, rgb, config, outputs=OUTPUTS, context=None, extrinsics=None,
            frame_id: str | None = None):
        """The engine job of a decoded frame with everything paired to it, and the problems met on the way as
        (kind, reason): ``camera_info`` (the matching one does not fit the image: its size, or its frame_id when
        the image's ``frame_id`` is given) or ``metric_source`` (the matching measurement is unusable).
        ``extrinsics(config, frames)`` (a node with TF): the config with the extrinsic parameters of the
        measurements used, by their frame ids, and {input: why it is unusable}."""
        camera, camera_note, rejection = self.camera_for(stamp_ns, rgb.shape, config.camera_info_tolerance,
                                                         frame_id)
        problems = [("camera_info", rejection)] if rejection else []
        values, notes = {}, {}
        if frozenset(outputs) & METRIC_OUTPUTS:
            frames: dict[str, str] = {}
            values, notes, rejections = self.measurements_for(get_source(config.scale_mode), stamp_ns,
                                                              config.metric_source_tolerance, frames)
            if extrinsics is not None and frames:
                config, unusable = extrinsics(config, frames)
                for name, reason in unusable.items():
                    values.pop(name, None)
                    notes[name] = reason
                    rejections.append(reason)
            problems += [("metric_source", reason) for reason in rejections]
        job = FrameJob(stream=stream, stamp_ns=stamp_ns, rgb=rgb, config=config, camera=camera,
                       camera_missing="" if camera is not None else camera_note, measurements=values,
                       measurement_notes=notes, outputs=frozenset(outputs), context=context)
        return job, problems


def _anchored_last(inputs: tuple[MeasurementInput, ...]) -> list[MeasurementInput]:
    """Inputs paired at another input's stamp come after it."""
    return sorted(inputs, key=lambda item: item.at_stamp_of is not None)
