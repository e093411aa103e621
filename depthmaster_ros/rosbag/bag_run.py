"""One offline run: a rosbag2 in, a rosbag2 of depth products out, through the frame engine the node uses.

Messages are read in log order. Camera infos and the scale sources' measurements (sparse depth images, LiDAR
scans, ...) go into the same :class:`~depthmaster_ros.messages.pairing.FramePairing` the node uses; each image
waits until the bag has been read a little past it (so its companions, which may be logged just after it, are
there), becomes a frame job, and jobs go to the engine ``batch`` at a time; the node's output messages are
written with the image's header and log time.

Safety: everything is written under ``OUTPUT.partial/``, which becomes ``OUTPUT`` only when the run completes.
An interrupted run (Ctrl-C / SIGTERM) stops at a batch boundary, closes its bag properly and records its
progress; ``resume=True`` copies that bag and continues from the next frame, with the engine's stage state (the
scale tracker), so the result equals an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..engine.config import ProcessingConfig
from ..engine.engine import FrameEngine
from ..messages.conversions import InputError, decode_image, stamp_to_ns
from ..messages.outputs import output_messages
from ..messages.pairing import FramePairing
from ..messages.topics import COMPRESSED_IMAGE, IMAGE, OUTPUT_TOPICS, needed_outputs
from .io import BagError, ConnectionMap, message_class, msgtype_of, open_reader, open_writer
from .topics import parent

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
    engine: dict | None = None  # the engine's stage state (scale tracker, ...) after the last frame


@dataclass
class Pending:
    index: int
    log_time: int
    raw: bytes
    compressed: bool


@dataclass
class Entry:
    """A frame waiting for its batch: its job, or why it was skipped; the problems met pairing it."""

    frame: Pending
    job: object = None
    skipped: str = ""
    problems: list = field(default_factory=list)


def _fingerprint(input_bag: Path, params: dict, topics: dict, namespace: str, copy_input: bool, storage: str) -> str:
    text = json.dumps({"input": str(input_bag.resolve()), "metadata": (input_bag / "metadata.yaml").read_text(),
                       "params": params, "topics": topics, "namespace": namespace, "copy_input": copy_input,
                       "storage": storage}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class BagRun:
    def __init__(self, backend, params: dict, input_bag: Path, output_bag: Path, topics: dict,
                 output_namespace: str | None = None, storage: str = "mcap", batch: int = 1,
                 copy_input: bool = True):
        if batch < 1:
            raise BagError(f"batch must be >= 1, got {batch}")
        self.params = params
        self.config = ProcessingConfig.from_parameters(params)
        self.engine = FrameEngine(backend, max_batch=batch)
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
            if saved.engine is not None:
                self.engine.restore(saved.engine)
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
        self.state.engine = self.engine.state()
        (self.partial / "progress.json").write_text(json.dumps(asdict(self.state), indent=1))

    def _process(self, reader, out: ConnectionMap, progress) -> None:
        from rclpy.serialization import deserialize_message

        roles = {topic: role for role, topic in self.topics.items() if topic}
        by_topic = {c.topic: c.msgtype for c in reader.connections}
        window = int((max(self.params["camera_info_tolerance"], self.params["metric_source_tolerance"])
                      + PAIRING_MARGIN_S) * 1e9)
        pairing = FramePairing()
        pending: list[Pending] = []
        queue: list[Entry] = []
        image_index = 0
        for index, (connection, log_time, raw) in enumerate(reader.messages()):
            if self.stop_requested:
                raise Interrupted()
            new = index >= self.state.messages_done
            if self.copy_input and new:
                out.write(connection.topic, connection.msgtype, log_time, raw)
            role = roles.get(connection.topic)
            if role == "image":
                pending.append(Pending(image_index, log_time, raw, by_topic[connection.topic] == COMPRESSED_IMAGE))
                image_index += 1
            elif role is not None:
                msg = deserialize_message(raw, message_class(connection.msgtype))
                rejection = pairing.add_camera_info(msg) if role == "camera_info" else pairing.add(role, msg)
                if rejection and new:
                    self._count("skipped", f"{role} rejected: {rejection}")
            ready = [p for p in pending if p.log_time <= log_time - window]
            if ready:
                pending = pending[len(ready):]
                queue += self._entries(ready, pairing)
                queue = self._flush(queue, out, progress)
            if new:
                self.state.messages_done = index + 1
        queue += self._entries(pending, pairing)
        self._flush(queue, out, progress, final=True)

    def _count(self, kind: str, reason: str) -> None:
        counter = getattr(self.state, kind)
        counter[reason] = counter.get(reason, 0) + 1

    def _entries(self, frames: list[Pending], pairing: FramePairing) -> list[Entry]:
        """Decode and pair the frames not done yet (pairing happens now, while their companions are cached)."""
        from rclpy.serialization import deserialize_message

        entries = []
        for frame in frames:
            if frame.index < self.state.frames_done:
                continue
            msg = deserialize_message(frame.raw, message_class(COMPRESSED_IMAGE if frame.compressed else IMAGE))
            try:
                rgb = decode_image(msg, frame.compressed, self.config.max_image_pixels)
            except InputError as exc:
                entries.append(Entry(frame, skipped=f"image rejected: {exc}"))
                continue
            job, problems = pairing.job("", stamp_to_ns(msg.header.stamp), rgb, self.config,
                                        needed_outputs(self.output_topics), context=(frame, msg.header))
            entries.append(Entry(frame, job=job, problems=problems))
        return entries

    def _flush(self, queue: list[Entry], out: ConnectionMap, progress, final: bool = False) -> list[Entry]:
        """Run the queued jobs through the engine ``batch`` at a time and write them, in frame order; returns what
        is left for the next batch (nothing when ``final``)."""
        from rclpy.serialization import serialize_message

        while queue:
            positions = [i for i, entry in enumerate(queue) if entry.job is not None]
            if len(positions) < self.batch and not final:
                break
            if self.stop_requested:
                raise Interrupted()
            count = positions[self.batch - 1] + 1 if len(positions) >= self.batch else len(queue)
            batch, queue = queue[:count], queue[count:]
            began = time.perf_counter()
            results = iter(self.engine.run([entry.job for entry in batch if entry.job is not None]))
            for entry in batch:
                if entry.job is None:
                    self._count("skipped", entry.skipped)
                else:
                    self._write(entry, next(results), out, serialize_message)
                self.state.frames_done = entry.frame.index + 1
            self.state.seconds += time.perf_counter() - began
            if progress is not None:
                progress.update(len(batch))
        return queue

    def _write(self, entry: Entry, products, out: ConnectionMap, serialize_message) -> None:
        for kind, reason in entry.problems:
            self._count("skipped", f"{'camera_info' if kind == 'camera_info' else 'metric source'} rejected: "
                                   f"{reason}")
        if products.failed is not None:
            kind = "image rejected" if products.rejected else "frame failed"
            self._count("skipped", f"{kind}: {products.failed.detail}")
            return
        frame, header = products.context
        missing = products.metric_missing()
        if missing is not None and self.config.scale_mode != "none":
            self._count("notes", f"no metric outputs: {missing.detail}")
        for topic, message in output_messages(products, header, self.output_topics, products.stamp_ns):
            name = f"{self.namespace}/{topic}"
            out.write(name, msgtype_of(message), frame.log_time, serialize_message(message))
            self.state.written[name] = self.state.written.get(name, 0) + 1
        self.state.frames_served += 1
