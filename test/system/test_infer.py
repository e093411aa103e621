"""depthmaster-infer end to end, as a user runs it (installed console script, separate process)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

BIN = Path(sys.executable).parent


def run(tool, *args):
    return subprocess.run([str(BIN / tool), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_infer_writes_outputs_and_skips_corrupt_file(tmp_path, tiny_checkpoint, pipeline, rng):
    inputs = tmp_path / "in"
    inputs.mkdir()
    images = {"a": rng.integers(0, 256, (40, 56, 3), dtype=np.uint8),
              "b": rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)}
    Image.fromarray(images["a"]).save(inputs / "a.png")
    Image.fromarray(images["b"]).save(inputs / "b.jpg", quality=100)
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (inputs / "notes.txt").write_text("ignored: not an image suffix")
    gray = tmp_path / "gray.png"
    Image.fromarray(images["a"][..., 0]).save(gray)

    result = run("depthmaster-infer", "--checkpoint", tiny_checkpoint, "--processing-res", "64",
                 "--output", tmp_path / "out", inputs, gray, tmp_path / "missing.png")

    assert result.returncode == 1, result.stderr
    assert "RANDOM weights" in result.stderr
    assert "broken.png: cannot read image" in result.stderr
    assert "missing.png: no such file or folder" in result.stderr
    assert "3 image(s) written" in result.stderr and "2 failed" in result.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{stem}_{kind}" for stem in ("a", "b", "gray") for kind in ("pred.npy", "pred.png", "colored.png"))

    pred = np.load(out / "a_pred.npy")
    assert pred.dtype == np.float32 and pred.shape == (40, 56)
    assert np.abs(pred - pipeline(images["a"], processing_res=64)).max() < 1e-5
    png16 = np.asarray(Image.open(out / "a_pred.png"))
    assert png16.dtype == np.uint16 and np.array_equal(png16, (pred * 65535.0).astype(np.uint16))
    colored = np.asarray(Image.open(out / "a_colored.png"))
    assert colored.shape == (40, 56, 3) and colored.dtype == np.uint8
    gray_expected = pipeline(np.repeat(images["a"][..., :1], 3, axis=2), processing_res=64)
    assert np.abs(np.load(out / "gray_pred.npy") - gray_expected).max() < 1e-5


def test_infer_bad_checkpoint_exits_2_with_reason(tmp_path):
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    result = run("depthmaster-infer", "--checkpoint", tmp_path / "nowhere", "--output", tmp_path / "o", image)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "hf download zysong212/DepthMaster" in result.stderr
    result = run("depthmaster-infer", "--output", tmp_path / "o", image)  # default repo id, offline, not cached
    assert result.returncode == 2 and "not in the Hugging Face cache" in result.stderr


def test_duplicate_stems_get_distinct_outputs(tmp_path, tiny_checkpoint):
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.full((16, 16, 3), 40 if folder == "one" else 200, np.uint8)).save(tmp_path / folder / "f.png")
    result = run("depthmaster-infer", "--checkpoint", tiny_checkpoint, "--processing-res", "0",
                 "--output", tmp_path / "out", tmp_path / "one", tmp_path / "two")
    assert result.returncode == 0, result.stderr
    assert {p.name for p in (tmp_path / "out").glob("*.npy")} == {"f_pred.npy", "f_2_pred.npy"}


def test_make_tiny_checkpoint_and_sample_image_clis(tmp_path):
    result = run("depthmaster-make-tiny-checkpoint", tmp_path / "ckpt", "--unet-format", "safetensors")
    assert result.returncode == 0 and "RANDOM" in result.stdout
    assert (tmp_path / "ckpt/unet/diffusion_pytorch_model.safetensors").is_file()
    result = run("depthmaster-make-sample-image", tmp_path / "s.png", "--width", "64", "--height", "48")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "s.png").size == (64, 48)
    assert np.load(tmp_path / "s_depth.npy").shape == (48, 64)
    shutil.rmtree(tmp_path / "ckpt")
