"""Model backends: how the model runs, behind one protocol and one factory.

A backend turns a batch of same-size RGB frames into relative maps on its device::

    backend = create_backend(ModelConfig(checkpoint="~/models/DepthMaster", backend="cuda_graphs"))
    maps = backend.infer([rgb0, rgb1], processing_res=768)   # [H x W] float32 tensors in [0, 1]

Built in: ``eager`` (PyTorch as is), ``compile`` (``torch.compile`` with static shapes) and ``cuda_graphs``
(compiled, replaying CUDA graphs; GPU only), all over :class:`~depthmaster_ros.model.pipeline.DepthMasterPipeline`,
and ``onnxruntime`` (the model exported to ONNX, run by ONNX Runtime's TensorRT, CUDA or CPU provider;
:mod:`.onnx_backend`, which declares its own parameters). The node, every command-line tool, the benchmark and the tests create their backend here from one
:class:`ModelConfig` (the node's parameters); another runtime (TensorRT, ONNX, a test double) is a factory given to
:func:`register_backend` with the parameters it declares (``ParameterSpec``s: they join the parameter table, so the
node declares them, ``config/depthmaster.yaml`` documents them and every tool takes them as options; the factory
reads their values in ``config.options``), selectable by name everywhere (``backend`` parameter, ``--backend``
option). Another package publishes one as an entry point (``depthmaster_ros.backends``, see ``plugins.py``).
Importing this module imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from ..parameter_spec import ParameterSpec
from . import onnx_backend  # its parameters and factory; it imports onnxruntime (and torch) only when it runs
from .checkpoint_layout import DEFAULT_REPO_ID


@dataclass(frozen=True)
class ModelConfig:
    """Which model to load and how to run it (the node's read-only model parameters)."""

    checkpoint: str = DEFAULT_REPO_ID
    device: str = "auto"
    dtype: str = "auto"
    backend: str = "eager"
    allow_download: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)  # the values of the backend's own parameters

    @classmethod
    def from_parameters(cls, values: dict[str, Any]) -> "ModelConfig":
        backend = str(values["backend"])
        options = {spec.name: values.get(spec.name, spec.default) for spec in backend_parameters(backend)}
        return cls(checkpoint=str(values["checkpoint"]), device=str(values["device"]), dtype=str(values["dtype"]),
                   backend=backend, allow_download=bool(values["allow_download"]), options=options)


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


@dataclass(frozen=True)
class LoadEstimate:
    """What loading a checkpoint costs, read from its files before loading anything: ``loading`` bytes of host
    memory at the peak of the load (the file's tensors and the model's own float32 parameters before the cast to
    its dtype), ``weights`` bytes once loaded (in the model's dtype, on ``device``), and ``activation_bytes(pixels,
    batch)`` of a pass."""

    loading: int
    weights: int
    device: Any
    bytes_per_pixel: int  # activations per processing pixel and frame

    def activation_bytes(self, pixels: int, batch: int = 1) -> int:
        return int(self.bytes_per_pixel * pixels * batch)


def load_estimate(config: ModelConfig) -> LoadEstimate | None:
    """The estimate of a PyTorch pipeline backend's checkpoint (the official layout: weights stored as float32, as
    published); None for other backends, which load their own way (onnxruntime: an exported file, or the
    checkpoint exported on first use). Raises CheckpointError for a checkpoint that cannot be found (as loading
    would)."""
    if config.backend not in PIPELINE_BACKENDS:
        return None
    import json

    from .checkpoint import resolve_checkpoint, weight_files
    from .device import resolve_device, resolve_dtype

    root = resolve_checkpoint(config.checkpoint, allow_download=config.allow_download)
    files = [path for component in ("unet", "vae") for path in weight_files(root / component)]
    if not files:
        return None  # incomplete: loading says what is missing
    stored = sum(path.stat().st_size for path in files)
    device = resolve_device(config.device)
    itemsize = resolve_dtype(config.dtype, device).itemsize
    try:
        channels = int(json.loads((root / "vae" / "config.json").read_text())["block_out_channels"][0])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    return LoadEstimate(loading=2 * stored, weights=stored * itemsize // 4, device=device,
                        bytes_per_pixel=ACTIVATION_FACTOR * channels * itemsize)


def _pipeline_backend(name: str, compile: bool, cuda_graphs: bool) -> Callable[[ModelConfig], PipelineBackend]:
    def create(config: ModelConfig) -> PipelineBackend:
        from .pipeline import DepthMasterPipeline

        pipeline = DepthMasterPipeline.from_pretrained(config.checkpoint, device=config.device, dtype=config.dtype,
                                                       allow_download=config.allow_download, compile=compile,
                                                       cuda_graphs=cuda_graphs)
        return PipelineBackend(pipeline, name)

    return create


