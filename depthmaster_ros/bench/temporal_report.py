"""The temporal stage measured on the generated sample sequences, for ``depthmaster-bench --temporal`` and
``depthmaster-eval --temporal``: a moving camera, the same camera standing still and a scene cut, each through the
engine with temporal_mode off, align and align_smooth in every scale mode that applies, scored for flicker and
AbsRel (``eval/temporal.py``). Without a model the predictions are the drifting ones of
``samples/drifting_sequence.py`` (a known answer); with one, the model's on the rendered frames."""

from __future__ import annotations

from ..eval.sequence_evaluation import evaluate_sequence, rows_table
from ..geometry.intrinsics import CameraIntrinsics
from ..samples.drifting_sequence import Drift, sample_scenarios
from ..samples.sample_scene import PinholeCamera


def temporal_report(width: int, height: int, frames: int, backend=None, processing_res: int = 0,
                    drift: Drift = Drift(), seed: int = 0) -> tuple[dict, str]:
    """({scenario: rows}, the markdown tables)."""
    camera = CameraIntrinsics.from_K(width, height, PinholeCamera.with_size(width, height).K)
    source = (f"the model ({backend.describe()})" if backend is not None else
              f"simulated drifting predictions (per-frame gain sd {drift.gain}, offset sd {drift.offset}, "
              f"pixel noise sd {drift.noise}, seed {seed})")
    results, tables = {}, []
    for name, (sequence, setups) in sample_scenarios(width, height, frames, drift, seed).items():
        rows = evaluate_sequence(sequence, camera, setups, base={"processing_res": processing_res}, backend=backend)
        results[name] = rows
        tables.append(rows_table(rows, f"### {name}: {frames} frames at 10 Hz, {width}x{height}, {source}"))
    notes = ("flicker: mean |change of log depth| of static points between consecutive frames beyond the true "
             "change (0 = consistent); AbsRel: of the metric depth as published, per frame; ms/frame: the stages "
             "and the depth output (median).")
    return results, "\n".join(tables) + "\n" + notes + "\n"
