"""/diagnostics for the node (diagnostic_updater is not installable here, so this is the small part of it the node
needs): per-camera frame statistics (rates, stamp-to-publish latency percentiles, dropped and rejected counts with
their reasons) and the status each camera reports: level, one-line message, key/values."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..engine.stage import stage_classes

# problem kind -> (its counter, the key of its last reason)
PROBLEMS = {
    "image": ("rejected", "last_rejection"),
    "camera_info": ("camera_info_rejected", "last_camera_info_rejection"),
    "metric_source": ("metric_source_rejected", "last_metric_source_rejection"),  # sparse depth / LiDAR scan
    "error": ("errors", "last_error"),
}


class FrameStats:
    """Thread-safe counters and sliding windows (``window`` seconds) of event times and latencies."""

    def __init__(self, window: float = 5.0):
        self.window = window
        self._lock = threading.Lock()
        self._received: deque[float] = deque()
        self._published: deque[float] = deque()
        self._latencies: deque[tuple[float, float]] = deque()
        # received = processed + dropped (replaced while waiting) + rejected + errors + ignored + in flight
        self.counts = {"received": 0, "processed": 0, "ignored": 0, **{count: 0 for count, _ in PROBLEMS.values()}}
        self.last = {last: "" for _, last in PROBLEMS.values()}
        self._problem_times = {kind: -math.inf for kind in PROBLEMS}

    def _trim(self, now: float) -> None:
        for queue in (self._received, self._published):
            while queue and queue[0] < now - self.window:
                queue.popleft()
        while self._latencies and self._latencies[0][0] < now - self.window:
            self._latencies.popleft()

    def received(self) -> None:
        with self._lock:
            self.counts["received"] += 1
            self._received.append(time.monotonic())

    def ignored(self) -> None:
        """A frame nobody wanted (no subscriber to any output when it arrived or was taken)."""
        with self._lock:
            self.counts["ignored"] += 1

    def published(self, latency_s: float | None) -> None:
        """A frame served; ``latency_s`` None when it cannot be known (no clock yet)."""
        now = time.monotonic()
        with self._lock:
            self.counts["processed"] += 1
            self._published.append(now)
            if latency_s is not None:
                self._latencies.append((now, latency_s))

    def problem(self, kind: str, reason: str) -> None:
        """Count a rejected message or a failure of one of the PROBLEMS kinds, with its reason."""
        count, last = PROBLEMS[kind]
        with self._lock:
            self.counts[count] += 1
            self.last[last] = reason
            self._problem_times[kind] = time.monotonic()

    def snapshot(self) -> dict:
        """Counters, rates, latency percentiles, the last reason of each kind, and ``recent_problems``: the
        reasons of the kinds that occurred within the window (older ones are history, not the present)."""
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            latencies = np.array([lat for _, lat in self._latencies]) * 1000.0
            span = self.window
            recent = [self.last[last] for kind, (_, last) in PROBLEMS.items()
                      if now - self._problem_times[kind] <= self.window]
            return {
                **self.counts,
                "input_rate_hz": len(self._received) / span,
                "output_rate_hz": len(self._published) / span,
                "latency_p50_ms": float(np.percentile(latencies, 50)) if latencies.size else float("nan"),
                "latency_p95_ms": float(np.percentile(latencies, 95)) if latencies.size else float("nan"),
                **self.last,
                "recent_problems": recent,
            }


@dataclass
class NodeSummary:
    """What every camera's status repeats about the node."""

    lifecycle_state: str
    checkpoint: str
    problem: str = ""  # why the node cannot serve (configure failed)
    parameter_problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # conditions found at start-up that the node runs with
    model: dict = field(default_factory=dict)  # model, device, dtype, GPU memory
    passes: int = 0
    frames_passed: int = 0


def camera_status(node_name: str, summary: NodeSummary, stream, stats: dict, starved: str):
    """The DiagnosticStatus of one camera (``stream``: ros/camera_stream.py's CameraStream)."""
    from diagnostic_msgs.msg import DiagnosticStatus

    recent = stats.pop("recent_problems")
    config = stream.config
    values = {"lifecycle_state": summary.lifecycle_state, "checkpoint": summary.checkpoint}
    if stream.name:
        values["camera"] = stream.name
    values.update(summary.model)
    if summary.passes:
        values.update(model_passes=summary.passes, frames_per_pass=summary.frames_passed / summary.passes)
    metric = stream.metric_state()
    values.update(processing_res=config.processing_res, scale_mode=config.scale_mode,
                  scale_state=stream.scale_status or "-", metric_state=metric.detail if metric else "ok")
    fit = stream.last_fit
    if fit is not None:
        values.update(scale=fit.scale, shift=fit.shift, scale_inlier_ratio=fit.inlier_ratio,
                      scale_residual_rms=fit.residual_rms, scale_pairs=fit.pairs, scale_age_s=fit.age)
    for stage in stage_classes():  # each stage's own key/values (a plug-in's failure costs only its own)
        try:
            values.update(stage.diagnostics(config, stream.reports.get(stage.name)))
        except Exception as exc:  # noqa: BLE001
            values[f"{stage.name}_diagnostics"] = f"failed: {type(exc).__name__}: {exc}"
    values.update(stats)
    if stream.image_sub is not None:
        values["input_qos"] = stream.image_sub.describe()
    if summary.parameter_problems:
        values["parameter_problems"] = "; ".join(summary.parameter_problems)
    if summary.warnings:
        values["start_warnings"] = "; ".join(summary.warnings)

    if summary.problem:
        level, message = DiagnosticStatus.ERROR, summary.problem
    elif summary.lifecycle_state != "active":
        level, message = DiagnosticStatus.WARN, f"node is {summary.lifecycle_state}, not serving"
    elif starved:
        level, message = DiagnosticStatus.WARN, starved
    elif recent:
        level, message = DiagnosticStatus.WARN, "; ".join(recent)
    elif summary.parameter_problems:
        level, message = DiagnosticStatus.WARN, "parameters refused at start-up: " + "; ".join(
            summary.parameter_problems)
    elif summary.warnings:
        level, message = DiagnosticStatus.WARN, "; ".join(summary.warnings)
    elif stream.idle and not stats["output_rate_hz"]:
        level, message = DiagnosticStatus.OK, "idle: no subscriber to any output"
    elif metric is not None and stream.wants_metric:
        level, message = DiagnosticStatus.WARN, metric.detail
    else:
        level, message = DiagnosticStatus.OK, "serving"
    name = f"{node_name}: depth" + (f" {stream.name}" if stream.name else "")
    return diagnostic_status(name, str(values.get("device", "none")), level, message, values)


def diagnostic_status(name: str, hardware_id: str, level: bytes, message: str, values: dict):
    """A DiagnosticStatus; values become key/value strings (floats with 2 decimals)."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    status = DiagnosticStatus(level=level, name=name, hardware_id=hardware_id, message=message)
    status.values = [
        KeyValue(key=key, value=f"{value:.2f}" if isinstance(value, float) else str(value))
        for key, value in values.items()
    ]
    return status


def diagnostic_array(stamp, statuses: list):
    from diagnostic_msgs.msg import DiagnosticArray

    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = list(statuses)
    return array