@dataclass(frozen=True)
class BackendEntry:
    """A registered backend: its factory, its own parameters and a line for the ``backend`` parameter's
    documentation."""

    name: str
    factory: Callable[[ModelConfig], Any]
    parameters: tuple[ParameterSpec, ...] = ()
    description: str = ""  # e.g. "compile (torch.compile with static shapes: ...)"; '' gives the name alone


_backends: dict[str, BackendEntry] = {}
_version = 0
_plugins_loaded = False


def register_backend(name: str, factory: Callable[[ModelConfig], Any], parameters: Sequence[ParameterSpec] = (),
                     description: str = "") -> BackendEntry:
    """Make ``factory(config) -> backend`` selectable as ``backend: NAME``. ``parameters``: the backend's own
    parameters (read when the model loads, like every model parameter: a running node takes changes only while
    unconfigured); their values reach the factory as ``config.options``. ``description``: the line the
    ``backend`` parameter's documentation gives it."""
    global _version
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"a backend needs a name of letters, digits and '_'; got {name!r}")
    if name in _backends:
        raise ValueError(f"backend {name!r} is already registered")
    parameters = tuple(parameters)
    if not all(isinstance(spec, ParameterSpec) for spec in parameters):
        raise TypeError(f"backend {name!r}: parameters must be ParameterSpec objects")
    specs = tuple(spec if spec.model else dataclasses.replace(spec, model=True) for spec in parameters)
    taken = {spec.name for entry in _backends.values() for spec in entry.parameters}
    clash = [spec.name for spec in specs if spec.name in taken]
    if clash:
        raise ValueError(f"backend {name!r} declares parameters that another backend declares: {clash}")
    entry = BackendEntry(name, factory, specs, description)
    _backends[name] = entry
    _version += 1
    return entry


def unregister_backend(name: str) -> None:
    global _version
    _backends.pop(name, None)
    _version += 1


def _register_plugin(name: str, plugin: Any) -> None:
    """An entry point of ``depthmaster_ros.backends``: a class or factory ``plugin(config) -> backend``, with its
    ``parameters`` and ``description`` as attributes when it has them."""
    if not callable(plugin):
        raise TypeError(f"expected a backend class or factory taking a ModelConfig, got {type(plugin).__name__}")
    register_backend(name, plugin, getattr(plugin, "parameters", ()), getattr(plugin, "description", ""))


def _entries() -> dict[str, BackendEntry]:
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        from ..plugins import load_plugins

        load_plugins("backends", _register_plugin)
    return _backends


def backend_names() -> tuple[str, ...]:
    return tuple(_entries())


def backend_entry(name: str) -> BackendEntry | None:
    """The registration of ``name`` (to register it in another process: the fleet's model actors)."""
    return _entries().get(name)


def backend_parameters(name: str) -> tuple[ParameterSpec, ...]:
    """The parameters backend ``name`` declares (none for an unknown name)."""
    entry = backend_entry(name)
    return entry.parameters if entry is not None else ()


def backend_descriptions() -> str:
    """'eager (...), compile (...) or cuda_graphs (...)': every backend for the ``backend`` parameter's text."""
    items = [entry.description or entry.name for entry in _entries().values()]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def backends_version() -> int:
    """Changes whenever a backend is registered or removed (for caches of the parameter table)."""
    _entries()
    return _version


# The backends that load the checkpoint into a DepthMasterPipeline (PipelineBackend): name, compile, CUDA graphs.
_PIPELINE_TABLE = (
    ("eager", False, False, "eager (PyTorch as is)"),
    ("compile", True, False, "compile (torch.compile with static shapes: fast on a GPU; each new image size "
                             "compiles for minutes unless warmup_size is set; kernels are cached across restarts)"),
    ("cuda_graphs", True, True, "cuda_graphs (compile + CUDA graph replay; GPU only)"))
PIPELINE_BACKENDS = tuple(row[0] for row in _PIPELINE_TABLE)
for _name, _compile, _graphs, _description in _PIPELINE_TABLE:
    register_backend(_name, _pipeline_backend(_name, _compile, _graphs), description=_description)
register_backend(onnx_backend.NAME, onnx_backend.create, onnx_backend.PARAMETERS, onnx_backend.DESCRIPTION)
BUILTIN_BACKENDS = tuple(_backends)


def backend_from_parameters(values: dict[str, Any]):
    """The backend of a set of parameter values (the node's, a tool's, a fleet actor's): torch's CPU threads set
    from ``cpu_threads`` first, then :func:`create_backend` of their :class:`ModelConfig`."""
    from .device import apply_cpu_threads

    apply_cpu_threads(values["cpu_threads"])
    return create_backend(ModelConfig.from_parameters(values))


def create_backend(config: ModelConfig):
    """The backend ``config.backend`` with the model of ``config`` loaded. Raises CheckpointError (missing or
    wrong weights) or ValueError (a device, dtype or backend that cannot be had), each naming what to do."""
    entry = backend_entry(config.backend)
    if entry is None:
        raise ValueError(f"unknown backend {config.backend!r}; expected one of {', '.join(backend_names())}")
    return entry.factory(config)
