import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

BIN = Path(sys.executable).parent


def run(*args):
    return subprocess.run([str(BIN / "depthmaster-calibrate"), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_calibration_recovers_known_scale(tmp_path, tiny_checkpoint, pipeline, rng):
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "frame.png")
    relative = pipeline(image, processing_res=64).astype(np.float64)
    depth = 1.0 / (0.7 * relative + 0.05) ** 2
    outliers = rng.random(depth.shape) < 0.3
    depth[outliers] = rng.uniform(0.5, 50, int(outliers.sum()))
    np.save(tmp_path / "depth.npy", depth)
    result = run(tmp_path / "frame.png", tmp_path / "depth.npy", "--checkpoint", tiny_checkpoint,
                 "--processing-res", "64")
    assert result.returncode == 0, result.stderr
    assert "RANDOM weights" in result.stderr
    values = dict(line.split(": ") for line in result.stdout.splitlines() if line.strip().startswith(("scale:",
                                                                                                          "shift:")))
    values = {k.strip(): float(v) for k, v in values.items()}
    assert abs(values["scale"] - 0.7) < 1e-4 and abs(values["shift"] - 0.05) < 1e-4

    Image.fromarray((np.nan_to_num(depth, posinf=0) * 1000).clip(0, 65535).astype(np.uint16)).save(tmp_path / "d.png")
    result = run(tmp_path / "frame.png", tmp_path / "d.png", "--checkpoint", tiny_checkpoint, "--processing-res", "64")
    assert result.returncode == 0 and "scale 0.70" in result.stdout  # millimeter rounding only


def test_calibration_errors(tmp_path, tiny_checkpoint):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "f.png")
    np.save(tmp_path / "d.npy", np.ones((4, 4)))
    result = run(tmp_path / "f.png", tmp_path / "d.npy", "--checkpoint", tiny_checkpoint)
    assert result.returncode == 2 and "the depth map is 4x4 but the image is 8x8" in result.stderr
    np.save(tmp_path / "d.npy", np.full((8, 8), np.nan))
    result = run(tmp_path / "f.png", tmp_path / "d.npy", "--checkpoint", tiny_checkpoint, "--processing-res", "0")
    assert result.returncode == 1 and "no fit: only 0 valid" in result.stderr
