"""One GPU session: the CUDA tests, then the benchmark matrix of the speed issue, within a time budget.

Run on the device machine from the repository root (its image has torch, transformers, safetensors, OpenCV,
matplotlib; carry diffusers as a wheel, see docs/performance.md):
    python3 scripts/gpu_benchmark.py --out "$OUT" --budget 480
Writes into --out: gpu_tests.log, bench.jsonl (one JSON line per configuration), performance.md (the table).
Configurations run in order of importance and stop when the budget (seconds) is spent.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

MATRIX = [  # (label, bench arguments); sizes are WIDTHxHEIGHT
    ("eager fp32 640x480", ["--dtype", "fp32"]),
    ("eager bf16 640x480", ["--dtype", "bf16"]),
    ("eager fp16 640x480", ["--dtype", "fp16"]),
    ("graphs bf16 640x480", ["--dtype", "bf16", "--backend", "cuda_graphs"]),
    ("graphs bf16 640x480 batch 4", ["--dtype", "bf16", "--backend", "cuda_graphs", "--batch", "4"]),
    ("graphs fp16 640x480", ["--dtype", "fp16", "--backend", "cuda_graphs"]),
    ("compile bf16 640x480", ["--dtype", "bf16", "--backend", "compile"]),
    ("graphs bf16 768x576", ["--dtype", "bf16", "--backend", "cuda_graphs", "--sizes", "768x576"]),
    ("eager bf16 768x576", ["--dtype", "bf16", "--sizes", "768x576"]),
    ("compile fp16 640x480", ["--dtype", "fp16", "--backend", "compile"]),
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for the whole run")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.budget
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "test/test_gpu.py", "test/test_acceleration.py"],
                           capture_output=True, text=True, timeout=max(60.0, args.budget / 4))
    (args.out / "gpu_tests.log").write_text(tests.stdout + tests.stderr)
    print(tests.stdout[-2000:])
    rows = []
    with open(args.out / "bench.jsonl", "w") as jsonl:
        for label, extra in MATRIX:
            left = deadline - time.monotonic()
            if left < 60:
                print(f"budget spent: skipping {label} and the rest")
                break
            target = args.out / "one.json"
            command = [sys.executable, "-m", "depthmaster_ros.tools.bench", "--random-full", "--device", "cuda",
                       "--iterations", "20", "--warmup", "3", "--json", str(target), *extra]
            try:
                result = subprocess.run(command, capture_output=True, text=True, timeout=left)
            except subprocess.TimeoutExpired:
                print(f"{label}: out of time")
                break
            print(f"== {label}\n{result.stdout[-1500:]}{result.stderr[-800:] if result.returncode else ''}")
            if result.returncode == 0:
                data = json.loads(target.read_text())
                data["label"] = label
                jsonl.write(json.dumps(data) + "\n")
                rows.append(data)
    device = rows[0]["device"] if rows else "unknown"
    lines = [f"# GPU benchmark ({device}, {datetime.date.today()})", "",
             "Random full-size weights (cost does not depend on them). Per frame, p50.", "",
             "| configuration | model ms | encode | U-Net | decode | post+cloud+msgs | TFLOP/s | peak MiB | max err vs fp32 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for r in row["results"]:
            s = r["stages"]
            post = sum(s[k]["p50_ms"] for k in ("postprocess", "cloud", "message build") if k in s)
            err = r.get("max_abs_error_vs_fp32")
            lines.append(f"| {row['label']} | {r['model_p50_ms']:.2f} | {s['encode']['p50_ms']:.2f} | "
                         f"{s['unet']['p50_ms']:.2f} | {s['decode']['p50_ms']:.2f} | {post:.2f} | "
                         f"{r['achieved_tflops']:.0f} | {r.get('peak_gpu_memory_mb', 0):.0f} | "
                         f"{'-' if err is None else f'{err:.1e}'} |")
    (args.out / "performance.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
