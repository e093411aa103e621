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
    """--temporal --synthetic: the temporal stage's tables on the sample sequences (the long loop shortened to
    3 s), no model; the printed numbers are those of temporal.json."""
    result = subprocess.run([str(BIN / "depthmaster-eval"), "--temporal", "--synthetic", "--size", "64x48",
                             "--frames", "6", "--loop-seconds", "3", "--output", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "out" / "temporal.json").read_text())
    assert list(results) == ["moving camera", "static camera", "approaching object", "scene cut", "long loop"]
    assert (tmp_path / "out" / "temporal.md").read_text() in result.stdout
    for name, rows in results.items():
        what = "31 frames at 10 Hz (3 s: 0.31 m out and back to the start)" if name == "long loop" else \
            "6 frames at 10 Hz"
        assert f"### {name}: {what}, 64x48, simulated drifting predictions" in result.stdout
        by_mode = {(row["setup"], row["temporal_mode"]): row for row in rows}
        off, on = by_mode["sparse_depth", "off"], by_mode["sparse_depth", "align_smooth"]
        tail = f"{on['abs_rel_tail'] * 100:.2f} % | " if name == "long loop" else ""
        assert f"| sparse_depth | align_smooth | {on['flicker'] * 100:.2f} % | " \
               f"{off['flicker'] / on['flicker']:.1f}x lower | {on['abs_rel'] * 100:.2f} % | {tail}" \
               f"{on['tae']:.3f} | {on['metric_tae']:.3f} |" in result.stdout
        assert on["flicker"] < off["flicker"] and on["tae"] < off["tae"]
    assert all(row["reset_after_cut"] == 0 for row in results["scene cut"] if row["temporal_mode"] != "off")
    missing = subprocess.run([str(BIN / "depthmaster-eval"), "--synthetic"], capture_output=True, text=True,
                             timeout=300)
    assert missing.returncode == 2 and "--dataset and --data-root are required (or --temporal)" in missing.stderr


def test_command_line_temporal_on_scannet_layout_scenes(tiny_checkpoint, tmp_path):
    """--temporal --data-root: the model (random weights: said so) on a scene in the ScanNet layout made from the
    sample scene, under TAE's ScanNet protocol (frames 10 on); a folder that is not one fails in one line."""
    import numpy as np

    from depthmaster_ros.eval.scannet_sequences import write_scene
    from depthmaster_ros.samples.sample_scene import PinholeCamera, render, view_pose

    pinhole = PinholeCamera.with_size(64, 48)
    times = [k / 30 for k in range(13)]
    views = [render(pinhole, t=t) for t in times]
    write_scene(tmp_path / "data" / "scene0707_00", [rgb for rgb, _ in views], [truth for _, truth in views],
                [view_pose(t) for t in times], pinhole.K)
    command = [str(BIN / "depthmaster-eval"), "--temporal", "--checkpoint", str(tiny_checkpoint), "--processing-res",
               "64", "--data-root", str(tmp_path / "data"), "--output", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "RANDOM weights" in result.stderr and "scene0707_00: 3 frames" in result.stderr
    results = json.loads((tmp_path / "out" / "temporal.json").read_text())
    rows = results["scenes"]["scene0707_00"]
    ran = [row for row in rows if "skipped" not in row]
    assert {row["setup"] for row in ran} >= {"sparse_depth"} and len(ran) in (3, 6)
    for row in ran:  # random weights: a frame whose scale cannot be fitted has no depth, and no TAE without two
        assert row["frames_without_depth"] == 3 or np.isfinite(row["tae"]) and np.isfinite(row["metric_tae"])
    assert [(row["setup"], row["temporal_mode"]) for row in results["mean"] if "skipped" not in row] == \
        [(row["setup"], row["temporal_mode"]) for row in ran]
    assert "### ScanNet layout: 1 scenes, frames [10:180] at 30 Hz" in result.stdout
    assert "crop 8/8/11/11 px (top/bottom/left/right), depth range 10 m" in result.stdout
    for bad, message in ((["--data-root", str(tmp_path / "nowhere")], "no such folder"),
                         (["--data-root", str(tmp_path / "data"), "--synthetic"], "need the model")):
        failed = subprocess.run([str(BIN / "depthmaster-eval"), "--temporal", *bad], capture_output=True, text=True,
                                timeout=300)
        assert failed.returncode == 2 and message in failed.stderr and "Traceback" not in failed.stderr


