"""One offline run: a rosbag2 in, a rosbag2 of depth products out, through the frame engine the node uses. The
one frame loop of depthmaster-bag and of the fleet runner (which runs it per bag, with its model passes in model
actors).

The bag's frames come paired as engine jobs (:mod:`bag_frames`) and go to the model ``batch`` at a time
(:mod:`inference`: here, or remote with up to ``in_flight`` batches outstanding); the per-stream stages run in
this process in frame order and the node's output messages are written with each image's header and log time
(:mod:`frame_writer`), plus a copy of the input. Whatever the model's latency, messages are written in one
order: the input copy and each batch's outputs where a one-batch-at-a-time run writes them, so every runner
writes the same bytes.

Safety (:mod:`partial_output`): one run per output (``OUTPUT.lock``, :mod:`output_lock`); everything is written
under ``OUTPUT.partial/``, which becomes ``OUTPUT`` only when the run completes. The output is split into files every ``split_frames`` frames, and each split is a
checkpoint (run state, the scale tracker's included, flushed to disk). Ctrl-C / SIGTERM stops at a batch
boundary and saves everything done; after a hard crash (SIGKILL, power loss, a full disk) the run continues
from the last checkpoint. Either way ``resume=True`` gives the same bag, byte for byte, as an uninterrupted run.
"""

from __future__ import annotations

import shutil
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..processing_config import ProcessingConfig
from ..engine.engine import FrameEngine
from ..messages.topics import OUTPUT_TOPICS, needed_outputs
from .bag_frames import BagFrames, Entry
from .frame_writer import FrameWriter
from .inference import LocalInference
from .io import BagError, open_reader, open_writer
from .output_lock import OutputLock
from .partial_output import SPLIT_FRAMES, CannotResume, PartialOutput, unfinished_run
from .run_state import RunState, fingerprint
from .topics import parent

class Interrupted(Exception):
    """The run was asked to stop; its progress is saved for --resume."""


@dataclass
class Copy:
    """An input message to copy into the output."""

    topic: str
    msgtype: str
    log_time: int
    raw: bytes


@dataclass
class Batch:
    """Frames submitted together (with the skipped ones among them), waiting for their relative maps."""

    entries: list[Entry]
    handle: object


