"""The onnxruntime backend (model/onnx_backend.py) in-process: its maps against the eager backend's on a real
photograph, an exported file's one size, the execution providers and their options, the precisions, and the
engine running it. (The export cache and fp16: test_onnx_system.py.)"""

import logging

import numpy as np
import pytest

from depthmaster_ros.model import onnx_backend
from depthmaster_ros.model.backends import BUILTIN_BACKENDS, ModelConfig, PipelineBackend, create_backend, \
    load_estimate
from depthmaster_ros.model.checkpoint import CheckpointError
from depthmaster_ros.parameters import check_values

from photographs import grace_hopper

RES = 64  # the photograph (600 x 512) at processing size 54 x 64 (W x H)


def config(checkpoint, tmp_path, **options):
    return ModelConfig(checkpoint=str(checkpoint), device="cpu", dtype="fp32", backend="onnxruntime",
                       options={"onnx_cache": str(tmp_path / "cache"), **options})


@pytest.fixture
def backend(onnx_backend):
    return onnx_backend


def test_registered_as_a_builtin():
    assert "onnxruntime" in BUILTIN_BACKENDS


def test_maps_equal_the_eager_backend_on_a_photograph(backend, pipeline):
    """Through the package's one pre/post-processing path, the relative map at the input size equals the eager
    backend's within 1e-4 (each frame alone in PyTorch: its batched path differs from its single one by more than
    that on these random weights; ONNX Runtime's does not, checked exactly)."""
    photo = grace_hopper()
    flipped = np.ascontiguousarray(photo[:, ::-1])
    eager = PipelineBackend(pipeline)
    maps = backend.infer([photo, flipped], RES)
    assert maps[0].shape == photo.shape[:2] and maps[0].dtype.is_floating_point
    for image, got in zip((photo, flipped), maps):
        expected = eager.infer([image], RES)[0]
        assert float((got - expected).abs().max()) < 1e-4
        assert np.array_equal(backend.infer([image], RES)[0].numpy(), got.numpy())
    assert float(maps[0].std()) > 1e-3
    assert "RANDOM weights" in backend.describe() and "CPUExecutionProvider" in backend.describe()


def test_an_exported_file_serves_its_processing_size(backend, tmp_path):
    path = backend.model_path((64, 54))
    served = create_backend(ModelConfig(device="cpu", backend="onnxruntime", options={"onnx_model": str(path)}))
    image = grace_hopper()
    assert np.array_equal(served.infer([image], RES)[0].numpy(), backend.infer([image], RES)[0].numpy())
    assert served.random_weights and str(path) in served.describe()
    assert served.default_processing_resolution == 768  # from the checkpoint, through the file's metadata
    with pytest.raises(ValueError, match=r"was exported for processing size 54x64; this frame needs 64x48 \(set "
                                         "processing_res to match, or export that size with depthmaster-export"):
        served.infer([image[:48, :64].copy()], RES)
    with pytest.raises(ValueError, match="does not exist"):
        create_backend(ModelConfig(backend="onnxruntime", options={"onnx_model": str(tmp_path / "no.onnx")}))
    # The node's start-up memory check sizes a PyTorch load; an exported file needs no checkpoint (the default one
    # is not in this machine's cache), as the robot's params file in docs/jetson-tensorrt.md has it.
    on_file = ModelConfig(checkpoint=str(tmp_path / "no checkpoint"), backend="onnxruntime",
                          options={"onnx_model": str(path)})
    assert load_estimate(on_file) is None
    with pytest.raises(CheckpointError, match="does not exist"):
        load_estimate(ModelConfig(checkpoint=str(tmp_path / "no checkpoint"), backend="eager"))


def test_providers_in_order_unavailable_ones_skipped(tiny_checkpoint, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="depthmaster_ros.model.onnx_backend"):
        chosen = create_backend(ModelConfig(checkpoint=str(tiny_checkpoint), device="auto", backend="onnxruntime",
                                            options={"onnx_providers": "tensorrt, cuda,cpu"}))
    assert chosen.providers == ["CPUExecutionProvider"]
    assert chosen.skipped == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    assert "TensorrtExecutionProvider is not available in this onnxruntime build; skipped" in caplog.text
    assert "not in this onnxruntime: TensorrtExecutionProvider, CUDAExecutionProvider" in chosen.describe()
    assert not chosen.static_shapes and chosen.precision == "fp32"  # auto without a GPU provider
    with pytest.raises(ValueError, match="none of the ONNX Runtime providers CUDAExecutionProvider is available"):
        create_backend(ModelConfig(checkpoint=str(tiny_checkpoint), backend="onnxruntime",
                                   options={"onnx_providers": "cuda"}))
    with pytest.raises(ValueError, match="device cpu, but onnx_providers 'tensorrt,cuda' names only GPU providers"):
        create_backend(config(tiny_checkpoint, tmp_path, onnx_providers="tensorrt,cuda"))
    with pytest.raises(ValueError, match="device cuda asks for a GPU, but this onnxruntime has no CUDA or TensorRT"):
        create_backend(ModelConfig(checkpoint=str(tiny_checkpoint), device="cuda", backend="onnxruntime"))
    assert onnx_backend.provider_names("TensorRT, cpu,OpenVINOExecutionProvider") == [
        "TensorrtExecutionProvider", "CPUExecutionProvider", "OpenVINOExecutionProvider"]
    assert check_values({"onnx_providers": "cpu,CUDAExecutionProvider"}) == []
    assert check_values({"onnx_providers": "cpu,gpu"}) == [
        "onnx_providers: expected a comma-separated list of tensorrt, cuda, cpu or ONNX Runtime provider names "
        "(...ExecutionProvider), got 'cpu,gpu'"]


def test_tensorrt_provider_options(tiny_checkpoint, tmp_path):
    """What the TensorRT provider is given (no TensorRT here: the options only)."""
    backend = create_backend(config(tiny_checkpoint, tmp_path, tensorrt_cache=str(tmp_path / "engines")))
    backend.providers = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    (trt, trt_options), (cuda, cuda_options), (cpu, _) = backend._provider_options()
    assert trt_options["trt_engine_cache_enable"] and trt_options["trt_engine_cache_path"] == str(tmp_path / "engines")
    assert trt_options["trt_timing_cache_path"] == str(tmp_path / "engines") and not trt_options["trt_fp16_enable"]
    assert cuda_options == {"device_id": "0"} and (tmp_path / "engines").is_dir()


def test_bf16_is_refused(tiny_checkpoint):
    with pytest.raises(ValueError, match="backend onnxruntime runs fp32 or fp16"):
        create_backend(ModelConfig(checkpoint=str(tiny_checkpoint), device="cpu", dtype="bf16",
                                   backend="onnxruntime"))


def test_the_engine_runs_it(backend, pipeline):
    from depthmaster_ros.processing_config import ProcessingConfig
    from depthmaster_ros.engine.engine import FrameEngine
    from depthmaster_ros.engine.job import FrameJob

    image = grace_hopper()
    engine = FrameEngine(backend, max_batch=2)
    jobs = [FrameJob(name, 0, image, ProcessingConfig(processing_res=RES, scale_mode="none"),
                     outputs={"relative"}) for name in ("a", "b")]
    products = engine.run(jobs)
    expected = PipelineBackend(pipeline).infer([image], RES)[0].numpy()
    for item in products:
        assert np.abs(np.asarray(item.relative) - expected).max() < 1e-4
