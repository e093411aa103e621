"""The scale over time: smoothing of per-frame fits, a reset on a large persistent jump, and a hold of the last
good fit while fits fail. Its state saves and restores exactly (a resumed bag equals an uninterrupted one)."""

from __future__ import annotations

import math
from dataclasses import asdict, replace

from .robust_fit import FitOutcome, ScaleFit


class ScaleTracker:
    """Smooths per-frame fits over time and holds the last good one while fits fail.

    ``time_constant`` (s): exponential smoothing of (s, t) by frame stamps (0 = none). A fit whose depth differs
    from the smoothed one by more than ``jump_threshold`` (relative, at both ends of its p range) for
    ``jump_frames`` frames in a row replaces it outright. Without a new fit the smoothed one is reused for
    ``hold_s`` seconds, then there is no scale until the next fit.
    """

    def __init__(self, time_constant: float = 0.5, hold_s: float = 1.0, jump_threshold: float = 0.25,
                 jump_frames: int = 3):
        self.time_constant = time_constant
        self.hold_s = hold_s
        self.jump_threshold = jump_threshold
        self.jump_frames = jump_frames
        self.reset()

    def reset(self, mode: str | None = None) -> None:
        self.mode = mode  # the scale mode whose fits this tracker follows
        self.current: ScaleFit | None = None
        self._jumps = 0
        self.last_reason = ""

    def state(self) -> dict:
        """What a later run needs to continue exactly from here (JSON-serialisable)."""
        return {"mode": self.mode, "jumps": self._jumps,
                "current": None if self.current is None else asdict(self.current)}

    def restore(self, state: dict) -> None:
        self.reset(state["mode"])
        self._jumps = state["jumps"]
        self.current = None if state["current"] is None else ScaleFit(**state["current"])

    def _jump(self, fit: ScaleFit) -> bool:
        for p in (0.1, 0.9):
            old, new = self.current.depth_at(p), fit.depth_at(p)
            if math.isinf(old) != math.isinf(new):
                return True
            if math.isfinite(old) and abs(new - old) > self.jump_threshold * old:
                return True
        return False

    def update(self, outcome: FitOutcome, stamp: float) -> tuple[ScaleFit | None, str]:
        """Feed this frame's outcome; returns the fit to use now (or None) and a status for diagnostics."""
        fit = outcome.fit
        if fit is None:
            self.last_reason = outcome.reason
            if self.current is None:
                return None, f"no scale fit yet: {outcome.reason}"
            age = stamp - self.current.stamp
            if age > self.hold_s:
                return None, (f"no scale fit for {age:.1f} s (> scale_hold_s {self.hold_s} s): metric depth and "
                              f"points stopped; last reason: {outcome.reason}")
            return replace(self.current, age=age), f"holding the fit from {age:.2f} s ago: {outcome.reason}"
        if self.current is None or stamp - self.current.stamp > self.hold_s:
            self.current, self._jumps = fit, 0
            return fit, "fitted"
        if self._jump(fit):
            self._jumps += 1
            if self._jumps >= self.jump_frames:
                self.current, self._jumps = fit, 0
                return fit, "fitted (reset after a persistent jump)"
            return replace(self.current, age=stamp - self.current.stamp), "fitted (ignoring a sudden jump)"
        self._jumps = 0
        dt = max(stamp - self.current.stamp, 0.0)
        alpha = 1.0 if self.time_constant <= 0 else 1.0 - math.exp(-dt / self.time_constant)
        self.current = replace(fit, scale=self.current.scale + alpha * (fit.scale - self.current.scale),
                               shift=self.current.shift + alpha * (fit.shift - self.current.shift))
        return self.current, "fitted"
