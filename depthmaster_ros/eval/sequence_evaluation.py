"""A sequence with known depth and camera poses through the frame engine, once per temporal mode and scale setup,
scored for temporal consistency (the project's flicker metric, ``temporal.py``; the field's TAE and metric TAE,
``tae.py``) and accuracy (AbsRel): the measurement behind the temporal stage's default, printed by
``depthmaster-bench --temporal`` and written by ``depthmaster-eval --temporal``.

Frames are any objects with ``stamp_ns``, ``rgb``, ``truth`` (meters, non-finite where unknown), ``pose``
(camera -> world: (rotation, position) or 4 x 4), ``cut`` (the first frame of another scene), optionally
``moving`` (a mask of moving objects' pixels) and, without a model, ``prediction`` (the relative map to use
instead of the model's).
The model (if any) runs once per frame; every configuration then finishes the same maps through its own engine
stream, in stamp order, as the node would.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..processing_config import ProcessingConfig
from ..engine.engine import FrameEngine
from ..engine.job import FrameJob
from ..engine.temporal_stage import MODES, TemporalStage
from ..scale.robust_fit import robust_fit
from .tae import SYNTHETIC_TAE, TaeProtocol, metric_tae, tae
from .temporal import sequence_scores


@dataclass(frozen=True)
class ScaleSetup:
    """A scale mode with its settings (``values``: processing parameters) and its per-frame inputs
    (``measurements[k]``: the scale source's inputs for frame k; empty: none). ``fixed`` without ``scale`` is
    calibrated on the first frame's raw prediction against its truth (what depthmaster-calibrate does)."""

    name: str
    values: dict
    measurements: tuple = field(default=(), compare=False)


def model_maps(frames, config: ProcessingConfig, backend=None) -> list:
    """Each frame's raw relative map: the model's (``backend``) or the frame's own ``prediction``."""
    if backend is None:
        return [torch.from_numpy(np.asarray(frame.prediction, dtype=np.float32)) for frame in frames]
    engine = FrameEngine(backend)
    return [engine.infer([FrameJob("sequence", frame.stamp_ns, frame.rgb, config)])[0] for frame in frames]


def first_frame_calibration(relative, truth) -> dict:
    """The fixed mode's scale and shift, fitted robustly on one frame against its true depth."""
    relative = relative.float().cpu().numpy() if hasattr(relative, "cpu") else np.asarray(relative)
    outcome = robust_fit(relative, truth, "fixed")
    if outcome.fit is None:
        raise ValueError(f"cannot calibrate the fixed mode on the first frame: {outcome.reason}")
    return {"scale": outcome.fit.scale, "shift": outcome.fit.shift}


def run_configuration(frames, maps, camera, config: ProcessingConfig, measurements=()) -> tuple[list, dict]:
    """The products of every frame of one configuration (a fresh engine stream, in frame order), and the median
    milliseconds per frame of the stages and the depth output (the engine's ``finish``: ``finish_ms``) and of the
    temporal stage alone (``temporal_ms``)."""
    engine = FrameEngine(None)
    temporal = engine.stream("sequence").stage(TemporalStage.name)
    process, stage_seconds = temporal.process, []

    def timed(frame):
        began = time.perf_counter()
        process(frame)
        stage_seconds.append(time.perf_counter() - began)

    temporal.process = timed
    products, seconds = [], []
    for index, (frame, relative) in enumerate(zip(frames, maps)):
        job = FrameJob("sequence", frame.stamp_ns, frame.rgb, config, camera=camera,
                       measurements=measurements[index] if measurements else {}, outputs={"depth", "scale"})
        began = time.perf_counter()
        products.append(engine.finish(job, relative))
        seconds.append(time.perf_counter() - began)
    return products, {"finish_ms": float(np.median(seconds)) * 1000.0,
                      "temporal_ms": float(np.median(stage_seconds)) * 1000.0}


def evaluate_sequence(frames, camera, setups, temporal_modes=MODES, base: dict | None = None,
                      backend=None, protocol: TaeProtocol = SYNTHETIC_TAE, tail: int = 0) -> list[dict]:
    """One row per (setup, temporal mode): flicker, TAE and metric TAE (``protocol``: crop and depth range),
    AbsRel (and ``abs_rel_tail``: over the last ``tail`` frames, e.g. where a loop has come back), frames without
    metric depth, the temporal stage's resets and, after a scene cut, how many frames after it the stage reset
    (0: at the cut's first frame), the stage's cost. A setup that cannot run (the fixed mode's calibration failed)
    gives one row with the reason in ``skipped``."""
    base = {"max_range": 1000.0, **(base or {})}
    maps = model_maps(frames, ProcessingConfig(**base), backend)
    truths = [frame.truth for frame in frames]
    poses = [frame.pose if isinstance(frame.pose, tuple) else _pose_pair(frame.pose) for frame in frames]
    cuts = [index for index, frame in enumerate(frames) if frame.cut]
    moving = [getattr(frame, "moving", None) for frame in frames]
    rows = []
    for setup in setups:
        values = dict(setup.values)
        if values.get("scale_mode") == "fixed" and "scale" not in values:
            try:
                values.update(first_frame_calibration(maps[0], truths[0]))
            except ValueError as exc:  # e.g. a model with random weights: the other setups still run
                rows.append({"setup": setup.name, "temporal_mode": "-", "skipped": str(exc), "cut": bool(cuts)})
                continue
        for mode in temporal_modes:
            config = ProcessingConfig(**{**base, **values, "temporal_mode": mode})
            products, timing = run_configuration(frames, maps, camera, config, setup.measurements)
            failed = [p.failed.detail for p in products if p.failed is not None]
            if failed:
                raise RuntimeError(f"{setup.name}, temporal_mode {mode}: a frame failed: {failed[0]}")
            depths = [p.depth for p in products]
            scores = sequence_scores(depths, truths, poses, camera.K, cuts, moving)
            reports = [p.stage_reports.get(TemporalStage.name) for p in products]
            resets = [index for index, report in enumerate(reports) if report is not None and report.reset]
            after_cut = None
            if cuts:
                later = [index - cuts[0] for index in resets if index >= cuts[0]]
                after_cut = later[0] if later else None
            scenes = _scenes(depths, truths, poses, cuts)  # TAE: one sequence per scene, as its protocol scores
            per_frame = scores["abs_rel_per_frame"]
            rows.append({"setup": setup.name, "temporal_mode": mode, "flicker": scores["flicker"],
                         "tae": _mean([tae(*scene, camera.K, protocol) for scene in scenes]),
                         "metric_tae": _mean([metric_tae(*scene, camera.K, protocol) for scene in scenes]),
                         "abs_rel": scores["abs_rel"], "abs_rel_moving": scores["abs_rel_moving"],
                         "abs_rel_tail": float(np.mean(per_frame[-tail:])) if tail and per_frame else math.nan,
                         "tail": tail, "pairs": scores["pairs"],
                         "frames_without_depth": sum(depth is None for depth in depths),
                         "resets": max(len(resets) - 1, 0), "cut": bool(cuts), "reset_after_cut": after_cut,
                         **timing,
                         "flicker_per_pair": scores["flicker_per_pair"],
                         "abs_rel_per_frame": per_frame})
    return rows


def _pose_pair(matrix) -> tuple[np.ndarray, np.ndarray]:
    matrix = np.asarray(matrix, dtype=np.float64)
    return matrix[:3, :3], matrix[:3, 3]


def _scenes(depths, truths, poses, cuts) -> list[tuple]:
    """(depths, truths, poses) of each part of the sequence between scene cuts."""
    bounds = [0, *sorted(cuts), len(depths)]
    return [(depths[a:b], truths[a:b], poses[a:b]) for a, b in zip(bounds, bounds[1:]) if b > a]


def _mean(values) -> float:
    finite = [value for value in values if math.isfinite(value)]
    return float(np.mean(finite)) if finite else math.nan


def rows_table(rows: list[dict], title: str) -> str:
    """A markdown table of :func:`evaluate_sequence`'s rows, with each setup's flicker reduction against off."""
    off = {row["setup"]: row for row in rows if row["temporal_mode"] == "off"}
    skipped = [row for row in rows if "skipped" in row]
    rows = [row for row in rows if "skipped" not in row]
    cut = any(row["cut"] for row in rows)
    moving = any(not math.isnan(row["abs_rel_moving"]) for row in rows)
    tail = max((row.get("tail", 0) for row in rows), default=0)
    header = ["scale mode", "temporal_mode", "flicker", "vs off", "AbsRel"]
    header += ([f"AbsRel, last {tail} frames"] if tail else []) + ["TAE", "metric TAE", "no depth", "resets",
                                                                    "ms/frame", "stage ms/frame"]
    header += (["AbsRel of the moving object"] if moving else []) + (["reset after the cut"] if cut else [])
    lines = [title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        reference = off.get(row["setup"])
        ratio = reference["flicker"] / row["flicker"] if reference and row["flicker"] > 0 else math.nan
        cells = [row["setup"], row["temporal_mode"], f"{row['flicker'] * 100:.2f} %",
                 "" if row["temporal_mode"] == "off" or not math.isfinite(ratio) else f"{ratio:.1f}x lower",
                 f"{row['abs_rel'] * 100:.2f} %"]
        if tail:
            cells.append(f"{row['abs_rel_tail'] * 100:.2f} %")
        cells += [f"{row['tae']:.3f}", f"{row['metric_tae']:.3f}", str(row["frames_without_depth"]),
                  str(row["resets"]), f"{row['finish_ms']:.1f}",
                  "-" if row["temporal_mode"] == "off" else f"{row['temporal_ms']:.2f}"]
        if moving:
            cells.append(f"{row['abs_rel_moving'] * 100:.2f} %")
        if cut:
            cells.append("-" if row["reset_after_cut"] is None else f"frame {row['reset_after_cut']}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [f"\n{row['setup']}: not run: {row['skipped']}" for row in skipped]
    return "\n".join(lines) + "\n"
