"""The onnxruntime backend end to end: depthmaster-export on the command line, the node and depthmaster-bag with
backend onnxruntime (their maps against PyTorch's), the fleet, the benchmark, the export cache, fp16, external data,
imports without torch, and scripts/fe_forms.py (docs/jetson-tensorrt.md's export block: test_readme.py). Tests that
export the model again, tens of seconds each, are here rather than in the fast tier."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from depthmaster_ros.model import onnx_backend, onnx_export
from depthmaster_ros.model.backends import ModelConfig, PipelineBackend, create_backend

from node_process import image_array, sample_frame
from photographs import grace_hopper
from bag_helpers import SIZE, params, read_all, run_bag
from test_node import make_client, request, start_node

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
TOL = 1e-4  # onnxruntime vs eager, [0, 1] maps


def config(checkpoint, cache, **changes):
    return ModelConfig(**{"checkpoint": str(checkpoint), "device": "cpu", "dtype": "fp32", "backend": "onnxruntime",
                          "options": {"onnx_cache": str(cache)}, **changes})


def test_export_command(tiny_checkpoint, pipeline, tmp_path):
    output = tmp_path / "model.onnx"
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(grace_hopper()).save(tmp_path / "photo.png")
    result = subprocess.run([str(BIN / "depthmaster-export"), "--checkpoint", str(tiny_checkpoint), "--size",
                             "512x600", "--processing-res", "96", "--output", str(output), "--image",
                             str(tmp_path / "photo.png"), "--check-batch", "2"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "RANDOM weights" in result.stderr
    assert "512x600 images at processing_res 96: model at 81x96 (WxH), fp32, dynamic batch" in result.stdout
    assert f"wrote {output} (" in result.stdout and "MiB) in " in result.stdout
    difference = float(re.search(r"batch 2: max \|difference\| (\S+) of the \[0, 1\] map", result.stdout).group(1))
    assert difference < TOL
    assert onnx_export.read_info(output).processing_size == (96, 81)
    served = create_backend(ModelConfig(device="cpu", backend="onnxruntime", options={"onnx_model": str(output)}))
    expected = PipelineBackend(pipeline).infer([grace_hopper()], 96)[0]
    assert float((served.infer([grace_hopper()], 96)[0] - expected).abs().max()) < TOL

    for argv, message in ((["--dtype", "bf16"], "invalid choice: 'bf16'"),
                          (["--checkpoint", str(tmp_path / "none")], "depthmaster-export: checkpoint folder"),
                          (["--random-tiny", "--checkpoint", "x"], "give one of --checkpoint PATH, --random-full"),
                          (["--random-tiny", "--size", "2000x8", "--processing-res", "1"],
                           "--processing-res: 1 is below the model's smallest useful size 64"),
                          (["--random-tiny", "--size", "16000x8", "--processing-res", "64"],
                           "depthmaster-export: a 8x16000 image at processing_res 64 would be resized to 0x64")):
        result = subprocess.run([str(BIN / "depthmaster-export"), *argv], capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 2 and message in result.stderr, (argv, result.stderr)
        assert "Traceback" not in result.stderr


def test_node_serves_depth_and_points(ros, tiny_checkpoint, pipeline, tmp_path_factory):
    node = start_node(tmp_path_factory, "/onnx", checkpoint=tiny_checkpoint, backend="onnxruntime",
                      scale_mode="fixed", scale=0.6, shift=0.15, warmup_size="64x48")
    client = make_client(node, outputs=("depth", "points", "depth/relative"))
    try:
        rgb, camera = sample_frame(64, 48)
        _, msgs = request(client, rgb, camera, ("depth", "points", "depth/relative"))
    finally:
        client.destroy_node()
        assert node.stop() == 0, node.log()
    assert "on ONNX Runtime" in node.log() and "CPUExecutionProvider" in node.log()
    relative = image_array(msgs["depth/relative"])
    expected = pipeline(rgb, processing_res=64)
    assert np.abs(relative - expected).max() < TOL
    assert np.isfinite(image_array(msgs["depth"])).any() and msgs["points"].width == 64


def test_bag_command(tiny_checkpoint, pipeline, tmp_path):
    from depthmaster_ros.samples.sample_bag import write_sample_bag

    bag = write_sample_bag(tmp_path / "in", frames=3, **SIZE)
    params_file = tmp_path / "p.yaml"
    params_file.write_text("/**:\n  ros__parameters:\n    processing_res: 64\n    scale_mode: fixed\n"
                           f"    temporal_mode: 'off'\n    onnx_cache: {tmp_path / 'cache'}\n    onnx_providers: cpu\n")
    result = subprocess.run([str(BIN / "depthmaster-bag"), str(bag), str(tmp_path / "out"), "--checkpoint",
                             str(tiny_checkpoint), "--params", str(params_file), "--backend", "onnxruntime",
                             "--no-copy-input"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "ONNX Runtime" in result.stderr and "3 frames served" in result.stdout
    assert list((tmp_path / "cache").glob("*/depthmaster_64x48_fp32_v*.onnx"))
    values = params(scale_mode="fixed", temporal_mode="off")
    run_bag(pipeline, bag, tmp_path / "eager", values)[1]()
    ours, eager = read_all(tmp_path / "out"), read_all(tmp_path / "eager")
    assert len(ours["/camera/depth"]) == len(ours["/camera/points"]) == 3
    for (_, got), (_, expected) in zip(ours["/camera/depth/relative"], eager["/camera/depth/relative"]):
        assert np.abs(image_array(got) - image_array(expected)).max() < TOL


def test_fleet_command(tiny_checkpoint, tmp_path):
    """depthmaster-fleet with backend onnxruntime: its model actors export once (one at a time) and write what
    depthmaster-bag writes with the same backend."""
    from depthmaster_ros.samples.sample_bag import write_sample_bag

    archive = tmp_path / "archive"
    write_sample_bag(archive / "bag_a", frames=3, **SIZE)
    params_file = tmp_path / "p.yaml"
    params_file.write_text("/**:\n  ros__parameters:\n    processing_res: 64\n    scale_mode: fixed\n"
                           f"    onnx_cache: {tmp_path / 'cache'}\n")
    options = ["--checkpoint", str(tiny_checkpoint), "--params", str(params_file), "--backend", "onnxruntime",
               "--threads", "1"]
    fleet = subprocess.run([str(BIN / "depthmaster-fleet"), str(archive), "--output", str(tmp_path / "fleet"),
                            *options, "--num-cpus", "2", "--actors", "2"], capture_output=True, text=True,
                           timeout=900, start_new_session=True)
    assert fleet.returncode == 0, fleet.stderr
    single = subprocess.run([str(BIN / "depthmaster-bag"), str(archive / "bag_a"), str(tmp_path / "bag"), *options,
                             "--no-copy-input"], capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr
    assert len(list((tmp_path / "cache").glob("*/*.onnx"))) == 1
    got, expected = read_all(tmp_path / "fleet" / "bag_a"), read_all(tmp_path / "bag")
    assert len(got["/camera/depth/relative"]) == 3
    for (_, a), (_, b) in zip(got["/camera/depth/relative"], expected["/camera/depth/relative"]):
        assert np.array_equal(image_array(a), image_array(b))


def test_bench_command(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([str(BIN / "depthmaster-bench"), "--random-tiny", "--backend", "onnxruntime", "--sizes",
                             "64x48", "--iterations", "2", "--warmup", "1", "--json", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    for text in ("preprocess", "onnxruntime", "postprocess", "TFLOP/s achieved", "max |fast - fp32|"):
        assert text in result.stdout
    (entry,) = __import__("json").loads(out.read_text())["results"]
    assert list(entry["stages"])[:3] == ["preprocess", "onnxruntime", "postprocess"]
    assert 0 < entry["max_abs_error_vs_fp32"] < TOL


def test_export_cache_is_made_once_and_keyed_by_the_weights(tiny_checkpoint, tmp_path, monkeypatch):
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, checkpoint)
    first = create_backend(config(checkpoint, tmp_path / "cache"))
    first.warmup(64, 48, processing_res=64)
    (made,) = (tmp_path / "cache").glob("*/*.onnx")
    assert made.name == f"depthmaster_64x48_fp32_v{onnx_backend.EXPORT_FORMAT}.onnx"
    assert made.parent.name.startswith("ckpt-")

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "export_model", no_export)
    again = create_backend(config(checkpoint, tmp_path / "cache"))
    image = grace_hopper()[:48, :64].copy()
    assert np.array_equal(again.infer([image], 64)[0].numpy(), first.infer([image], 64)[0].numpy())
    monkeypatch.undo()
    weights = next((checkpoint / "unet").glob("diffusion_pytorch_model.*"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # new weights
    changed = create_backend(config(checkpoint, tmp_path / "cache"))
    changed.warmup(64, 48, processing_res=64)
    assert len(list((tmp_path / "cache").glob("*/*.onnx"))) == 2


def test_fp16(tiny_checkpoint, onnx_backend, tmp_path):
    half = create_backend(config(tiny_checkpoint, tmp_path, dtype="fp16"))
    image = grace_hopper()
    got, reference = half.infer([image], 64)[0], onnx_backend.infer([image], 64)[0]
    assert half.precision == "fp16" and "fp16" in half.describe()
    assert 0 < float((got - reference).abs().mean()) < 0.02  # fp16 rounding on random weights
    assert next(tmp_path.glob("*/depthmaster_54x64_fp16_v*.onnx"))
    assert onnx_export.read_info(next(tmp_path.glob("*/*.onnx"))).precision == "fp16"


def test_large_weights_go_to_one_external_data_file(pipeline, onnx_backend, tmp_path, monkeypatch):
    import onnxruntime

    size = (64, 54)
    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 1000)
    path = tmp_path / "external.onnx"
    onnx_export.export_model(pipeline, path, size)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["external.onnx", "external.onnx.data"]
    assert (tmp_path / "external.onnx.data").stat().st_size > path.stat().st_size
    assert onnx_export.file_bytes(path) == path.stat().st_size + (tmp_path / "external.onnx.data").stat().st_size
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, *size)).astype(np.float32)
    outputs = [onnxruntime.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
               for p in (path, onnx_backend.model_path(size))]
    assert np.array_equal(*outputs)


def test_backends_and_parameters_import_neither_torch_nor_onnxruntime():
    code = ("import sys\nimport depthmaster_ros.model.backends, depthmaster_ros.model.onnx_backend, "
            "depthmaster_ros.parameters as p\np.check_values({'onnx_providers': 'cpu'})\n"
            "print('torch' in sys.modules, 'onnxruntime' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_fe_forms_script(tmp_path):
    """scripts/fe_forms.py (the measurement behind docs/method.md) on the tiny architecture."""
    from PIL import Image

    Image.fromarray(grace_hopper()).save(tmp_path / "photo.png")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "fe_forms.py"), "--image",
                             str(tmp_path / "photo.png"), "--preset", "tiny", "--processing-res", "128,96"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("processing 128x109 (HxW), FE grid (2, 2) x 64 channels") and len(lines) == 3
    differences = [float(v) for v in re.findall(r"max ([0-9.e+-]+)", result.stdout)]
    assert len(differences) == 4 and max(differences) < 1e-4
