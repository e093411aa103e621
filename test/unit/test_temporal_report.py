"""The temporal report on ScanNet-layout scenes (bench/temporal_report.py) with a test double of the model whose
maps are an exact affine of the true square-root disparity: through the whole path (the layout read back, the
engine, the protocol's crop), the per-frame output's TAE and metric TAE are those of the true depth itself."""

import math
from dataclasses import replace

import numpy as np
import pytest

from depthmaster_ros.eval.scannet_sequences import read_scene, write_scene
from depthmaster_ros.eval.tae import SCANNET_TAE, metric_tae, tae
from depthmaster_ros.samples.sample_scene import PinholeCamera, render, view_pose
from depthmaster_ros.bench.temporal_report import mean_rows, scannet_report

from fake_backend import FakeBackend, simulate

PROTOCOL = replace(SCANNET_TAE, first=2, end=8)  # 6 frames of each scene (ScanNet's: 170 of the first 20)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scannet")
    pinhole = PinholeCamera.with_size(64, 48)
    for name, start in (("scene0002_00", 2.0), ("scene0001_00", 0.0)):
        times = [start + k / 30 for k in range(9)]
        views = [render(pinhole, t=t) for t in times]
        write_scene(root / name, [rgb for rgb, _ in views], [truth for _, truth in views],
                    [view_pose(t) for t in times], pinhole.K)
    return root


def test_a_perfect_affine_invariant_model_scores_the_truths_own_tae(scenes):
    backend = FakeBackend()
    truths = {}
    for name in ("scene0001_00", "scene0002_00"):
        frames, matrix = read_scene(scenes / name, PROTOCOL)
        for frame in frames:
            backend.register(frame.rgb, simulate(frame.truth))
        truths[name] = frames, matrix
    seen = []
    results, text = scannet_report(scenes, backend, protocol=PROTOCOL, progress=lambda *args: seen.append(args))
    assert seen == [("scene0001_00", 6), ("scene0002_00", 6)] and list(results["scenes"]) == [s for s, _ in seen]
    for name, rows in results["scenes"].items():
        frames, matrix = truths[name]
        depths = [np.where(np.isfinite(f.truth), f.truth, np.inf) for f in frames]
        poses = [f.pose for f in frames]
        floor = metric_tae(depths, [f.truth for f in frames], poses, matrix, PROTOCOL)
        by_mode = {(row["setup"], row["temporal_mode"]): row for row in rows}
        assert set(by_mode) == {(setup, mode) for setup in ("fixed", "sparse_depth")
                                for mode in ("off", "align", "align_smooth")}
        for (setup, mode), row in by_mode.items():  # the model is exact: every mode's depth is about the truth
            assert row["frames_without_depth"] == 0 and row["abs_rel"] < (5e-3 if mode == "align_smooth" else 1e-3)
            assert row["metric_tae"] == pytest.approx(floor, rel=0.05) and row["tae"] == pytest.approx(floor, rel=0.05)
        exact = by_mode["fixed", "off"]  # the calibration recovers the model's affine: the depth is the truth
        assert exact["abs_rel"] < 1e-6 and exact["metric_tae"] == pytest.approx(floor, rel=1e-6)
        assert exact["tae"] == pytest.approx(tae(depths, [f.truth for f in frames], poses, matrix, PROTOCOL), rel=1e-6)
    mean = {(row["setup"], row["temporal_mode"]): row for row in results["mean"]}
    per_scene = [{(r["setup"], r["temporal_mode"]): r for r in rows} for rows in results["scenes"].values()]
    for key, row in mean.items():
        assert row["scenes"] == 2 and math.isclose(row["tae"], np.mean([rows[key]["tae"] for rows in per_scene]))
    assert "### ScanNet layout: 2 scenes, frames [2:8] at 30 Hz" in text and "| fixed | align_smooth |" in text


def test_scene_means_skip_what_did_not_run():
    rows = [[{"setup": "fixed", "temporal_mode": "off", "flicker": 0.1, "tae": 1.0, "metric_tae": 2.0,
              "abs_rel": 0.1, "abs_rel_moving": math.nan, "abs_rel_tail": math.nan, "finish_ms": 1.0,
              "temporal_ms": math.nan, "frames_without_depth": 1, "resets": 0}],
            [{"setup": "fixed", "temporal_mode": "-", "skipped": "cannot calibrate"}]]
    mean = mean_rows(rows)
    assert mean[0]["tae"] == 1.0 and mean[0]["scenes"] == 1 and mean[1]["skipped"] == "cannot calibrate"
