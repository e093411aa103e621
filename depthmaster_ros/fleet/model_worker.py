"""A model worker: one model backend, loaded once, running the frame engine's model passes for batches that come
from any bag. The fleet runner makes it a Ray actor (a GPU each on a GPU cluster); it is a plain class so that it
can be tested and reused without Ray."""

from __future__ import annotations

import os
import pickle

from ..engine.engine import FrameEngine
from ..engine.job import FrameJob


def model_job(job: FrameJob) -> FrameJob:
    """What a model pass needs of a job (its image, size and processing resolution), without the camera,
    measurements and context that stay with the bag."""
    return FrameJob(job.stream, job.stamp_ns, job.rgb, job.config)


class ModelWorker:
    """``values``: the parameter values of the run (checkpoint, device, dtype, backend, cpu_threads, ...);
    ``max_batch``: frames per model pass (the bag tool's ``--batch``); ``factory``: the backend as the driver
    registered it (its ``BackendEntry``, or a bare factory), so that a backend registered there with
    ``register_backend`` exists here too (an entry point's is found here by itself)."""

    def __init__(self, values: dict, max_batch: int, factory=None):
        from ..model.backends import BackendEntry, backend_from_parameters, backend_names, register_backend

        if factory is not None and values["backend"] not in backend_names():
            if isinstance(factory, BackendEntry):
                register_backend(values["backend"], factory.factory, factory.parameters, factory.description)
            else:
                register_backend(values["backend"], factory)
        self.engine = FrameEngine(backend_from_parameters(values), max_batch=max_batch)

    def infer(self, jobs: list[FrameJob]) -> list:
        """Per job, its relative map (float32 H x W numpy) or the exception that failed its pass."""
        return [_portable(result) for result in self.engine.infer(jobs)]

    def describe(self) -> str:
        return self.engine.backend.describe()

    def random_weights(self) -> bool:
        return bool(self.engine.backend.random_weights)

    def pid(self) -> int:
        return os.getpid()


def _portable(result):
    if isinstance(result, BaseException):
        try:
            pickle.dumps(result)
            return result
        except Exception:  # noqa: BLE001 - an exception that does not pickle is sent as its text
            return RuntimeError(f"{type(result).__name__}: {result}")
    return result.float().cpu().numpy()
