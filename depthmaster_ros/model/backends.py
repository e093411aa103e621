"""Model backends: how the model runs, behind one protocol and one factory.

A backend turns a batch of same-size RGB frames into relative maps on its device::

    backend = create_backend(ModelConfig(checkpoint="~/models/DepthMaster", backend="cuda_graphs"))
    maps = backend.infer([rgb0, rgb1], processing_res=768)   # [H x W] float32 tensors in [0, 1]

Built in: ``eager`` (PyTorch as is), ``compile`` (``torch.compile`` with static shapes) and ``cuda_graphs``
(compiled, replaying CUDA graphs; GPU only), all over :class:`~depthmaster_ros.model.pipeline.DepthMasterPipeline`,
and ``onnxruntime`` (the model exported to ONNX, run by ONNX Runtime's CPU, CUDA or TensorRT provider;
:mod:`.onnx_backend`).
The node, every command-line tool, the benchmark and the tests create their backend here from one
:class:`ModelConfig` (the node's parameters); another runtime (TensorRT, ONNX, a test double) is a factory given to
:func:`register_backend`, selectable by name everywhere (``backend`` parameter, ``--backend`` option).
Importing this module imports neither torch nor onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

DEFAULT_CHECKPOINT = "zysong212/DepthMaster"
# Parameters that only some backends read (declared in the parameter table's model group); ModelConfig.options
# carries their values.
BACKEND_OPTIONS = ("onnx_model", "onnx_cache", "onnx_providers", "tensorrt_cache")


@dataclass(frozen=True)
class ModelConfig:
    """Which model to load and how to run it (the node's read-only model parameters)."""

    checkpoint: str = DEFAULT_CHECKPOINT
    device: str = "auto"
    dtype: str = "auto"
    backend: str = "eager"
    allow_download: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)  # values of BACKEND_OPTIONS (defaults where absent)

    @classmethod
    def from_parameters(cls, values: dict[str, Any]) -> "ModelConfig":
        return cls(checkpoint=str(values["checkpoint"]), device=str(values["device"]), dtype=str(values["dtype"]),
                   backend=str(values["backend"]), allow_download=bool(values["allow_download"]),
                   options={name: values[name] for name in BACKEND_OPTIONS if name in values})


class ModelBackend(Protocol):
    name: str  # the backend's registry name
    device: Any  # torch.device where the maps are returned
    static_shapes: bool  # passes must keep one batch size (the engine pads them)
    random_weights: bool  # the weights are a random smoke-test checkpoint

    def infer(self, images: Sequence[Any], processing_res: int | None = None) -> Sequence[Any]:
        """Same-size H x W x 3 uint8 RGB arrays -> float32 H x W tensors in [0, 1] (1 = near) on ``device``."""

    def warmup(self, width: int, height: int, batch: int = 1, processing_res: int | None = None) -> None:
        """Run once on blank frames of this size (compilation, autotuning, graph capture happen now)."""

    def describe(self) -> str:
        """One line: weights, source, device, precision, backend."""

    # optional: ``activation_bytes(pixels, batch) -> int``, the memory a pass at that processing size needs
    # beyond the weights (used to refuse a processing size that cannot fit, before trying it)


# Bytes of activations per processing pixel and per channel-byte of the VAE's first block (the decoder's
# full-resolution stages dominate): 8.4 (fp32) and 9.8 (bf16) measured for the published model on the CPU at
# 480x640 and 768x1024 (peak RSS minus weights); 10 keeps a margin.
ACTIVATION_FACTOR = 10


class PipelineBackend:
    """A :class:`DepthMasterPipeline` as a backend (eager, compiled or with CUDA graphs)."""

    def __init__(self, pipeline, name: str = "eager"):
        self.pipeline = pipeline
        self.name = name
        self.static_shapes = bool(pipeline.compiled)

    @property
    def device(self):
        return self.pipeline.device

    @property
    def dtype(self):
        return self.pipeline.dtype

    @property
    def random_weights(self) -> bool:
        return self.pipeline.random_weights

    def infer(self, images, processing_res=None):
        import numpy as np
        import torch

        batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)  # the pipeline chooses the memory layout
        if self.pipeline.device.type == "cuda":
            batch = batch.pin_memory()
        return list(self.pipeline.predict(batch, processing_res))

    def warmup(self, width, height, batch=1, processing_res=None):
        self.pipeline.warmup(height, width, batch=batch, processing_res=processing_res)

    def describe(self) -> str:
        return self.pipeline.describe()

    def activation_bytes(self, pixels: int, batch: int = 1) -> int:
        """Estimated peak memory of one pass beyond the weights, for ``batch`` frames of ``pixels`` pixels at the
        processing size."""
        channels = self.pipeline.vae.config.block_out_channels[0]
        return int(ACTIVATION_FACTOR * channels * self.pipeline.dtype.itemsize * pixels * batch)


def _pipeline_backend(name: str, compile: bool, cuda_graphs: bool) -> Callable[[ModelConfig], PipelineBackend]:
    def create(config: ModelConfig) -> PipelineBackend:
        from .pipeline import DepthMasterPipeline

        pipeline = DepthMasterPipeline.from_pretrained(config.checkpoint, device=config.device, dtype=config.dtype,
                                                       allow_download=config.allow_download, compile=compile,
                                                       cuda_graphs=cuda_graphs)
        return PipelineBackend(pipeline, name)

    return create


def _onnxruntime_backend(config: ModelConfig):
    from .onnx_backend import create

    return create(config)


_factories: dict[str, Callable[[ModelConfig], Any]] = {
    "eager": _pipeline_backend("eager", False, False),
    "compile": _pipeline_backend("compile", True, False),
    "cuda_graphs": _pipeline_backend("cuda_graphs", True, True),
    "onnxruntime": _onnxruntime_backend,
}
BUILTIN_BACKENDS = tuple(_factories)


def register_backend(name: str, factory: Callable[[ModelConfig], Any]) -> None:
    """Make ``factory(config) -> backend`` selectable as ``backend: NAME``."""
    if name in _factories:
        raise ValueError(f"backend {name!r} is already registered")
    _factories[name] = factory


def unregister_backend(name: str) -> None:
    _factories.pop(name, None)


def backend_names() -> tuple[str, ...]:
    return tuple(_factories)


def backend_factory(name: str) -> Callable[[ModelConfig], Any] | None:
    """The factory registered as ``name`` (to register it in another process: the fleet's model actors)."""
    return _factories.get(name)


def create_backend(config: ModelConfig):
    """The backend ``config.backend`` with the model of ``config`` loaded. Raises CheckpointError (missing or
    wrong weights) or ValueError (a device, dtype or backend that cannot be had), each naming what to do."""
    factory = _factories.get(config.backend)
    if factory is None:
        raise ValueError(f"unknown backend {config.backend!r}; expected one of {', '.join(_factories)}")
    return factory(config)
