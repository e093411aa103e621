"""A bag's frames as engine jobs, for every offline runner (depthmaster-bag, the fleet runner): its messages in log
order, with each image decoded and paired with its camera info and the scale source's measurements.

Camera infos and measurements (sparse depth images, LiDAR scans, ...) go into the same
:class:`~depthmaster_ros.messages.pairing.FramePairing` the node uses. An image waits until the bag has been read
a little past it (the pairing tolerances plus a margin, in log time), so companions logged just after it are
there, and is then paired and decoded into an :class:`Entry`: its job, or why it was skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from ..messages.conversions import InputError, stamp_to_ns
from ..messages.frame_decoding import decode_frame
from ..messages.pairing import FramePairing
from ..messages.topics import COMPRESSED_IMAGE, IMAGE, message_class
from .io import BagError

PAIRING_MARGIN_S = 0.2  # read this much (log time) past an image beyond the pairing tolerances before serving it


@dataclass
class Pending:
    """An image message read and not yet paired."""

    index: int  # among the bag's frames
    log_time: int
    raw: bytes
    compressed: bool


@dataclass
class Entry:
    """A paired frame: its job, or why it was skipped; the problems met pairing it (kind, reason), kind
    ``reduced`` when it was processed at a smaller size to fit max_frame_memory."""

    frame: Pending
    job: object = None
    skipped: str = ""
    problems: list = field(default_factory=list)


@dataclass
class Step:
    """One input message (``index`` None: the end of the bag), the reasons its own content was rejected (a bad
    camera info, ...), and the frames that became ready with it, in order."""

    index: int | None
    connection: object = None
    log_time: int = 0
    raw: bytes = b""
    rejected: list[str] = field(default_factory=list)
    ready: list[Entry] = field(default_factory=list)


class BagFrames:
    """``topics``: role -> topic (``image``, ``camera_info`` and the scale source's inputs, as
    :func:`~depthmaster_ros.rosbag.topics.choose_topics` gives them). ``outputs``: the engine outputs wanted."""

    def __init__(self, reader, topics: dict, params: dict, config, outputs, stream: str = ""):
        self.reader = reader
        self.roles = {topic: role for role, topic in topics.items() if topic}
        self.types = {c.topic: c.msgtype for c in reader.connections}
        self.window = int((max(params["camera_info_tolerance"], params["metric_source_tolerance"])
                           + PAIRING_MARGIN_S) * 1e9)
        self.config, self.outputs, self.stream = config, outputs, stream

    def steps(self, first_frame: int = 0) -> Iterator[Step]:
        """Every message of the bag, then the end; frames before ``first_frame`` are read (their companions are
        cached for the frames after them) but not decoded or returned."""
        from rclpy.serialization import deserialize_message

        pairing = FramePairing()
        pending: list[Pending] = []
        frames = 0
        for index, (connection, log_time, raw) in enumerate(self._messages()):
            step = Step(index, connection, log_time, raw)
            role = self.roles.get(connection.topic)
            if role == "image":
                pending.append(Pending(frames, log_time, raw, self.types[connection.topic] == COMPRESSED_IMAGE))
                frames += 1
            elif role is not None:
                msg = deserialize_message(raw, message_class(connection.msgtype))
                rejection = pairing.add_camera_info(msg) if role == "camera_info" else pairing.add(role, msg)
                if rejection:
                    step.rejected.append(f"{role} rejected: {rejection}")
            ready = [p for p in pending if p.log_time <= log_time - self.window]
            if ready:
                pending = pending[len(ready):]
                step.ready = self._entries(ready, pairing, first_frame)
            yield step
        yield Step(None, ready=self._entries(pending, pairing, first_frame))

    def _messages(self):
        count = 0
        try:
            for item in self.reader.messages():
                yield item
                count += 1
        except BagError:
            raise
        except Exception as exc:  # a damaged bag discovered while reading
            salvaging = getattr(self.reader, "report", None) is not None
            raise BagError(f"reading the bag failed after {count} messages: {type(exc).__name__}: {exc}" + (
                "" if salvaging else ". If it is damaged or was cut short, --salvage reads what is readable")) from exc

    def _entries(self, frames: list[Pending], pairing: FramePairing, first_frame: int) -> list[Entry]:
        """Decode and pair the frames (pairing happens now, while their companions are cached)."""
        from rclpy.serialization import deserialize_message

        entries = []
        for frame in frames:
            if frame.index < first_frame:
                continue
            msg = deserialize_message(frame.raw, message_class(COMPRESSED_IMAGE if frame.compressed else IMAGE))
            try:  # within max_image_pixels and max_frame_memory, as the node does
                rgb, plan = decode_frame(msg, frame.compressed, self.config, self.outputs)
            except InputError as exc:
                entries.append(Entry(frame, skipped=f"image rejected: {exc}"))
                continue
            job, problems = pairing.job(self.stream, stamp_to_ns(msg.header.stamp), rgb,
                                        plan.applied_to(self.config), self.outputs, context=(frame, msg.header),
                                        frame_id=msg.header.frame_id, declared=plan.declared)
            if plan.reduced:
                problems.append(("reduced", plan.describe(self.config.max_frame_memory)))
            entries.append(Entry(frame, job=job, problems=problems))
        return entries
