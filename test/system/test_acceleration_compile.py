"""torch.compile keeps the model's output (CPU checks; the GPU numbers come from depthmaster-bench)."""

import numpy as np
import pytest
import torch

from depthmaster_ros.model import acceleration
from depthmaster_ros.model.architectures import random_pipeline


@pytest.fixture(scope="module")
def reference_and_image():
    pipe = random_pipeline("tiny", device="cpu", seed=3)
    image = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    return pipe(image, processing_res=64), image


def test_compiled_decoder_keeps_the_output(reference_and_image):
    """One real torch.compile on the CPU (the slowest test of the suite: about half a minute)."""
    reference, image = reference_and_image
    pipe = random_pipeline("tiny", device="cpu", seed=3)
    pipe.decode = torch.compile(pipe.decode, dynamic=False)
    assert np.abs(pipe(image, processing_res=64) - reference).max() < 1e-5


def test_compile_stages_wiring(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: calls.append((fn.__name__, kwargs)) or fn)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    pipe = random_pipeline("tiny", device="cpu")
    pipe.accelerate(compile=True)
    assert [name for name, _ in calls] == ["encode", "predict_latent", "decode"]
    assert all(kw == {"mode": "default", "dynamic": False, "fullgraph": False} for _, kw in calls)
    assert pipe.compiled and "compiled" in pipe.describe()
    assert acceleration.inductor_cache_dir() == tmp_path / "depthmaster_ros" / "inductor"
    with pytest.raises(ValueError, match="cuda_graphs needs a CUDA device"):
        pipe.accelerate(cuda_graphs=True)


