"""Shared test set-up: offline hub, local-only ROS discovery, temp dirs, and one tiny checkpoint per session."""

import os
import tempfile

# Before anything imports huggingface_hub or rclpy.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="depthmaster-roslog-"))
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="depthmaster-cache-")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny random checkpoint in the official layout (.bin U-Net, transformers-4 text encoder keys)."""
    from depthmaster_ros.samples.tiny_checkpoint import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="session")
def pipeline(tiny_checkpoint):
    from depthmaster_ros.model import DepthMasterPipeline

    return DepthMasterPipeline.from_pretrained(tiny_checkpoint, device="cpu")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def ros():
    """rclpy initialised once for the test process."""
    import rclpy

    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture(scope="session")
def onnx_backend(tiny_checkpoint, tmp_path_factory):
    """The onnxruntime backend of the tiny checkpoint on the CPU (fp32), its exports in a session folder."""
    from depthmaster_ros.model.backends import ModelConfig, create_backend

    cache = tmp_path_factory.mktemp("onnx_cache")
    return create_backend(ModelConfig(checkpoint=str(tiny_checkpoint), device="cpu", dtype="fp32",
                                      backend="onnxruntime", options={"onnx_cache": str(cache)}))
