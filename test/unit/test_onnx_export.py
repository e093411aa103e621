"""The ONNX export of the model pass (model/onnx_export.py): the graph's operators, inputs and metadata, ONNX
Runtime against PyTorch on a real photograph, the refusals, external data, and the GroupNorm it exports."""

import numpy as np
import onnx
import pytest
import torch

from depthmaster_ros.model import onnx_export
from depthmaster_ros.model.architectures import random_pipeline

from photographs import grace_hopper

SIZE = (64, 54)  # processing size (height, width): the photograph (600 x 512) at processing_res 64


@pytest.fixture(scope="module")
def exported(onnx_backend):
    """The tiny checkpoint exported (by export_model) at SIZE."""
    return onnx_backend.model_path(SIZE)


def test_graph_has_no_dft_and_no_complex_tensor(exported):
    model = onnx.load(str(exported))
    ops = {node.op_type for node in model.graph.node}
    assert not ops & {"DFT", "STFT", "InstanceNormalization"}  # GroupNorm goes by axes (see onnx_export)
    assert {"MatMul", "Atan", "Conv"} <= ops
    complex_types = {onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128}
    inferred = onnx.shape_inference.infer_shapes(model)
    typed = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    assert len(typed) > 100 and not any(v.type.tensor_type.elem_type in complex_types for v in typed)
    assert not any(t.data_type in complex_types for t in model.graph.initializer)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [onnx_export.OPSET]


def test_inputs_outputs_and_metadata(exported, tiny_checkpoint):
    model = onnx.load(str(exported))

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    (image,), (relative,) = model.graph.input, model.graph.output
    assert (image.name, dims(image)) == ("image", ["batch", 3, *SIZE])
    assert (relative.name, dims(relative)) == ("relative", ["batch", 1, *SIZE])
    assert relative.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    info = onnx_export.read_info(exported)
    assert info == onnx_export.ExportInfo(SIZE, "fp32", str(tiny_checkpoint), True, 768)


def test_onnxruntime_equals_pytorch_on_a_photograph(pipeline, exported):
    """The model pass in ONNX Runtime (CPU) = PyTorch eager within 1e-4 on a real photograph, batch 1 and 2 (the
    tiny random model amplifies rounding: PyTorch's own batch-of-2 path moves the map by 1.8e-4 at 480x640)."""
    for batch in (1, 2):
        check = onnx_export.compare_with_eager(pipeline, exported, batch=batch, image=grace_hopper())
        assert check["max_abs_diff"] < 1e-4, check


def test_refusals(pipeline, tmp_path):
    with pytest.raises(ValueError, match="ONNX export in bf16 is not supported: use fp32 or fp16"):
        onnx_export.export_model(random_pipeline("tiny", dtype="bf16"), tmp_path / "a.onnx", SIZE)
    official = random_pipeline("tiny")
    official.unet.fftblock.dft = "fft"
    with pytest.raises(ValueError, match="DFT form is 'fft'; only 'matmul' exports"):
        onnx_export.export_model(official, tmp_path / "b.onnx", SIZE)
    compiled = random_pipeline("tiny")
    compiled.compiled = True
    with pytest.raises(ValueError, match="export an eager pipeline"):
        onnx_export.export_model(compiled, tmp_path / "c.onnx", SIZE)
    assert not list(tmp_path.iterdir())  # nothing half-written
    (tmp_path / "plain.onnx").write_text("not a model")
    with pytest.raises(ValueError, match="is not an ONNX model"):
        onnx_export.read_info(tmp_path / "plain.onnx")
    with pytest.raises(ValueError, match="does not exist"):
        onnx_export.read_info(tmp_path / "none.onnx")


@pytest.mark.parametrize("shape, groups, affine", [((2, 16, 9, 11), 8, True), ((1, 32, 70), 4, True),
                                                    ((2, 12, 5, 6), 3, False)])
def test_exported_group_norm_is_group_norm(shape, groups, affine):
    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(groups, shape[1], affine=affine)
    if affine:
        torch.nn.init.normal_(norm.weight)
        torch.nn.init.normal_(norm.bias)
    x = torch.randn(*shape) * 3 + 2
    with torch.no_grad():
        assert torch.allclose(onnx_export._group_norm_by_axes(norm, x), norm(x), atol=2e-6)
        assert onnx_export._group_norm_by_axes(norm, x.half()).dtype == torch.float16
