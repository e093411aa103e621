"""The ``onnxruntime`` model backend: DepthMaster exported to ONNX, run by ONNX Runtime (CPU, CUDA or TensorRT).

``backend: onnxruntime`` runs either

* an exported file (``onnx_model``, written by ``depthmaster-export``; it serves its one processing size), or
* the ``checkpoint``, exported on first use of each processing size (at configure with ``warmup_size``) into
  ``onnx_cache`` (default ``~/.cache/depthmaster_ros/onnx``), one folder per checkpoint, keyed by the checkpoint's
  folder and its weight files' sizes and modification times (changed weights export again), and one file per
  processing size and precision.

Execution providers are tried in the order of ``onnx_providers`` (``tensorrt``, ``cuda``, ``cpu``, or any ONNX
Runtime provider name); those this onnxruntime build lacks are skipped, and said so in :meth:`describe` and the
log. TensorRT engines are cached in ``tensorrt_cache`` (default: ``<onnx_cache>/tensorrt``); with TensorRT the
passes keep one batch size (``static_shapes``), so one engine is built. The frames go through the package's one
pre/post-processing path (:func:`.pipeline.run_frames`: resize, uint8 rounding, normalisation on the CPU), so the
maps equal the eager backend's up to the model's numerics. Importing this module imports neither torch nor
onnxruntime.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from ..parameter_spec import ParameterSpec

NAME = "onnxruntime"
DESCRIPTION = ("onnxruntime (the model exported to ONNX, run by ONNX Runtime's TensorRT, CUDA or CPU provider; "
               "see the onnx_* parameters and docs/jetson-tensorrt.md)")
EXPORT_FORMAT = 1  # part of the cache's file names: raise it when what export_model writes changes
PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider",
             "cpu": "CPUExecutionProvider"}
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
log = logging.getLogger(__name__)


def provider_names(text: str) -> list[str]:
    """``"tensorrt, cuda,cpu"`` -> ONNX Runtime provider names in that order."""
    return [PROVIDERS.get(item.strip().lower(), item.strip()) for item in text.split(",") if item.strip()]


def providers_rule(text: str) -> str | None:
    """The ``onnx_providers`` check: a comma-separated list of known short names or provider names."""
    names = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [n for n in names if n.lower() not in PROVIDERS and not n.endswith("ExecutionProvider")]
    if not names or unknown:
        return (f"expected a comma-separated list of {', '.join(PROVIDERS)} or ONNX Runtime provider names "
                f"(...ExecutionProvider), got {text!r}")
    return None


PARAMETERS = (
    ParameterSpec("onnx_model", "", "An ONNX file written by depthmaster-export (it serves the one processing size it "
                  "was exported at); '' = export the checkpoint on first use of each processing size (at configure "
                  "with warmup_size; minutes for the full model) into onnx_cache.", model=True),
    ParameterSpec("onnx_cache", "", "Folder of the exports made from the checkpoint, one subfolder per checkpoint "
                  "(named by its folder and its weight files' sizes and times: changed weights export again) ('' = "
                  "~/.cache/depthmaster_ros/onnx).", model=True),
    ParameterSpec("onnx_providers", "tensorrt,cuda,cpu", "ONNX Runtime execution providers in order of preference, "
                  "comma-separated (tensorrt, cuda, cpu or a full provider name); those this onnxruntime build lacks "
                  "are skipped (the CPU package has only cpu; a GPU robot installs onnxruntime-gpu or the Jetson "
                  "build).", model=True, rule=providers_rule),
    ParameterSpec("tensorrt_cache", "", "With the tensorrt provider: folder of the built TensorRT engines and timing "
                  "cache (the first run at a size builds one, minutes; '' = <onnx_cache>/tensorrt).", model=True),
)


def default_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "depthmaster_ros" / "onnx"


def checkpoint_key(root: Path) -> str:
    """A name for the cache folder of a checkpoint: its resolved folder and its weight files' sizes and times."""
    from .checkpoint import weight_files

    digest = hashlib.sha256(str(root.resolve()).encode())
    for component in ("unet", "vae"):
        for path in weight_files(root / component):
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for name in ("empty_text_embedding.safetensors", "model_index.json"):
        if (root / name).is_file():
            stat = (root / name).stat()
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"{root.name}-{digest.hexdigest()[:16]}"