class BagRun:
    """``backend``: the model backend (None with ``inference``, which then runs the model passes). ``log``: takes
    the lines a user should read (starting over, resuming). ``lock``: the output's lock when the caller took it
    already (:class:`~depthmaster_ros.rosbag.output_lock.OutputLock`); else :meth:`run` takes it."""

    def __init__(self, backend, params: dict, input_bag: Path, output_bag: Path, topics: dict,
                 output_namespace: str | None = None, storage: str = "mcap", batch: int = 1,
                 copy_input: bool = True, split_frames: int = SPLIT_FRAMES, salvage: bool = False,
                 inference=None, in_flight: int = 1, writer_factory=open_writer, log=lambda line: None,
                 lock=None):
        if batch < 1:
            raise BagError(f"batch must be >= 1, got {batch}")
        if split_frames < 1:
            raise BagError(f"split_frames must be >= 1, got {split_frames}")
        self.params = params
        self.config = ProcessingConfig.from_parameters(params)
        self.engine = FrameEngine(backend, max_batch=batch)
        self.inference = inference or LocalInference(self.engine)
        self.input_bag, self.output_bag = Path(input_bag), Path(output_bag)
        self.partial = PartialOutput(self.output_bag, storage, writer_factory)
        self.topics = topics
        namespace = output_namespace if output_namespace is not None else parent(topics["image"])
        self.namespace = "/" + namespace.strip("/") if namespace.strip("/") else ""
        self.batch, self.copy_input, self.split_frames, self.salvage = batch, copy_input, split_frames, salvage
        self.in_flight = in_flight
        self.output_topics = set(OUTPUT_TOPICS)
        self.writer = FrameWriter(self.namespace, self.output_topics, self.config.scale_mode)
        self.log = log
        self.stop_requested = False
        self.lock = lock
        self.salvage_report = None  # what a salvaged input lost
        self.resumed_frames = 0  # frames done when this run started (a resumed run)
        self.state = RunState(fingerprint=fingerprint(self.input_bag, params=params, topics=topics,
                                                      namespace=self.namespace, copy_input=copy_input,
                                                      storage=storage, batch=batch, split_frames=split_frames))

    @property
    def saved_frames(self) -> int:
        """Frames done at the last checkpoint: what a resumed run keeps."""
        return self.partial.saved_frames

    # ------------------------------------------------------------------ the run
    def run(self, resume: bool | str = False, progress=None) -> RunState:
        """``resume``: continue a saved run of this output (``"auto"``: if there is one, silently starting
        otherwise); ``progress``: gets ``update(frames)`` as frames are done."""
        if self.lock is not None:
            return self._run(resume, progress)
        with OutputLock(self.output_bag):
            return self._run(resume, progress)

    def _run(self, resume, progress) -> RunState:
        if self.output_bag.exists():
            raise BagError(f"output '{self.output_bag}' already exists; remove it or choose another name")
        reader = open_reader(self.input_bag, salvage=self.salvage)
        self.salvage_report = getattr(reader, "report", None)
        try:
            complete = self._start(resume)
            if not complete:
                self._process(reader, progress)
            self.state.engine = self.engine.state()
            self.partial.finish(self.state.as_dict(), self.state.summary())
            return self.state
        except Interrupted:
            raise
        except BaseException:  # a failure (a full disk, ...): the last checkpoint stays, resumable
            self.partial.abandon()
            raise
        finally:
            reader.close()

    def _start(self, resume: bool) -> bool:
        """Fresh, or the saved run continued; whether the saved run had processed everything already."""
        folder = self.partial.folder
        if folder.exists():
            if not resume:
                raise BagError(unfinished_run(self.output_bag))
            try:
                saved, complete = self.partial.load(self.state.fingerprint)
                self.state = RunState.from_dict(saved)
            except (CannotResume, ValueError, TypeError, KeyError) as exc:
                self.log(f"cannot resume {folder}: {exc}; starting over")
                shutil.rmtree(folder)
            else:
                if self.state.engine is not None:
                    self.engine.restore(self.state.engine)
                self.resumed_frames = self.state.frames_done
                if self.state.frames_done or complete:
                    self.log(f"resuming {folder}: {self.state.frames_done} frames were saved at its last checkpoint")
                else:
                    self.log(f"resuming {folder}: no frame was saved before it stopped, so this starts over")
                return complete
        elif resume is True:
            self.log(f"no {folder} to resume: starting")
        self.partial.start(self.state.as_dict())
        return False

    def _process(self, reader, progress) -> None:
        frames = BagFrames(reader, self.topics, self.params, self.config, needed_outputs(self.output_topics))
        if progress is not None and self.state.frames_done:
            progress.update(self.state.frames_done)
        self._queue: deque = deque()
        self._batches = 0  # in the queue
        self._grouped = self.state.frames_done  # frames submitted (or skipped) in a batch
        waiting: list[Entry] = []
        for step in frames.steps(first_frame=self.state.frames_done):
            if self.stop_requested:
                self._stop(progress)
            new = step.index is not None and step.index >= self.state.messages_done
            if new:
                if self.copy_input:
                    self._queue.append(Copy(step.connection.topic, step.connection.msgtype, step.log_time,
                                            step.raw))
                for reason in step.rejected:
                    self.state.count("skipped", reason)
            waiting = self._submit(waiting + step.ready, final=step.index is None)
            if new:
                self.state.messages_done = step.index + 1
            self._write(progress, drain=False)
            if self._grouped - self.state.frames_at_split >= self.split_frames:
                self._write(progress, drain=True)
                self._checkpoint(split=True)
        self._write(progress, drain=True)

    def _submit(self, waiting: list[Entry], final: bool) -> list[Entry]:
        """Send the waiting frames to the model ``batch`` jobs at a time (skipped frames ride along, to be counted
        in order); returns those left for the next batch (none when ``final``)."""
        while waiting:
            positions = [i for i, entry in enumerate(waiting) if entry.job is not None]
            if len(positions) < self.batch and not final:
                break
            count = positions[self.batch - 1] + 1 if len(positions) >= self.batch else len(waiting)
            entries, waiting = waiting[:count], waiting[count:]
            jobs = [entry.job for entry in entries if entry.job is not None]
            began = time.perf_counter()
            self._queue.append(Batch(entries, self.inference.submit(jobs) if jobs else None))
            self.state.seconds += time.perf_counter() - began
            self._batches += 1
            self._grouped = entries[-1].frame.index + 1
        return waiting

    def _write(self, progress, drain: bool) -> None:
        """Write the queue's head: input copies at once, a batch once its maps are back: at once when they are
        (here), else when more than ``in_flight`` batches are out or when ``drain``."""
        while self._queue:
            item = self._queue[0]
            if isinstance(item, Copy):
                self.partial.write(item.topic, item.msgtype, item.log_time, item.raw)
                self._queue.popleft()
                continue
            if not drain and self._batches <= self.in_flight and not self.inference.done_at_once:
                return
            self._queue.popleft()
            self._batches -= 1
            began = time.perf_counter()
            results = iter(self.inference.result(item.handle) if item.handle is not None else ())
            for entry in item.entries:
                if entry.job is None:
                    self.writer.skip(entry, self.state)
                else:
                    self.writer.write(entry, self.engine.finish(entry.job, next(results)), self.partial,
                                      self.state)
                self.state.frames_done = entry.frame.index + 1
            self.state.seconds += time.perf_counter() - began
            if progress is not None:
                progress.update(len(item.entries))

    def _checkpoint(self, split: bool) -> None:
        self.state.engine = self.engine.state()
        if split:
            self.state.frames_at_split = self.state.frames_done
        self.partial.checkpoint(self.state.as_dict(), split)

    def _stop(self, progress) -> None:
        self._write(progress, drain=True)
        self._checkpoint(split=False)
        raise Interrupted()
