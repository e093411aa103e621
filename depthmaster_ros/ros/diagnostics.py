"""Frame statistics for /diagnostics (diagnostic_updater is not installable here, so this is the small part of
it the node needs): input/output rates, stamp-to-publish latency percentiles, dropped and rejected counts."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np


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
        self.counts = {"received": 0, "processed": 0, **{count: 0 for count, _ in PROBLEMS.values()}}
        self.last = {last: "" for _, last in PROBLEMS.values()}
        self._last_problem_time = -float("inf")

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

    def published(self, latency_s: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.counts["processed"] += 1
            self._published.append(now)
            self._latencies.append((now, latency_s))

    def problem(self, kind: str, reason: str) -> None:
        """Count a rejected message or a failure of one of the PROBLEMS kinds, with its reason."""
        count, last = PROBLEMS[kind]
        with self._lock:
            self.counts[count] += 1
            self.last[last] = reason
            self._last_problem_time = time.monotonic()

    def snapshot(self) -> dict:
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            latencies = np.array([lat for _, lat in self._latencies]) * 1000.0
            span = self.window
            return {
                **self.counts,
                "input_rate_hz": len(self._received) / span,
                "output_rate_hz": len(self._published) / span,
                "latency_p50_ms": float(np.percentile(latencies, 50)) if latencies.size else float("nan"),
                "latency_p95_ms": float(np.percentile(latencies, 95)) if latencies.size else float("nan"),
                **self.last,
                "recent_problem": now - self._last_problem_time <= self.window,
            }


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