class OnnxRuntimeBackend:
    """DepthMaster in ONNX Runtime sessions, one per processing size (see the module's docstring)."""

    name = NAME

    def __init__(self, config, pipeline=None, cache_key: str = ""):
        """``config``: the :class:`.backends.ModelConfig` (its ``options`` hold ``onnx_model``, ``onnx_cache``,
        ``onnx_providers``, ``tensorrt_cache``). ``pipeline``: a function of the precision (``"fp32"``,
        ``"fp16"``) that builds an in-memory pipeline to export instead of loading ``config.checkpoint`` (the
        benchmark's random models), its exports cached under ``cache_key``."""
        import onnxruntime
        import torch

        self._ort = onnxruntime
        options = dict(config.options)
        self.model_file = str(options.get("onnx_model") or "")
        self.cache = Path(options.get("onnx_cache") or default_cache()).expanduser()
        self.tensorrt_cache = Path(options.get("tensorrt_cache") or self.cache / "tensorrt").expanduser()
        self.device = torch.device("cpu")  # maps come back on the CPU
        self.providers, self.skipped = self._choose_providers(options.get("onnx_providers") or
                                                              "tensorrt,cuda,cpu", str(config.device))
        self.static_shapes = self.providers[0] == "TensorrtExecutionProvider"
        self._config, self.source_pipeline, self._sessions = config, None, {}
        if self.model_file:
            from .onnx_export import read_info

            info = read_info(self.model_file)
            self.precision, self.source = info.precision, info.source
            self.random_weights, self.default_processing_resolution = info.random_weights, \
                info.default_processing_resolution
            self._files = {info.processing_size: Path(self.model_file)}
        else:
            self.precision = self._precision(str(config.dtype))
            self._files = {}
            if pipeline is not None:
                if not cache_key:
                    raise ValueError("an in-memory pipeline's exports need a cache_key")
                pipeline = self.source_pipeline = pipeline(self.precision)
                self.source, self.random_weights = pipeline.source, bool(pipeline.random_weights)
                self.default_processing_resolution = pipeline.default_processing_resolution
                self._folder = self.cache / cache_key
            else:
                self._open_checkpoint(config)
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16}[self.precision]
        for name in self.skipped:
            log.warning("onnxruntime: %s is not available in this onnxruntime build; skipped", name)

    # ------------------------------------------------------------------ set-up
    def _choose_providers(self, text: str, device: str) -> tuple[list[str], list[str]]:
        available = set(self._ort.get_available_providers())
        wanted = provider_names(text)
        if device == "cpu":
            wanted = [p for p in wanted if p not in GPU_PROVIDERS]
            if not wanted:
                raise ValueError(f"device cpu, but onnx_providers {text!r} names only GPU providers (add cpu)")
        chosen = [p for p in wanted if p in available]
        skipped = [p for p in wanted if p not in available]
        if not chosen:
            raise ValueError(f"none of the ONNX Runtime providers {', '.join(wanted)} is available (this "
                             f"onnxruntime has {', '.join(sorted(available))}); set onnx_providers, or install "
                             "onnxruntime-gpu for cuda and tensorrt")
        if device.startswith("cuda") and chosen[0] not in GPU_PROVIDERS:
            raise ValueError(f"device {device} asks for a GPU, but this onnxruntime has no CUDA or TensorRT "
                             "provider (install onnxruntime-gpu, or the Jetson build of onnxruntime)")
        return chosen, skipped

    def _precision(self, dtype: str) -> str:
        if dtype == "auto":
            return "fp16" if self.providers[0] in GPU_PROVIDERS else "fp32"
        from .device import resolve_dtype, dtype_name

        name = dtype_name(resolve_dtype(dtype))
        if name == "bf16":
            raise ValueError("backend onnxruntime runs fp32 or fp16 (ONNX Runtime and TensorRT lack bf16 kernels); "
                             "set dtype to fp32, fp16 or auto")
        return name

    def _open_checkpoint(self, config) -> None:
        from .checkpoint import default_processing_resolution, require_complete, resolve_checkpoint
        from .checkpoint_layout import RANDOM_WEIGHTS_MARKER
        from .pipeline import DEFAULT_PROCESSING_RESOLUTION

        root = resolve_checkpoint(config.checkpoint, allow_download=config.allow_download)
        require_complete(root, need_text_encoder=False)
        self.source, self.random_weights = str(config.checkpoint), (root / RANDOM_WEIGHTS_MARKER).is_file()
        self.default_processing_resolution = default_processing_resolution(root, DEFAULT_PROCESSING_RESOLUTION)
        self._folder = self.cache / checkpoint_key(root)

    def model_path(self, size: tuple[int, int]) -> Path:
        """The file that serves processing size ``size`` (height, width); exported first if it is not there."""
        if size in self._files:
            return self._files[size]
        if self.model_file:
            (height, width), = self._files
            raise ValueError(f"{self.model_file} was exported for processing size {width}x{height}; this frame "
                             f"needs {size[1]}x{size[0]} (set processing_res to match, or export that size with "
                             "depthmaster-export)")
        path = self._folder / f"depthmaster_{size[1]}x{size[0]}_{self.precision}_v{EXPORT_FORMAT}.onnx"
        if not path.is_file():
            self._export(path, size)
        self._files[size] = path
        return path

    def _export(self, path: Path, size: tuple[int, int]) -> None:
        import fcntl
        import time

        from .onnx_export import export_model

        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / ".lock", "w") as lock:  # one exporter per checkpoint folder (fleet actors)
            fcntl.flock(lock, fcntl.LOCK_EX)
            if path.is_file():
                return
            log.warning("onnxruntime: exporting %s at %dx%d (%s) to %s (once per processing size)", self.source,
                        size[1], size[0], self.precision, path)
            start = time.perf_counter()
            pipeline = self.source_pipeline or self._load_pipeline()
            export_model(pipeline, path, size)
            log.warning("onnxruntime: exported in %.0f s", time.perf_counter() - start)

    def _load_pipeline(self):
        """The checkpoint in PyTorch, to export it (not kept: the sessions hold their own weights)."""
        from .device import resolve_device
        from .pipeline import DepthMasterPipeline

        device = resolve_device(self._config.device if self.providers[0] in GPU_PROVIDERS else "cpu")
        return DepthMasterPipeline.from_pretrained(self._config.checkpoint, device=device, dtype=self.precision,
                                                   allow_download=self._config.allow_download)

    def session(self, size: tuple[int, int]):
        """The ONNX Runtime session for processing size ``size`` (height, width)."""
        session = self._sessions.get(size)
        if session is None:
            import torch

            path = self.model_path(size)
            options = self._ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()  # cpu_threads, as the other backends
            options.log_severity_level = 3  # errors only: the TensorRT provider is verbose
            session = self._ort.InferenceSession(str(path), options, providers=self._provider_options())
            self._sessions[size] = session
        return session

    def _provider_options(self) -> list[tuple[str, dict[str, Any]]]:
        device = str(self._config.device)
        index = device.split(":")[1] if device.startswith("cuda:") else "0"
        chosen = []
        for name in self.providers:
            if name == "TensorrtExecutionProvider":
                self.tensorrt_cache.mkdir(parents=True, exist_ok=True)
                chosen.append((name, {"device_id": index, "trt_engine_cache_enable": True,
                                      "trt_engine_cache_path": str(self.tensorrt_cache),
                                      "trt_timing_cache_enable": True,
                                      "trt_timing_cache_path": str(self.tensorrt_cache),
                                      "trt_fp16_enable": self.precision == "fp16"}))
            elif name == "CUDAExecutionProvider":
                chosen.append((name, {"device_id": index}))
            else:
                chosen.append((name, {}))
        return chosen

    # ------------------------------------------------------------------ the backend protocol
    def infer(self, images, processing_res=None):
        import numpy as np
        import torch

        from .pipeline import run_frames

        batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
        return list(run_frames(batch, self.resolution(processing_res), self.model_pass, self.device, self.dtype))

    def resolution(self, processing_res: int | None) -> int:
        return self.default_processing_resolution if processing_res is None else int(processing_res)

    def preprocess(self, rgb, processing_res=None):
        """As :meth:`.pipeline.DepthMasterPipeline.preprocess` (the benchmark times the stages one by one)."""
        from .pipeline import normalise

        return normalise(rgb, self.resolution(processing_res), self.device, self.dtype)

    def model_pass(self, image):
        """Normalised ``[B, 3, h, w]`` -> ``[B, 1, h, w]`` in [0, 1], by the session of size ``h x w``."""
        import torch

        from .onnx_export import INPUT_NAME, OUTPUT_NAME

        session = self.session(tuple(image.shape[-2:]))
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: image.numpy()})[0])

    def warmup(self, width, height, batch=1, processing_res=None):
        import numpy as np

        self.infer([np.zeros((height, width, 3), np.uint8)] * batch, processing_res)

    def describe(self) -> str:
        weights = "RANDOM weights (smoke test only)" if self.random_weights else "weights"
        model = self.model_file or f"exports in {self._folder}"
        skipped = f"; not in this onnxruntime: {', '.join(self.skipped)}" if self.skipped else ""
        return (f"DepthMaster {weights} from {self.source} on ONNX Runtime {self._ort.__version__} "
                f"({', '.join(self.providers)}{skipped}; {self.precision}; {model})")


def create(config) -> OnnxRuntimeBackend:
    """The backend factory (``register_backend`` name ``onnxruntime``)."""
    return OnnxRuntimeBackend(config)
