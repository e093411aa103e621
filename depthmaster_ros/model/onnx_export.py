"""DepthMaster's model pass as an ONNX file (``depthmaster-export``, and the ``onnxruntime`` backend's cache).

What is exported is :meth:`~.pipeline.DepthMasterPipeline.model_pass` at one processing size ``h x w``:

* input ``image``: ``[B, 3, h, w]``, the normalised image in [-1, 1] (``rgb / 255 * 2 - 1`` of the uint8 image
  resized to the processing size), float32 or float16 as the export's precision;
* output ``relative``: ``[B, 1, h, w]`` float32, normalised square-root disparity in [0, 1] (1 = near) at the
  processing size;
* the batch ``B`` is dynamic; ``h`` and ``w`` are fixed (the Fourier Enhancement's DFT matrices depend on them).

The resize to and from the processing size and the uint8 rounding stay outside, in the package's one path
(:func:`.pipeline.run_frames`), so a map from ONNX Runtime equals the PyTorch one up to the model's numerics.
The file's metadata (``depthmaster.*`` keys) records the processing size, precision, source checkpoint and
whether the weights are random. Weights go to ``FILE.data`` beside the model when they exceed 1 GiB (protobuf
caps one file at 2 GB): keep the two files together.

GroupNorm exports as its formula with the mean and the variance reduced one axis at a time (width, height, then
the group's channels), in float32: exported as one reduction (InstanceNormalization, or ReduceMean over the
group), ONNX Runtime's CPU kernels sum a whole group in one float32 accumulator, which was 2e-5 off float64 at the
VAE decoder's 0.4 M elements per group and 6e-5 at 1 M (PyTorch's own GroupNorm: 7e-7); one axis at a time
the error is 1.4e-6 at 3 M. The eager model is not changed.

Exporter: torch.onnx's TorchScript exporter (``dynamo=False``) at opset 17. The ``dynamo`` exporter also exports
the model (with ``Dim.DYNAMIC`` for the batch) but cannot target an opset below 18 (its converter has no
adapter for ``Pad``), needs the ``onnxscript`` package and took 4-5 times longer on the tiny model; opset 17 is
what TensorRT 8.5 (JetPack 5) parses. The Fourier Enhancement exports as plain operators (MatMul, Atan, Where,
Sin, Cos; see :mod:`.real_dft`): the graph has no DFT and no complex tensor.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import unittest.mock
import warnings
from dataclasses import dataclass
from pathlib import Path

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "image", "relative"
EXTERNAL_DATA_BYTES = 1 << 30
PRECISIONS = ("fp32", "fp16")
_KEY = "depthmaster."


@dataclass(frozen=True)
class ExportInfo:
    """What an exported file holds (its ``depthmaster.*`` metadata)."""

    processing_size: tuple[int, int]  # (height, width)
    precision: str  # fp32 or fp16 (the input's type and the model's; the output is float32)
    source: str  # the checkpoint it was exported from
    random_weights: bool
    default_processing_resolution: int

    def metadata(self) -> dict[str, str]:
        return {f"{_KEY}processing_size": f"{self.processing_size[1]}x{self.processing_size[0]}",
                f"{_KEY}precision": self.precision, f"{_KEY}source": self.source,
                f"{_KEY}random_weights": "true" if self.random_weights else "false",
                f"{_KEY}default_processing_resolution": str(self.default_processing_resolution)}

    @classmethod
    def from_metadata(cls, values: dict[str, str], where: str) -> "ExportInfo":
        try:
            width, height = (int(v) for v in values[f"{_KEY}processing_size"].split("x"))
            return cls((height, width), values[f"{_KEY}precision"], values[f"{_KEY}source"],
                       values[f"{_KEY}random_weights"] == "true",
                       int(values[f"{_KEY}default_processing_resolution"]))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{where} is not a depthmaster-export model (its metadata lacks {exc}); export one "
                             "with depthmaster-export") from None


def read_info(path: str | os.PathLike) -> ExportInfo:
    """The metadata of an exported file (reads the graph only, not the weights)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"ONNX model {path} does not exist (export one with depthmaster-export)")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ValueError(f"{path} is not an ONNX model: {exc}") from exc
    return ExportInfo.from_metadata({p.key: p.value for p in model.metadata_props}, str(path))


def export_info(pipeline, processing_size: tuple[int, int]) -> ExportInfo:
    from .device import dtype_name

    return ExportInfo(tuple(int(v) for v in processing_size), dtype_name(pipeline.dtype), pipeline.source,
                      bool(pipeline.random_weights), pipeline.default_processing_resolution)


