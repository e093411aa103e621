"""The scale stage: each frame's metric scale from the stream's scale source, fitted robustly and tracked over
time (smoothing, jump reset, hold), or given (fixed); a typed reason when there is none."""

from __future__ import annotations

from ..parameter_spec import ParameterSpec
from ..scale.robust_fit import FitOutcome, robust_fit
from ..scale.source import NONE, get_source, scale_modes
from ..scale.tracker import ScaleTracker
from .job import METRIC_OUTPUTS, Missing, Why
from .stage import Stage


def scale_mode_none() -> Missing:
    """The reason there is no metric output with scale_mode none, naming the modes that give one."""
    others = ", ".join(mode for mode in scale_modes() if mode != NONE)
    return Missing(Why.SCALE_MODE_NONE, f"no metric depth or points: scale_mode is none; set scale_mode to one of "
                                        f"{others}")


class ScaleStage(Stage):
    name = "scale"
    title = "Scale fit and smoothing (live; every fitted mode)"
    parameters = (
        ParameterSpec("scale_min_pairs", 50, "Fewer valid depth/prediction pairs: the frame's fit is rejected.",
                      min_value=2, max_value=1000000),
        ParameterSpec("scale_min_p_spread", 0.05, "The pairs' predictions must span at least this much (5th-95th "
                      "percentile of p), else the fit is rejected (everything at one depth).", min_value=0.0,
                      max_value=1.0),
        ParameterSpec("scale_inlier_threshold", 0.05, "Relative sqrt-disparity residual under which a pair is an "
                      "inlier (0.05 is about 10 % in depth).", min_value=0.001, max_value=1.0),
        ParameterSpec("scale_min_inlier_ratio", 0.3, "Fits with fewer inliers than this fraction are rejected.",
                      min_value=0.0, max_value=1.0),
        ParameterSpec("scale_time_constant", 0.5, "Seconds of exponential smoothing of (s, t) over frames "
                      "(0 = use each frame's fit as is).", min_value=0.0, max_value=60.0),
        ParameterSpec("scale_jump_threshold", 0.25, "A new fit whose depths differ from the smoothed one by more "
                      "than this fraction for 3 frames in a row replaces it (no slow drift after a real change).",
                      min_value=0.01, max_value=10.0),
        ParameterSpec("scale_hold_s", 1.0, "Seconds the last good fit is reused when fits fail; after that metric "
                      "depth and points stop (relative outputs continue).", min_value=0.0, max_value=3600.0),
    )

    def __init__(self):
        self.tracker = ScaleTracker()

    def process(self, frame) -> None:
        job, config = frame.job, frame.job.config
        if not job.outputs & METRIC_OUTPUTS:
            return
        source = get_source(config.scale_mode)
        if source is None:
            frame.scale_status = "scale_mode none: relative outputs only"
            frame.no_scale = scale_mode_none()
            return
        known = source.known_scale(config)
        if known is not None:
            frame.scale, frame.scale_status = known, source.name
            return
        tracker = self.tracker
        if tracker.mode != source.name or frame.rebased:  # a new affine frame: earlier fits do not apply
            tracker.reset(source.name)
        tracker.time_constant = config.scale_time_constant
        tracker.hold_s = config.scale_hold_s
        tracker.jump_threshold = config.scale_jump_threshold
        reason = self._missing_input(frame, source)
        if reason:
            outcome = FitOutcome(None, reason)
        else:
            try:
                p, d = source.pairs(frame.relative_numpy(), frame.camera, job.measurements, config)
            except ValueError as exc:
                outcome = FitOutcome(None, str(exc))
            else:
                outcome = robust_fit(p, d, source.name, config.fit_settings, stamp=job.stamp)
        frame.scale, frame.scale_status = tracker.update(outcome, job.stamp)
        if frame.scale is None:
            why = Why.NO_FIT if tracker.current is None else Why.SCALE_EXPIRED
            frame.no_scale = Missing(why, frame.scale_status)

    @staticmethod
    def _missing_input(frame, source) -> str:
        job = frame.job
        if frame.camera is None:
            return job.camera_missing or "no camera info for this frame"
        for item in source.inputs:
            if not item.optional and job.measurements.get(item.name) is None:
                return job.measurement_notes.get(item.name) or f"no {item.description} for this frame"
        return ""

    def state(self) -> dict:
        return self.tracker.state()

    def restore(self, state: dict) -> None:
        self.tracker.restore(state)
