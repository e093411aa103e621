"""depthmaster-eval as a command: end to end with rescoring, and --temporal on the generated sequences."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


from eval_fixtures import write_datasets

FRAMES = 2


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_data")
    return root, write_datasets(root, FRAMES)


BIN = Path(sys.executable).parent


def test_command_line_end_to_end_and_rescoring(data, tiny_checkpoint, tmp_path):
    root, _ = data
    command = [str(BIN / "depthmaster-eval"), "--checkpoint", str(tiny_checkpoint), "--dataset", "nyu",
               "--data-root", str(root), "--processing-res", "64", "--save-predictions", str(tmp_path / "pred"),
               "--output", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "RANDOM weights" in result.stderr and "| abs_rel |" in result.stdout and "5.0 %" in result.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["images"] == 2 and summary["predicted_now"] == 2 and summary["processing_res"] == 64
    rows = (tmp_path / "out" / "per_image.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("index,image,abs_rel")
    assert len(list((tmp_path / "pred").glob("*.npy"))) == 2

    # Re-scoring the saved predictions with another alignment needs no model run.
    result = subprocess.run(command[:-2] + ["--output", str(tmp_path / "again"), "--alignment", "least_square"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert again["predicted_now"] == 0 and again["alignment"] == "least_square"
    assert again["metrics"]["abs_rel"] != summary["metrics"]["abs_rel"]


def test_command_line_temporal_on_the_generated_sequences(tmp_path):
    """--temporal --synthetic: the temporal stage's tables on the sample sequences, no model; the printed numbers
    are those of temporal.json."""
    result = subprocess.run([str(BIN / "depthmaster-eval"), "--temporal", "--synthetic", "--size", "64x48",
                             "--frames", "6", "--output", str(tmp_path / "out")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "out" / "temporal.json").read_text())
    assert list(results) == ["moving camera", "static camera", "approaching object", "scene cut"]
    assert (tmp_path / "out" / "temporal.md").read_text() in result.stdout
    for name, rows in results.items():
        assert f"### {name}: 6 frames at 10 Hz, 64x48, simulated drifting predictions" in result.stdout
        by_mode = {(row["setup"], row["temporal_mode"]): row for row in rows}
        off, on = by_mode["sparse_depth", "off"], by_mode["sparse_depth", "align_smooth"]
        assert f"| sparse_depth | align_smooth | {on['flicker'] * 100:.2f} % | " \
               f"{off['flicker'] / on['flicker']:.1f}x lower | {on['abs_rel'] * 100:.2f} % |" in result.stdout
        assert on["flicker"] < off["flicker"]
    assert all(row["reset_after_cut"] == 0 for row in results["scene cut"] if row["temporal_mode"] != "off")
    missing = subprocess.run([str(BIN / "depthmaster-eval"), "--synthetic"], capture_output=True, text=True,
                             timeout=300)
    assert missing.returncode == 2 and "--dataset and --data-root are required (or --temporal)" in missing.stderr


