"""A test double for DepthMasterPipeline: returns a known relative map for each registered image, so metric
results can be compared with an exact ground truth (the model itself is tested elsewhere)."""

import hashlib
import threading
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from depthmaster_ros.sample_scene import PinholeCamera, render

A, B = 1.3, 0.05  # the "unknown" affine map of the simulated model: p = A sqrt(1/d) + B


def simulate(depth):
    y = np.where(np.isfinite(depth), np.sqrt(1.0 / depth), 0.0)
    return np.clip(A * y + B, 0.0, 1.0).astype(np.float32)


class FakePipeline:
    device = torch.device("cpu")
    dtype = torch.float32
    random_weights = False
    compiled = False
    default_processing_resolution = 768

    def __init__(self):
        self.maps = {}
        self.batch_sizes = []  # of every predict() call

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

    def __call__(self, images, processing_res=None, batch_size=1):
        single = isinstance(images, np.ndarray)
        out = [self.maps[self._key(image)] for image in ([images] if single else images)]
        return out[0] if single else out

    def predict(self, rgb, processing_res=None):
        """The pipeline's tensor API: [B, 3, H, W] uint8 values -> [B, H, W] float32."""
        images = rgb.permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()
        self.batch_sizes.append(len(images))
        return torch.from_numpy(np.stack([self.maps[self._key(image)] for image in images]))

    def describe(self):
        return "fake DepthMaster (test double)"


@contextmanager
def node_with_fake_model(namespace, overrides):
    """A DepthMasterNode in this process (spun on a thread) whose model is a fresh FakePipeline, kept as
    ``node.fake``; configured and activated."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from depthmaster_ros.model import DepthMasterPipeline
    from depthmaster_ros.ros.node import DepthMasterNode

    fake = FakePipeline()
    patch = pytest.MonkeyPatch()
    patch.setattr(DepthMasterPipeline, "from_pretrained", classmethod(lambda cls, *args, **kwargs: fake))
    overrides = [Parameter("checkpoint", value="test-double"), Parameter("autostart", value=False), *overrides]
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
        node._stop_serving()
        node._release()
        node.destroy_node()
        patch.undo()
