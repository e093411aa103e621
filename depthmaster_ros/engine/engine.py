"""The frame engine: the one processing path of the node, ``depthmaster-bag``, the fleet runner and the benchmark.

``engine.run(jobs)`` takes frame jobs (any streams, any sizes) and returns their products in job order:

1. **model passes** (:meth:`FrameEngine.infer`): jobs are grouped by (image size, processing_res) and run
   ``max_batch`` at a time through the model backend; a backend with static shapes (compiled) gets every pass
   padded to ``max_batch`` (copies of the last frame, results dropped), so one shape serves all passes;
2. **per-stream stages** (:meth:`FrameEngine.finish`), in job order: every stream has its own instance of each
   registered stage (the scale tracker, ...), whose state :meth:`state` / :meth:`restore` save and restore;
3. **outputs** (``render.py``): resized, coloured, metric depth, point cloud, each with a reason when missing.

The two halves can run apart (the fleet runner runs passes in model actors and stages per bag): ``infer`` then
``finish`` for each job, in order per stream. A frame over a size limit (``limits.py``) is rejected before any
model pass (``missing['relative'].why == Why.REJECTED``); one job's failure (an error in its pass or a stage)
becomes that job's products with ``Why.FAILED``; the others are served.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from .job import OUTPUTS, FrameJob, FrameProducts, Missing, Why
from .limits import frame_problem, nonfinite_problem
from .render import render
from .stage import Stage, restore_stages, stage_classes


class FrameState:
    """One frame between the model and its outputs, as the stages see it: its job, the relative map (a tensor on
    the model's device, at the input size), its camera, the scale in use and why there is none."""

    def __init__(self, job: FrameJob, relative):
        self.job = job
        self.relative = relative
        self.camera = job.camera
        self.scale = None
        self.scale_status = ""
        self.no_scale: Missing | None = None
        self.rebased = False  # a stage put the relative map in another affine frame than the stream's previous
        # frame's (the temporal stage's reset): nothing fitted on earlier frames may be smoothed into this one
        self.reports: dict[str, Any] = {}  # per stage, what it did (for diagnostics and the scale topic)
        self._numpy = (None, None)

    def relative_numpy(self) -> np.ndarray:
        """The relative map on the CPU (for fits that sample a few thousand pixels)."""
        if self._numpy[0] is not self.relative:
            value = self.relative.cpu().numpy() if hasattr(self.relative, "cpu") else np.asarray(self.relative)
            self._numpy = (self.relative, value)
        return self._numpy[1]


class StreamState:
    """One stream's stages (in processing order)."""

    def __init__(self):
        self.stages: list[Stage] = [cls() for cls in stage_classes()]

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)

    def state(self) -> dict:
        return {stage.name: stage.state() for stage in self.stages}

    def restore(self, state: dict) -> None:
        restore_stages(self.stages, state)


class FrameEngine:
    """``backend``: a model backend (``model/backends.py``). ``max_batch``: frames per model pass (None: all
    same-size jobs of one ``run`` in one pass); a static-shape backend's passes are padded to it."""

    def __init__(self, backend, max_batch: int | None = None):
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.backend = backend
        self.max_batch = max_batch
        self.streams: dict[str, StreamState] = {}
        self.passes = 0  # model passes run
        self.frames_passed = 0  # real frames they carried (padding excluded)

    # ------------------------------------------------------------------ state
    def stream(self, name: str) -> StreamState:
        if name not in self.streams:
            self.streams[name] = StreamState()
        return self.streams[name]

    def state(self) -> dict:
        """Every stream's stage state (JSON-serialisable), for a later :meth:`restore`."""
        return {name: stream.state() for name, stream in self.streams.items()}

    def restore(self, state: dict) -> None:
        for name, stream_state in state.items():
            self.stream(name).restore(stream_state)

    def reset(self, name: str | None = None) -> None:
        """Fresh stages for one stream (or all)."""
        for key in ([name] if name is not None else list(self.streams)):
            self.streams.pop(key, None)

    # ------------------------------------------------------------------ processing
    def run(self, jobs: Sequence[FrameJob]) -> list[FrameProducts]:
        relatives = self.infer(jobs)
        return [self.finish(job, relative) for job, relative in zip(jobs, relatives)]

    def infer(self, jobs: Sequence[FrameJob]) -> list:
        """The model on every job: per job, its relative map (a tensor on the backend's device) or the exception
        that failed its pass."""
        results: list = [None] * len(jobs)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for index, job in enumerate(jobs):
            problem = frame_problem(job.rgb.shape, job.config)
            if problem is not None:
                results[index] = FrameRejected(problem)
                continue
            groups[(job.rgb.shape[:2], job.config.processing_res)].append(index)
        for (_, processing_res), indices in groups.items():
            step = self.max_batch or len(indices)
            for start in range(0, len(indices), step):
                chunk = indices[start:start + step]
                images = [jobs[i].rgb for i in chunk]
                if getattr(self.backend, "static_shapes", False) and self.max_batch:
                    images += [images[-1]] * (self.max_batch - len(images))
                try:
                    maps = self.backend.infer(images, processing_res)
                except Exception as exc:  # the pass failed: each of its jobs reports it
                    for i in chunk:
                        results[i] = exc
                    continue
                self.passes += 1
                self.frames_passed += len(chunk)
                for i, relative in zip(chunk, maps):
                    results[i] = relative
        return results

    def finish(self, job: FrameJob, relative) -> FrameProducts:
        """The stream's stages and the outputs for one job whose model pass is done (``relative``: its map, or
        the exception of its pass)."""
        if isinstance(relative, BaseException):
            return failed(job, relative)
        try:
            camera = job.camera
            height, width = relative.shape
            if camera is not None and (camera.width, camera.height) != (width, height):
                raise ValueError(f"camera info is {camera.width}x{camera.height} but the image is {width}x{height}")
            fraction = nonfinite_fraction(relative)
            problem = nonfinite_problem(fraction)
            if problem is not None:
                raise NonFiniteOutput(problem)
            frame = FrameState(job, relative)
            for stage in self.stream(job.stream).stages:
                stage.process(frame)
            products = render(frame)
            products.nonfinite_fraction = fraction
            return products
        except Exception as exc:
            return failed(job, exc)


class FrameRejected(ValueError):
    """A frame the engine does not run (over a size limit, no usable size): not an error of the software."""


class NonFiniteOutput(ValueError):
    """The model's output for a frame is mostly NaN/Inf (``limits.MAX_NONFINITE_FRACTION``)."""


def nonfinite_fraction(relative) -> float:
    """The share of a relative map's pixels that are NaN or infinite (tensor or array)."""
    if hasattr(relative, "isfinite"):
        return float((~relative.isfinite()).float().mean()) if relative.numel() else 0.0
    values = np.asarray(relative)
    return float((~np.isfinite(values)).mean()) if values.size else 0.0


def failed(job: FrameJob, exc: BaseException) -> FrameProducts:
    if isinstance(exc, FrameRejected):
        reason = Missing(Why.REJECTED, str(exc))
    elif isinstance(exc, NonFiniteOutput):
        reason = Missing(Why.FAILED, str(exc))
    else:
        reason = Missing(Why.FAILED, f"{type(exc).__name__}: {exc}")
    return FrameProducts(job=job, missing={name: reason for name in OUTPUTS if name in job.outputs or
                                           name == "relative"})
