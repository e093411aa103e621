import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
STAGES = ["preprocess", "encode", "unet", "decode", "postprocess", "cloud", "message build"]


def run(*args, timeout=300, **kwargs):
    return subprocess.run([str(BIN / "depthmaster-bench"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def test_bench_prints_every_field(tmp_path):
    out = tmp_path / "bench.json"
    result = run("--random-tiny", "--sizes", "48x64,40x56", "--batch", "2", "--iterations", "3", "--warmup", "1",
                 "--dtype", "bf16", "--json", out)
    assert result.returncode == 0, result.stderr
    for text in STAGES + ["frames/s", "TFLOP/s achieved", "max |fast - fp32|"]:
        assert text in result.stdout
    data = json.loads(out.read_text())
    assert [r["size"] for r in data["results"]] == ["48x64", "40x56"] and data["dtype"] == "bf16"
    for entry in data["results"]:
        assert list(entry["stages"]) == STAGES and entry["batch"] == 2
        assert all(0 < s["p50_ms"] <= s["p95_ms"] for s in entry["stages"].values())
        assert abs(entry["total_p50_ms"] - sum(s["p50_ms"] for s in entry["stages"].values())) < 1e-9
        assert entry["tflop_per_frame"] > 0 and entry["achieved_tflops"] > 0
        assert 0 < entry["max_abs_error_vs_fp32"] < 0.2  # bf16 vs fp32 on random tiny weights


NODE_STAGES = ["input", "waiting", "decode", "pairing", "batch", "model", "cameras before", "stages + render"]


def test_bench_node_mode_with_two_cameras(tmp_path):
    """--node --batch 2: one node serving two cameras (the real tiny model, batched), both answered per frame, and
    where each frame's time goes: the node's timing record and the bench's own timestamps, one clock."""
    env = {**os.environ, "ROS_DOMAIN_ID": str(int(os.environ["ROS_DOMAIN_ID"]) % 100 + 121)}
    result = run("--random-tiny", "--node", "--batch", "2", "--sizes", "48x64", "--iterations", "3", "--warmup", "1",
                 "--json", tmp_path / "node.json", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "48x64, 2 camera(s), outputs depth, points; 3 frames served (0 lost)" in result.stdout
    assert "the engine alone in this process, same model, parameters, cameras and outputs" in result.stdout
    assert "this process (the engine alone, the receiving client): malloc: freed memory kept for reuse" in result.stdout
    for stage in NODE_STAGES:
        assert f"\n  {stage:<18}" in result.stdout
    for topic in ("depth/camera_info", "depth/relative", "depth/colored", "depth/scale"):
        assert f"\n  {topic:<19}   not built (no subscriber)" in result.stdout
    latency = json.loads((tmp_path / "node.json").read_text())["node_latency"]
    assert latency["frames"] == 3 and latency["cameras"] == 2 and 0 < latency["p50_ms"] <= latency["p95_ms"] < 10_000
    assert latency["engine"]["total"] > latency["engine"]["model"] > 0
    assert abs(latency["beyond_engine_p50_ms"] - (latency["p50_ms"] - latency["engine"]["total"])) < 1e-9
    assert [topic for topic, entry in latency["per_output"].items() if entry["built"]] == ["depth", "points"]
    for frame in latency["per_frame"]:
        assert sorted(frame["cameras"]) == ["cam0", "cam1"]
        for camera in frame["cameras"].values():
            # consecutive intervals from the image's publish call to the last output's publish call, each ended by
            # the next one's start: all >= 0, and together no longer than the image stamp -> the last output
            intervals = [camera["stages"][stage] for stage in NODE_STAGES] + [
                value for output in camera["outputs"].values() for value in (output["build"], output["publish"])]
            assert min(intervals) >= 0 and sum(intervals) <= camera["end_to_end"] <= frame["end_to_end"]
            assert sorted(camera["outputs"]) == ["depth", "points"]
            for output in camera["outputs"].values():
                assert 0 < output["callback"] <= camera["end_to_end"]


def test_bench_node_mode_four_cameras_every_output_at_a_rate(tmp_path):
    """--node --batch 4 --outputs all --rate HZ: frames published at that rate whatever the node serves, one node
    serving four cameras with every output subscribed; the frames/s served and what the node's thread works."""
    env = {**os.environ, "ROS_DOMAIN_ID": str(int(os.environ["ROS_DOMAIN_ID"]) % 100 + 131)}
    result = run("--random-tiny", "--node", "--batch", "4", "--outputs", "all", "--rate", "20", "--sizes", "48x64",
                 "--iterations", "8", "--warmup", "2", "--client-malloc", "default", "--json", tmp_path / "node.json",
                 env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    latency = json.loads((tmp_path / "node.json").read_text())["node_latency"]
    outputs = "depth, depth/camera_info, depth/relative, depth/colored, points, depth/scale"
    assert (f"48x64, 4 camera(s), outputs {outputs}; {latency['frames']} frames served ({latency['lost']} not "
            f"served), published at 20 Hz ({latency['published_hz']:.1f} achieved)") in result.stdout
    assert latency["published_hz"] > 0
    assert "this process (the engine alone, the receiving client): malloc: glibc defaults" in result.stdout
    assert latency["cameras"] == 4 and latency["rate_hz"] == 20 and latency["frames"] + latency["lost"] == 8
    assert latency["frames"] >= 1 and latency["served_frames_per_s"] > 0
    assert f"served {latency['served_frames_per_s']:.2f} frames/s per camera" in result.stdout
    assert all(entry["built"] and entry["subscribed"] for entry in latency["per_output"].values())
    for frame in latency["per_frame"]:
        assert sorted(frame["cameras"]) == ["cam0", "cam1", "cam2", "cam3"]
        for camera in frame["cameras"].values():
            assert list(camera["outputs"]) == ["depth", "depth/camera_info", "depth/relative", "depth/colored",
                                               "points", "depth/scale"]
    # the inference thread's work per frame covers the model pass and every camera's stages and outputs
    busy = latency["inference_thread_busy_p50_ms"]
    assert busy >= latency["stages"]["model"]["p50_ms"] > 0
    assert f"works {busy:.1f} ms per frame (p50, all cameras: at most {1000.0 / busy:.1f} frames/s)" in result.stdout


def test_bench_rejects_bad_sizes():
    result = run("--random-tiny", "--sizes", "4x", timeout=120)
    assert result.returncode == 2 and "is not WIDTHxHEIGHT" in result.stderr


def test_bench_temporal_prints_flicker_and_abs_rel(tmp_path):
    """--temporal without a model: the simulated drifting sequences through the engine, per temporal mode."""
    out = tmp_path / "temporal.json"
    result = run("--temporal", "--sizes", "64x48", "--frames", "5", "--noise", "0", "--loop-seconds", "2", "--json",
                 out)
    assert result.returncode == 0, result.stderr
    assert "depthmaster-bench --temporal: no model; 5 frames per sequence" in result.stdout
    assert "pixel noise sd 0.0, seed 0)" in result.stdout
    assert "| scale mode | temporal_mode | flicker | vs off | AbsRel" in result.stdout
    rows = json.loads(out.read_text())["temporal"]["moving camera"]
    assert [(row["setup"], row["temporal_mode"]) for row in rows] == [
        (setup, mode) for setup in ("fixed", "sparse_depth", "ground_plane") for mode in ("off", "align",
                                                                                          "align_smooth")]
    for row in rows:
        assert f"| {row['setup']} | {row['temporal_mode']} | {row['flicker'] * 100:.2f} % |" in result.stdout
        assert row["pairs"] == 4 and row["frames_without_depth"] == 0 and row["finish_ms"] > 0
    loop = json.loads(out.read_text())["temporal"]["long loop"]
    assert len(loop) == 9 and all(row["pairs"] == 20 for row in loop)
    for mode in ("align", "align_smooth"):
        costs = [row["temporal_ms"] for rows in json.loads(out.read_text())["temporal"].values() for row in rows
                 if row["temporal_mode"] == mode]
        assert f"temporal stage, {mode}: {np.median(costs):.2f} ms per frame at 64x48" in result.stdout
    rejected = run("--temporal", "--frames", "1", timeout=120)
    assert rejected.returncode == 2 and "--frames must be >= 2" in rejected.stderr
