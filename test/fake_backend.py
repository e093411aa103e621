"""A test double of the model backend: returns a known relative map for each registered image, so metric results
can be compared with an exact ground truth (the model itself is tested elsewhere). Injected through the backend
factory (``backend: test_double``), not monkeypatched."""

import hashlib
import threading
from contextlib import contextmanager

import numpy as np
import torch

from depthmaster_ros.model.backends import register_backend, unregister_backend
from depthmaster_ros.samples.sample_scene import PinholeCamera, render

A, B = 1.3, 0.05  # the "unknown" affine map of the simulated model: p = A sqrt(1/d) + B
NAME = "test_double"


def simulate(depth):
    y = np.where(np.isfinite(depth), np.sqrt(1.0 / depth), 0.0)
    return np.clip(A * y + B, 0.0, 1.0).astype(np.float32)


class FakeBackend:
    name = NAME
    device = torch.device("cpu")
    dtype = torch.float32
    random_weights = False

    def __init__(self, gate: threading.Event | None = None):
        """``gate``: every model pass waits until it is set (a pass exactly as long as the test wants);
        ``in_pass`` is set while one waits."""
        self.maps = {}
        self.batch_sizes = []  # of every infer() call
        self.static_shapes = False
        self.gate = gate
        self.in_pass = threading.Event() if gate is not None else None  # (a plain fake stays picklable: Ray)

    @staticmethod
    def _key(image):
        return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()

    def register(self, rgb, relative):
        self.maps[self._key(rgb)] = relative

    def frame(self, pinhole: PinholeCamera, t: float, **render_args):
        """Render a scene frame, register its simulated prediction; returns (rgb, true depth, prediction)."""
        rgb, depth = render(pinhole, t=t, **render_args)
        relative = simulate(depth)
        self.register(rgb, relative)
        return rgb, depth, relative

    def infer(self, images, processing_res=None):
        self.batch_sizes.append(len(images))
        if self.gate is not None:
            self.in_pass.set()
            try:
                self.gate.wait()
            finally:
                self.in_pass.clear()
        return [torch.from_numpy(self.maps[self._key(image)]) for image in images]

    def warmup(self, width, height, batch=1, processing_res=None):
        pass

    def describe(self):
        return "fake DepthMaster (test double)"


@contextmanager
def injected(fake: FakeBackend, loading: threading.Event | None = None):
    """``backend: test_double`` creates ``fake`` while the context lasts; with ``loading``, creating it (the
    model's load at configure) waits until that event is set."""
    def create(config):
        if loading is not None:
            loading.wait()
        return fake

    register_backend(NAME, create)
    try:
        yield fake
    finally:
        unregister_backend(NAME)


@contextmanager
def node_with_fake_model(namespace, overrides, fake: FakeBackend | None = None,
                         loading: threading.Event | None = None, autostart: bool = True):
    """A DepthMasterNode in this process (spun on a thread, with the executor the node process uses) whose backend
    is ``fake`` (default: a fresh FakeBackend), kept as ``node.fake``; configured and activated unless not
    ``autostart``. ``loading``: configure's model load waits for it (see :func:`injected`)."""
    from rclpy.parameter import Parameter

    from depthmaster_ros.ros.node import DepthMasterNode, node_executor

    fake = fake if fake is not None else FakeBackend()
    with injected(fake, loading):
        overrides = [Parameter("checkpoint", value="test-double"), Parameter("backend", value=NAME),
                     Parameter("autostart", value=False), *overrides]
        node = DepthMasterNode(namespace=namespace, parameter_overrides=overrides)
        executor = node_executor(node)
        thread = threading.Thread(target=executor.spin, daemon=True)
        try:
            if autostart:
                assert node.autostart()
            thread.start()
            node.fake = fake
            yield node
        finally:
            if fake.gate is not None:
                fake.gate.set()  # a pass still waiting ends, so the node can stop
            if loading is not None:
                loading.set()
            executor.shutdown()
            if thread.is_alive():
                thread.join(10)
            node.stop()
            node.destroy_node()
