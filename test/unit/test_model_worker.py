"""fleet/model_worker.py without Ray: the class the fleet runner makes a Ray actor is a plain class, created here
in this process with a test double of the model registered the way the driver registers it (its factory)."""

import os
import threading

import numpy as np
import pytest
import torch

from fake_backend import FakeBackend
from depthmaster_ros.engine.job import FrameJob
from depthmaster_ros.processing_config import ProcessingConfig
from depthmaster_ros.fleet.model_worker import ModelWorker, model_job
from depthmaster_ros.model.backends import backend_names, unregister_backend
from depthmaster_ros.parameters import defaults

NAME = "worker_test_double"


@pytest.fixture
def threads():
    """The worker sets torch's CPU threads (its cpu_threads value): put back what the test process had."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fake():
    fake = FakeBackend()
    yield fake
    unregister_backend(NAME)


def values(**changes):
    return {**defaults(), "checkpoint": "unused", "backend": NAME, "cpu_threads": 1, **changes}


def job(rgb, stream="cam", stamp_ns=5, **config):
    return FrameJob(stream, stamp_ns, rgb, ProcessingConfig(**config), camera="intrinsics", camera_missing="",
                    measurements={"sparse_depth": np.ones((2, 2))}, measurement_notes={"lidar_points": "none"},
                    outputs={"relative", "depth"}, context={"header": 1})


def test_model_job_keeps_what_a_model_pass_needs():
    rgb = np.zeros((4, 6, 3), np.uint8)
    original = job(rgb, processing_res=64)
    stripped = model_job(original)
    assert (stripped.stream, stripped.stamp_ns, stripped.config) == ("cam", 5, original.config)
    assert stripped.rgb is rgb
    assert stripped.camera is None and stripped.measurements == {} and stripped.measurement_notes == {}
    assert stripped.context is None


def test_the_worker_registers_the_drivers_factory_and_returns_numpy_maps(fake, threads):
    """A backend registered in the driver only is registered here from its factory; the worker loads it once,
    batches the jobs (max_batch) and returns each job's map as float32 numpy, in job order."""
    created = []

    def factory(config):
        created.append(config)
        return fake

    assert NAME not in backend_names()
    worker = ModelWorker(values(cpu_threads=1), max_batch=2, factory=factory)
    assert NAME in backend_names() and len(created) == 1 and created[0].backend == NAME
    assert torch.get_num_threads() == 1
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (4, 6, 3), dtype=np.uint8) for _ in range(3)]
    maps = [rng.random((4, 6), dtype=np.float32) for _ in range(3)]
    for image, relative in zip(images, maps):
        fake.register(image, relative)
    results = worker.infer([model_job(job(image, stamp_ns=i)) for i, image in enumerate(images)])
    assert fake.batch_sizes == [2, 1]
    for result, relative in zip(results, maps):
        assert isinstance(result, np.ndarray) and result.dtype == np.float32 and np.array_equal(result, relative)
    assert worker.describe() == "fake DepthMaster (test double)" and worker.random_weights() is False
    assert worker.pid() == os.getpid()


def test_failures_come_back_as_picklable_exceptions_per_job(fake, threads):
    """A frame over a size limit is rejected before the pass; a failed pass fails its jobs only; an exception
    that cannot be pickled (it holds a lock) comes back as a RuntimeError with its text."""
    worker = ModelWorker(values(), max_batch=1, factory=lambda config: fake)
    good = np.full((4, 6, 3), 7, np.uint8)
    fake.register(good, np.full((4, 6), 0.25, np.float32))
    unknown = np.full((4, 6, 3), 9, np.uint8)  # not registered: the double raises KeyError
    big = np.zeros((128, 128, 3), np.uint8)  # over the smallest max_image_pixels the table accepts (4096)
    results = worker.infer([model_job(job(good)), model_job(job(unknown)),
                            model_job(job(big, max_image_pixels=4096))])
    assert np.array_equal(results[0], np.full((4, 6), 0.25, np.float32))
    assert isinstance(results[1], KeyError)
    assert isinstance(results[2], ValueError) and "max_image_pixels" in str(results[2])

    class Unpicklable(Exception):
        def __init__(self):
            super().__init__("the GPU fell over")
            self.lock = threading.Lock()

    def broken(images, processing_res=None):
        raise Unpicklable()

    fake.infer = broken
    [result] = worker.infer([model_job(job(good))])
    assert type(result) is RuntimeError and str(result) == "Unpicklable: the GPU fell over"


def test_a_backend_already_registered_is_used_as_it_is(fake, threads):
    from depthmaster_ros.model.backends import register_backend

    register_backend(NAME, lambda config: fake)
    ModelWorker(values(), max_batch=1, factory=lambda config: pytest.fail("the factory must not replace it"))


def test_the_drivers_registration_brings_the_backends_parameters(fake, threads):
    """The fleet sends the driver's whole registration (BackendEntry): a backend's own parameters exist in the
    worker too, and their values reach its factory."""
    from depthmaster_ros.model.backends import BackendEntry, backend_parameters
    from depthmaster_ros.parameter_spec import ParameterSpec

    seen = []

    def factory(config):
        seen.append(dict(config.options))
        return fake

    gain = ParameterSpec("worker_double_gain", 1.0, "a test double's parameter", model=True)
    entry = BackendEntry(NAME, factory, (gain,), "worker_test_double (a test double)")
    ModelWorker(values(worker_double_gain=2.5), max_batch=1, factory=entry)
    assert backend_parameters(NAME) == (gain,) and seen == [{"worker_double_gain": 2.5}]