def export_model(pipeline, path: str | os.PathLike, processing_size: tuple[int, int]) -> ExportInfo:
    """Write ``pipeline``'s model pass at ``processing_size`` (height, width) to ``path`` (plus ``path.data``
    for weights over 1 GiB). The pipeline must be eager (not compiled), in fp32 or fp16, with the Fourier
    Enhancement in its matrix form. Writes to a temporary name first, so ``path`` is complete or absent."""
    import onnx
    import torch

    from .device import dtype_name

    info = export_info(pipeline, processing_size)
    if info.precision not in PRECISIONS:
        raise ValueError(f"ONNX export in {dtype_name(pipeline.dtype)} is not supported: use fp32 or fp16 (ONNX "
                         "Runtime and TensorRT have no complete bf16 kernels)")
    if pipeline.compiled:
        raise ValueError("export an eager pipeline: this one is compiled (torch.compile does not trace to ONNX)")
    block = getattr(pipeline.unet, "fftblock", None)
    if block is not None and block.dft != "matmul":
        raise ValueError(f"the Fourier Enhancement's DFT form is {block.dft!r}; only 'matmul' exports without a "
                         "DFT operator")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = info.processing_size
    example = torch.linspace(-1, 1, 3 * height * width).reshape(1, 3, height, width).to(pipeline.device,
                                                                                         pipeline.dtype)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=path.parent) as scratch:
        traced = Path(scratch) / "model.onnx"
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated (see the module's docstring for why it is used), and diffusers'
            # shape checks trace as constants, which is right at a fixed processing size.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")  # a strided Slice stays
            with torch.inference_mode(False), torch.no_grad(), \
                    unittest.mock.patch.object(torch.nn.GroupNorm, "forward", _group_norm_by_axes):
                torch.onnx.export(_model_pass_module(pipeline), (example,), str(traced), dynamo=False,
                                  opset_version=OPSET, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                  dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
        model = onnx.load(str(traced))  # with its weights, wherever the exporter put them
        output_dims = model.graph.output[0].type.tensor_type.shape.dim  # the tracer leaves h, w symbolic
        for dim, value in zip(output_dims, ("batch", 1, height, width)):
            dim.Clear()
            setattr(dim, "dim_param" if isinstance(value, str) else "dim_value", value)
        del model.metadata_props[:]
        for key, value in info.metadata().items():
            model.metadata_props.add(key=key, value=value)
        model.producer_name = "depthmaster_ros"
        staged = Path(scratch) / "staged"
        staged.mkdir()
        data = path.name + ".data"
        external = sum(t.ByteSize() for t in model.graph.initializer) > EXTERNAL_DATA_BYTES
        onnx.save_model(model, str(staged / path.name), save_as_external_data=external,
                        all_tensors_to_one_file=True, location=data)
        del model
        with contextlib.suppress(FileNotFoundError):
            (path.parent / data).unlink()
        if external:
            os.replace(staged / data, path.parent / data)
        os.replace(staged / path.name, path)
    return info


def compare_with_eager(pipeline, path: str | os.PathLike, image, batch: int = 1) -> dict:
    """Run the exported file in ONNX Runtime (CPU) and the pipeline in PyTorch on the same normalised input
    (``image``: an H x W x 3 uint8 RGB array, resized to the processing size), and return ``{"max_abs_diff",
    "eager_s", "onnxruntime_s"}`` (the times of one pass each)."""
    import numpy as np
    import onnxruntime
    import torch

    from .pipeline import normalise
    from .resize import resize_uint8_values

    info = read_info(path)
    height, width = info.processing_size
    rgb = torch.from_numpy(np.stack([image] * batch)).permute(0, 3, 1, 2).contiguous()
    x = normalise(resize_uint8_values(rgb, (height, width)), 0, pipeline.device, pipeline.dtype)
    start = time.perf_counter()
    with torch.inference_mode():
        eager = pipeline.model_pass(x).float().cpu().numpy()
    eager_s = time.perf_counter() - start
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    start = time.perf_counter()
    exported = session.run([OUTPUT_NAME], {INPUT_NAME: x.cpu().numpy()})[0]
    onnxruntime_s = time.perf_counter() - start
    return {"max_abs_diff": float(np.abs(exported - eager).max()), "eager_s": eager_s,
            "onnxruntime_s": onnxruntime_s}


def file_bytes(path: str | os.PathLike) -> int:
    """Size of an exported model with its external data file, if any."""
    path = Path(path)
    data = path.parent / (path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.is_file() else 0)


def _group_norm_by_axes(self, x):
    """``torch.nn.GroupNorm.forward`` as exported (see the module's docstring): float32 statistics, each
    reduced over one axis at a time."""
    import torch

    shape = x.shape
    groups = x.float().reshape(shape[0], self.num_groups, shape[1] // self.num_groups, *shape[2:])
    axes = range(groups.ndim - 1, 1, -1)  # the last spatial axis first, the group's channels last

    def mean(t):
        for axis in axes:
            t = t.mean(axis, keepdim=True)
        return t

    centred = groups - mean(groups)
    y = (centred * torch.rsqrt(mean(centred * centred) + self.eps)).reshape(shape)
    if self.affine:
        extra = (1,) * (len(shape) - 2)
        y = y * self.weight.float().reshape(-1, *extra) + self.bias.float().reshape(-1, *extra)
    return y.to(x.dtype)


def _model_pass_module(pipeline):
    import torch

    class ModelPass(torch.nn.Module):
        """The pipeline's model pass as a module (its U-Net and VAE registered, so their weights export)."""

        def __init__(self):
            super().__init__()
            self.unet, self.vae = pipeline.unet, pipeline.vae

        def forward(self, image):
            return pipeline.model_pass(image)

    return ModelPass().eval()
