"""CUDA checks of the fast path (skipped without a GPU; scripts/gpu_benchmark.py runs them on the device)."""

import numpy as np
import pytest
import torch

from depthmaster_ros.processing_config import ProcessingConfig
from depthmaster_ros.engine.engine import FrameEngine
from depthmaster_ros.engine.job import FrameJob
from depthmaster_ros.model.architectures import random_pipeline
from depthmaster_ros.model.backends import PipelineBackend
from depthmaster_ros.samples.sample_scene import PinholeCamera, render

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def image():
    return render(PinholeCamera.with_size(128, 96))[0]


@pytest.fixture(scope="module")
def reference(image):
    return random_pipeline("tiny", device="cuda", dtype="fp32", seed=7)(image, processing_res=0)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_half_precision_keeps_fe_in_fp32_and_close(image, reference, dtype):
    pipe = random_pipeline("tiny", device="cuda", dtype=dtype, seed=7)
    assert all(p.dtype == torch.float32 for p in pipe.unet.fftblock.parameters())
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last) is False  # not yet
    pipe.accelerate()
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    out = pipe(image, processing_res=0)
    assert np.isfinite(out).all() and np.abs(out - reference).mean() < 0.02


def test_compiled_with_cuda_graphs_matches_eager(image):
    eager = random_pipeline("tiny", device="cuda", dtype="bf16", seed=7)
    fast = random_pipeline("tiny", device="cuda", dtype="bf16", seed=7)
    fast.accelerate(cuda_graphs=True)
    fast.warmup(96, 128, processing_res=0)
    first, second = fast(image, processing_res=0), fast(image, processing_res=0)
    assert np.array_equal(first, second)  # graph replays are deterministic and not overwritten
    assert np.abs(first - eager(image, processing_res=0)).max() < 2e-2


def test_postprocessing_stays_on_the_gpu(image):
    engine = FrameEngine(PipelineBackend(random_pipeline("tiny", device="cuda", dtype="bf16", seed=7)))
    from depthmaster_ros.geometry.intrinsics import CameraIntrinsics

    camera = CameraIntrinsics.from_K(128, 96, PinholeCamera.with_size(128, 96).K)
    job = FrameJob("", 0, image, ProcessingConfig(processing_res=0, scale_mode="fixed", scale=0.5, shift=0.1),
                   camera=camera)
    relative = engine.infer([job])[0]
    assert relative.is_cuda
    products = engine.finish(job, relative)
    cpu = engine.finish(job, relative.cpu())
    assert np.array_equal(np.isfinite(products.depth), np.isfinite(cpu.depth))
    finite = np.isfinite(cpu.depth)
    assert np.allclose(products.depth[finite], cpu.depth[finite], rtol=1e-5)
    assert np.array_equal(products.colored, cpu.colored)
