"""One offline run: a rosbag2 in, a rosbag2 of depth products out, through the node's own processing path.

Messages are read in log order. Camera infos, sparse depth images and LiDAR scans go into the same
:class:`~depthmaster_ros.ros.frame_inputs.FrameInputs` the node uses; each image waits until the bag has been
read a little past it (so its companions, which may be logged just after it, are there), then frames of the same
size are run through the model ``batch`` at a time and post-processed in order, and the node's output messages
are written with the image's header and log time.

Safety: everything is written under ``OUTPUT.partial/``, which becomes ``OUTPUT`` only when the run completes.
An interrupted run (Ctrl-C / SIGTERM) stops at a frame boundary, closes its bag properly and records its
progress; ``resume=True`` copies that bag and continues from the next frame, with the scale tracker's state, so
the result equals an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..processing import DepthProcessor, ProcessingConfig
from ..ros.conversions import InputError, decode_image, stamp_to_ns
from ..ros.frame_inputs import FrameInputs
from ..ros.outputs import OUTPUT_TOPICS, output_messages
from .io import BagError, ConnectionMap, message_class, msgtype_of, open_reader, open_writer
from .topics import COMPRESSED, parent

PAIRING_MARGIN_S = 0.2  # read this much (log time) past an image beyond the pairing tolerances before serving it


class Interrupted(Exception):
    """The run was asked to stop; its progress is saved for --resume."""


@dataclass
class RunState:
    """Progress of a run, saved in OUTPUT.partial/progress.json."""

    fingerprint: str = ""
    messages_done: int = 0  # input messages fully handled (copied, cached)
    frames_done: int = 0  # image messages handled (served or skipped)
    frames_served: int = 0
    skipped: dict = field(default_factory=dict)  # reason -> count
    notes: dict = field(default_factory=dict)  # frames served without metric outputs: reason -> count
    written: dict = field(default_factory=dict)  # output topic -> messages
    seconds: float = 0.0  # processing time (model + post-processing + serialisation)
    tracker: dict | None = None  # the scale tracker's state after the last frame


@dataclass
class Pending:
    index: int
    log_time: int
    raw: bytes
    compressed: bool


def _fingerprint(input_bag: Path, params: dict, topics: dict, namespace: str, copy_input: bool, storage: str) -> str:
    text = json.dumps({"input": str(input_bag.resolve()), "metadata": (input_bag / "metadata.yaml").read_text(),
                       "params": params, "topics": topics, "namespace": namespace, "copy_input": copy_input,
                       "storage": storage}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class BagRun:
    def __init__(self, pipeline, params: dict, input_bag: Path, output_bag: Path, topics: dict,
                 output_namespace: str | None = None, storage: str = "mcap", batch: int = 1,
                 copy_input: bool = True):
        if batch < 1:
            raise BagError(f"batch must be >= 1, got {batch}")
        self.params = params
        self.config = ProcessingConfig.from_parameters(params)
        self.processor = DepthProcessor(pipeline, self.config)
        self.input_bag, self.output_bag = Path(input_bag), Path(output_bag)
        self.partial = self.output_bag.with_name(self.output_bag.name + ".partial")
        self.topics = topics
        namespace = output_namespace if output_namespace is not None else parent(topics["image"])
        self.namespace = "/" + namespace.strip("/") if namespace.strip("/") else ""
        self.storage, self.batch, self.copy_input = storage, batch, copy_input
        self.output_topics = set(OUTPUT_TOPICS)
        self.stop_requested = False
        self.state = RunState(fingerprint=_fingerprint(self.input_bag, params, topics, self.namespace, copy_input,
                                                       storage))

    # ------------------------------------------------------------------ the run
    def run(self, resume: bool = False, progress=None) -> RunState:
        if self.output_bag.exists():
            raise BagError(f"output '{self.output_bag}' already exists; remove it or choose another name")
        reader = open_reader(self.input_bag)
        writer = None
        try:
            if self.partial.exists() and not resume:
                raise BagError(f"'{self.partial}' holds an interrupted run of this output: continue it with --resume, "
                               "or delete it to start over")
            out = self._open_output(resume)
            writer = out.writer
            self._process(reader, out, progress)
            writer.close()
            writer = None
            (self.partial / "next").rename(self.output_bag)
            shutil.rmtree(self.partial)
            return self.state
        except Interrupted:
            self._save_partial(writer)
            writer = None
            raise
        finally:
            if writer is not None:  # a failure: keep what is resumable, never a half bag under the output name
                self._save_partial(writer)
            reader.close()

    def _open_output(self, resume: bool) -> ConnectionMap:
        """Writer at OUTPUT.partial/next; on resume, first the messages of the saved OUTPUT.partial/bag."""
        if resume and self.partial.exists():
            progress = self.partial / "progress.json"
            if not progress.is_file() or not (self.partial / "bag" / "metadata.yaml").is_file():
                raise BagError(f"'{self.partial}' has no complete saved run to resume (the process was killed?); "
                               "delete it and start over")
            saved = RunState(**json.loads(progress.read_text()))
            if saved.fingerprint != self.state.fingerprint:
                raise BagError(f"'{self.partial}' was made from another input, parameters or options; delete it "
                               "or run with the same settings")
            self.state = saved
            if saved.tracker is not None:
                self.processor.tracker.restore(saved.tracker)
            shutil.rmtree(self.partial / "next", ignore_errors=True)
            out = ConnectionMap(open_writer(self.partial / "next", self.storage))
            previous = open_reader(self.partial / "bag")
            for connection, log_time, raw in previous.messages():
                out.write(connection.topic, connection.msgtype, log_time, raw)
            previous.close()
            return out
        self.partial.mkdir(parents=True)
        return ConnectionMap(open_writer(self.partial / "next", self.storage))

    def _save_partial(self, writer) -> None:
        writer.close()
        shutil.rmtree(self.partial / "bag", ignore_errors=True)
        (self.partial / "next").rename(self.partial / "bag")
        self.state.tracker = self.processor.tracker.state()
        (self.partial / "progress.json").write_text(json.dumps(asdict(self.state), indent=1))

    def _process(self, reader, out: ConnectionMap, progress) -> None:
        from rclpy.serialization import deserialize_message

        roles = {topic: role for role, topic in self.topics.items() if topic}
        by_topic = {c.topic: c.msgtype for c in reader.connections}
        window = int((max(self.params["camera_info_tolerance"], self.params["metric_source_tolerance"])
                      + PAIRING_MARGIN_S) * 1e9)
        inputs = FrameInputs()
        pending: list[Pending] = []
        image_index = 0
        for index, (connection, log_time, raw) in enumerate(reader.messages()):
            if self.stop_requested:
                raise Interrupted()
            new = index >= self.state.messages_done
            if self.copy_input and new:
                out.write(connection.topic, connection.msgtype, log_time, raw)
            role = roles.get(connection.topic)
            if role == "image":
                pending.append(Pending(image_index, log_time, raw, by_topic[connection.topic] == COMPRESSED))
                image_index += 1
            elif role in ("camera_info", "sparse_info"):
                rejection = inputs.add_camera_info(deserialize_message(raw, message_class(connection.msgtype)),
                                                   sparse=role == "sparse_info")
                if rejection and new:
                    self._count("skipped", f"{role} rejected: {rejection}")
            elif role == "sparse_depth":
                inputs.add_sparse_depth(deserialize_message(raw, message_class(connection.msgtype)))
            elif role == "lidar":
                inputs.add_lidar(deserialize_message(raw, message_class(connection.msgtype)))
            ready = [p for p in pending if p.log_time <= log_time - window]
            if ready:
                pending = pending[len(ready):]
                self._serve(ready, inputs, out, progress)
            if new:
                self.state.messages_done = index + 1
        self._serve(pending, inputs, out, progress)

    def _count(self, kind: str, reason: str) -> None:
        counter = getattr(self.state, kind)
        counter[reason] = counter.get(reason, 0) + 1

    def _serve(self, frames: list[Pending], inputs: FrameInputs, out: ConnectionMap, progress) -> None:
        from rclpy.serialization import deserialize_message, serialize_message

        image_class = message_class(COMPRESSED if frames and frames[0].compressed else "sensor_msgs/msg/Image")
        decoded = []
        for frame in frames:
            if frame.index < self.state.frames_done:
                continue
            msg = deserialize_message(frame.raw, image_class)
            try:
                decoded.append((frame, msg, decode_image(msg, frame.compressed)))
            except InputError as exc:
                self._count("skipped", f"image rejected: {exc}")
                self.state.frames_done = frame.index + 1
                if progress is not None:
                    progress.update(1)
        start = 0
        while start < len(decoded):
            if self.stop_requested:
                raise Interrupted()
            shape = decoded[start][2].shape
            end = start + 1
            while end < len(decoded) and end - start < self.batch and decoded[end][2].shape == shape:
                end += 1
            batch = decoded[start:end]
            began = time.perf_counter()
            relatives = self.processor.infer([rgb for _, _, rgb in batch], self.config)
            for (frame, msg, rgb), relative in zip(batch, relatives):
                self._write_frame(frame, msg, rgb, relative, inputs, out, serialize_message)
            self.state.seconds += time.perf_counter() - began
            if progress is not None:
                progress.update(len(batch))
            start = end

    def _write_frame(self, frame, msg, rgb, relative, inputs, out, serialize_message) -> None:
        stamp_ns = stamp_to_ns(msg.header.stamp)
        camera, camera_note, rejection = inputs.camera_for(stamp_ns, rgb.shape, self.params["camera_info_tolerance"])
        if rejection:
            self._count("skipped", f"camera_info rejected: {rejection}")
        hints, rejection = inputs.hints_for(self.config.scale_mode, stamp_ns, self.params["metric_source_tolerance"])
        if rejection:
            self._count("skipped", f"metric source rejected: {rejection}")
        products = self.processor.postprocess(rgb, relative, camera, config=self.config, hints=hints,
                                              stamp=stamp_ns / 1e9)
        if camera is None and self.config.scale_mode != "none":
            self._count("notes", f"no metric outputs: {camera_note or 'no camera info'}")
        elif products.notes and self.config.scale_mode != "none":
            self._count("notes", f"no metric outputs: {products.notes[0]}")
        for topic, message in output_messages(products, msg.header, self.output_topics, stamp_ns):
            name = f"{self.namespace}/{topic}"
            out.write(name, msgtype_of(message), frame.log_time, serialize_message(message))
            self.state.written[name] = self.state.written.get(name, 0) + 1
        self.state.frames_done = frame.index + 1
        self.state.frames_served += 1
