"""The temporal stage measured, for ``depthmaster-bench --temporal`` and ``depthmaster-eval --temporal``:

- on the generated sample sequences (a moving camera, the same camera standing still, an object coming at it, a
  scene cut and the long loop out and back to the start), each through the engine with temporal_mode off, align
  and align_smooth in every scale mode that applies. Without a model the predictions are the drifting ones of
  ``samples/drifting_sequence.py`` (a known answer); with one, the model's on the rendered frames;
- on sequences in the ScanNet layout (``eval/scannet_sequences.py``), with the model, under TAE's ScanNet protocol.

Each row is scored for flicker, TAE, metric TAE and AbsRel (``eval/sequence_evaluation.py``).
"""

from __future__ import annotations

import math

import numpy as np

from ..eval.scannet_sequences import RATE, read_scene, scene_folders
from ..eval.sequence_evaluation import evaluate_sequence, rows_table
from ..eval.tae import SCANNET_TAE, SYNTHETIC_TAE
from ..geometry.intrinsics import CameraIntrinsics
from ..samples.drifting_sequence import LOOP_SECONDS, Drift, loop_reach, sample_scenarios, sample_setups
from ..samples.sample_scene import WALK_SPEED, PinholeCamera

LOOP_TAIL = 10  # the loop's "return": its last second at 10 Hz (the camera within 5 cm of where it started)
NOTES = ("flicker: mean |change of log depth| of static points between consecutive frames beyond the true change "
         "(0 = consistent); TAE: temporal alignment error x100 (Video Depth Anything's protocol: one scale and shift "
         "per sequence in disparity, each consecutive pair reprojected both ways with the true poses, AbsRel; "
         "{protocol}); metric TAE: the same without the alignment; AbsRel: of the metric depth as published, per "
         "frame; ms/frame: the stages and the depth output, stage ms/frame: the temporal stage alone (medians).")


def temporal_report(width: int, height: int, frames: int, backend=None, processing_res: int = 0,
                    drift: Drift = Drift(), seed: int = 0, loop_seconds: float = LOOP_SECONDS) -> tuple[dict, str]:
    """({scenario: rows}, the markdown tables) on the generated sequences."""
    camera = CameraIntrinsics.from_K(width, height, PinholeCamera.with_size(width, height).K)
    source = (f"the model ({backend.describe()})" if backend is not None else
              f"simulated drifting predictions (per-frame gain sd {drift.gain}, offset sd {drift.offset}, "
              f"pixel noise sd {drift.noise}, seed {seed})")
    results, tables = {}, []
    for name, (sequence, setups) in sample_scenarios(width, height, frames, drift, seed, loop_seconds).items():
        loop = name == "long loop"
        rows = evaluate_sequence(sequence, camera, setups, base={"processing_res": processing_res}, backend=backend,
                                 protocol=SYNTHETIC_TAE, tail=LOOP_TAIL if loop else 0)
        results[name] = rows
        what = (f"{len(sequence)} frames at 10 Hz ({loop_seconds:g} s: {loop_reach(loop_seconds) * WALK_SPEED:.2g} m out "
                f"and back to the start)" if loop else f"{frames} frames at 10 Hz")
        tables.append(rows_table(rows, f"### {name}: {what}, {width}x{height}, {source}"))
    protocol = f"synthetic: no crop, depth range {SYNTHETIC_TAE.max_depth:g} m"
    return results, "\n".join(tables) + "\n" + NOTES.format(protocol=protocol) + "\n"


def scannet_report(root, backend, processing_res: int = 0, protocol=SCANNET_TAE, rate: float = RATE,
                   progress=None) -> tuple[dict, str]:
    """({"scenes": {scene: rows}, "mean": rows}, the markdown table of the means over the scenes): the model on
    ScanNet-layout sequences, fixed (calibrated on each scene's first scored frame) and sparse_depth (a 16-row
    "LiDAR" sampled from the true depth), each temporal mode."""
    scenes = {}
    for folder in scene_folders(root, protocol):
        frames, matrix = read_scene(folder, protocol, rate)
        height, width = frames[0].truth.shape
        camera = CameraIntrinsics.from_K(width, height, matrix)
        setups = sample_setups(frames)[:2]  # fixed, sparse_depth: ground_plane needs a known camera height
        scenes[folder.name] = evaluate_sequence(frames, camera, setups, base={"processing_res": processing_res},
                                                backend=backend, protocol=protocol)
        if progress is not None:
            progress(folder.name, len(frames))
    mean = mean_rows(list(scenes.values()))
    first, end = protocol.first, protocol.end
    title = (f"### ScanNet layout: {len(scenes)} scenes, frames [{first}:{end}] at {rate:g} Hz, "
             f"the model ({backend.describe()}); means over the scenes")
    crop = "/".join(str(margin) for margin in protocol.crop)
    notes = NOTES.format(protocol=f"{protocol.name}: crop {crop} px (top/bottom/left/right), depth range "
                                  f"{protocol.max_depth:g} m")
    return {"scenes": scenes, "mean": mean}, rows_table(mean, title) + "\n" + notes + "\n"


def mean_rows(scenes: list[list[dict]]) -> list[dict]:
    """Per (setup, temporal mode), the mean of each number over the scenes that ran it."""
    by_key: dict[tuple, list[dict]] = {}
    skipped = []
    for rows in scenes:
        for row in rows:
            if "skipped" in row:
                skipped.append(row)
            else:
                by_key.setdefault((row["setup"], row["temporal_mode"]), []).append(row)
    mean = []
    for (setup, mode), rows in by_key.items():
        row = {"setup": setup, "temporal_mode": mode, "scenes": len(rows), "cut": False, "reset_after_cut": None,
               "tail": 0}
        for key in ("flicker", "tae", "metric_tae", "abs_rel", "abs_rel_moving", "abs_rel_tail", "finish_ms",
                    "temporal_ms"):
            values = [r[key] for r in rows if math.isfinite(r[key])]
            row[key] = float(np.mean(values)) if values else math.nan
        for key in ("frames_without_depth", "resets"):
            row[key] = int(sum(r[key] for r in rows))
        mean.append(row)
    return mean + skipped[:1]
