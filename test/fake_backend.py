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

    def __init__(self):
        self.maps = {}
        self.batch_sizes = []  # of every infer() call
        self.static_shapes = False

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
        return [torch.from_numpy(self.maps[self._key(image)]) for image in images]

    def warmup(self, width, height, batch=1, processing_res=None):
        pass

    def describe(self):
        return "fake DepthMaster (test double)"


@contextmanager
def injected(fake: FakeBackend):
    """``backend: test_double`` creates ``fake`` while the context lasts."""
    register_backend(NAME, lambda config: fake)
    try:
        yield fake
    finally:
        unregister_backend(NAME)


@contextmanager
def node_with_fake_model(namespace, overrides):
    """A DepthMasterNode in this process (spun on a thread) whose backend is a fresh FakeBackend, kept as
    ``node.fake``; configured and activated."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from depthmaster_ros.ros.node import DepthMasterNode

    fake = FakeBackend()
    with injected(fake):
        overrides = [Parameter("checkpoint", value="test-double"), Parameter("backend", value=NAME),
                     Parameter("autostart", value=False), *overrides]
        node = DepthMasterNode(namespace=namespace, parameter_overrides=overrides)
        executor = SingleThreadedExecutor()
        thread = threading.Thread(target=executor.spin, daemon=True)
        try:
            assert node.autostart()
            executor.add_node(node)
            thread.start()
            node.fake = fake
            yield node
        finally:
            executor.shutdown()
            if thread.is_alive():
                thread.join(10)
            node.stop()
            node.destroy_node()
