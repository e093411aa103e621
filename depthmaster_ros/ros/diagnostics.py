"""/diagnostics for the node (diagnostic_updater is not installable here, so this is the small part of it the node
needs): per-camera frame statistics (rates, stamp-to-publish latency percentiles, dropped and rejected counts with
their reasons) and the status each camera reports: level, one-line message, key/values.

The message names the one state that explains what the camera's outputs do now (:func:`camera_state`, first that
holds): configure failed; loading the model; not active; one frame in a model pass for a while; no image arriving
(no publisher, a publisher of another type, a QoS mismatch, or a camera gone silent); images rejected or reduced to
fit the memory budget; start-up parameters refused; nobody subscribing to any output (idle); metric outputs
waiting; frames dropped because the node is busy; serving."""

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
    "reduced": ("reduced", "last_reduction"),  # processed at a smaller size to fit max_frame_memory
}
OK, WARN, ERROR = 0, 1, 2  # DiagnosticStatus levels
SLOW_PASS_S = 5.0  # a model pass running longer than this is the camera's state


class FrameStats:
    """Thread-safe counters and sliding windows (``window`` seconds) of event times and latencies."""

    def __init__(self, window: float = 5.0):
        self.window = window
        self._lock = threading.Lock()
        self._received: deque[float] = deque()
        self._published: deque[float] = deque()
        self._dropped: deque[float] = deque()
        self._latencies: deque[tuple[float, float]] = deque()
        # received = processed + frames_dropped (replaced while waiting: the node was busy) + rejected + errors +
        # ignored + in flight; "reduced" frames and "without_metric" ones (published without the depth, points or
        # scale someone subscribed to) are among the processed ones
        self.counts = {"received": 0, "processed": 0, "frames_dropped": 0, "ignored": 0, "without_metric": 0,
                       **{count: 0 for count, _ in PROBLEMS.values()}}
        self.last = {last: "" for _, last in PROBLEMS.values()}
        self._problem_times = {kind: -math.inf for kind in PROBLEMS}
        self.last_received: float | None = None  # monotonic time of the last image

    def _trim(self, now: float) -> None:
        for queue in (self._received, self._published, self._dropped):
            while queue and queue[0] < now - self.window:
                queue.popleft()
        while self._latencies and self._latencies[0][0] < now - self.window:
            self._latencies.popleft()

    def received(self) -> None:
        now = time.monotonic()
        with self._lock:
            self.counts["received"] += 1
            self._received.append(now)
            self.last_received = now

    def dropped(self) -> None:
        """A frame replaced by a newer one before the node could take it (it was busy with earlier frames)."""
        with self._lock:
            self.counts["frames_dropped"] += 1
            self._dropped.append(time.monotonic())

    def ignored(self) -> None:
        """A frame nobody wanted (no subscriber to any output when it arrived or was taken)."""
        with self._lock:
            self.counts["ignored"] += 1

    def published(self, latency_s: float | None, metric_missing: bool = False) -> None:
        """A frame's outputs published; ``latency_s`` None when it cannot be known (no clock yet);
        ``metric_missing``: someone wanted depth, points or depth/scale and this frame has none (counted as
        ``without_metric``)."""
        now = time.monotonic()
        with self._lock:
            self.counts["processed"] += 1
            self.counts["without_metric"] += int(metric_missing)
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
                "dropped_rate_hz": len(self._dropped) / span,
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


@dataclass
class CameraFacts:
    """What a camera's state is decided from, besides its statistics (gathered by the node at each report)."""

    configuring_for: float | None = None  # seconds configure has been loading the model
    busy_for: float | None = None  # seconds this camera's frame has been in the running model pass
    busy_detail: str = ""  # that frame: its size, processing_res, device
    no_input: str = ""  # why no image arrives, when none does (input_silence)
    idle: bool = False  # nobody subscribes to any output
    metric_missing: str = ""  # why metric outputs are missing while someone subscribes to them


def camera_state(summary: NodeSummary, facts: CameraFacts, stats: dict, recent: list[str]) -> tuple[int, str]:
    """(level, message): the first state that holds, in the order of the module's documentation."""
    if summary.problem:
        return ERROR, summary.problem
    if facts.configuring_for is not None:
        return WARN, f"configuring: loading the model for {facts.configuring_for:.0f} s"
    if summary.lifecycle_state != "active":
        return WARN, f"node is {summary.lifecycle_state}, not serving"
    if facts.busy_for is not None and facts.busy_for >= SLOW_PASS_S:
        return OK, f"processing one frame for {facts.busy_for:.0f} s" + (
            f" ({facts.busy_detail})" if facts.busy_detail else "")
    if facts.no_input:
        return WARN, facts.no_input
    if recent:
        return WARN, "; ".join(recent)
    if summary.parameter_problems:
        return WARN, "parameters refused at start-up: " + "; ".join(summary.parameter_problems)
    if summary.warnings:
        return WARN, "; ".join(summary.warnings)
    if facts.idle:
        return OK, "idle: no subscriber to any output"
    if facts.metric_missing:
        return WARN, facts.metric_missing
    if stats.get("dropped_rate_hz", 0.0) > 0:
        return OK, (f"serving {stats['output_rate_hz']:.1f} of {stats['input_rate_hz']:.1f} frames/s; "
                    f"{stats['dropped_rate_hz']:.1f}/s dropped while the model was busy (newest frame wins)")
    return OK, "serving"


def camera_status(node_name: str, summary: NodeSummary, stream, stats: dict, facts: CameraFacts | None = None):
    """The DiagnosticStatus of one camera (``stream``: ros/camera_stream.py's CameraStream)."""
    facts = facts if facts is not None else CameraFacts()
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
    if facts.busy_for is not None:
        values["model_pass_s"] = facts.busy_for
    if stream.image_sub is not None:
        values["input_qos"] = stream.image_sub.describe()
    if summary.parameter_problems:
        values["parameter_problems"] = "; ".join(summary.parameter_problems)
    if summary.warnings:
        values["start_warnings"] = "; ".join(summary.warnings)
    level, message = camera_state(summary, facts, stats, recent)
    name = f"{node_name}: depth" + (f" {stream.name}" if stream.name else "")
    return diagnostic_status(name, str(values.get("device", "none")), bytes([level]), message, values)


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
