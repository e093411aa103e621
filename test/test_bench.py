import json
import subprocess
import sys
from pathlib import Path

STAGES = ["preprocess", "encode", "unet", "decode", "postprocess", "cloud", "message build"]


def test_bench_prints_every_stage(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([str(Path(sys.executable).parent / "depthmaster-bench"), "--random-tiny", "--sizes",
                             "48x64,40x56", "--batch", "2", "--iterations", "3", "--warmup", "1", "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for stage in STAGES:
        assert stage in result.stdout
    data = json.loads(out.read_text())
    assert [r["size"] for r in data["results"]] == ["48x64", "40x56"]
    for entry in data["results"]:
        assert list(entry["stages"]) == STAGES and entry["batch"] == 2
        assert all(0 < s["p50_ms"] <= s["p95_ms"] for s in entry["stages"].values())
        assert abs(entry["total_p50_ms"] - sum(s["p50_ms"] for s in entry["stages"].values())) < 1e-9


def test_bench_rejects_bad_sizes():
    result = subprocess.run([str(Path(sys.executable).parent / "depthmaster-bench"), "--random-tiny", "--sizes", "4x"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "is not HEIGHTxWIDTH" in result.stderr
