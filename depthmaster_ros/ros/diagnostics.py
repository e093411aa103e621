"""Frame statistics for /diagnostics (diagnostic_updater is not installable here, so this is the small part of
it the node needs): input/output rates, stamp-to-publish latency percentiles, dropped and rejected counts."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np


class FrameStats:
    """Thread-safe counters and sliding windows (``window`` seconds) of event times and latencies."""

    def __init__(self, window: float = 5.0):
        self.window = window
        self._lock = threading.Lock()
        self._received: deque[float] = deque()
        self._published: deque[float] = deque()
        self._latencies: deque[tuple[float, float]] = deque()
        self.counts = {"received": 0, "processed": 0, "rejected": 0, "camera_info_rejected": 0,
                       "metric_source_rejected": 0, "errors": 0}
        self.last_rejection = ""
        self.last_camera_info_rejection = ""
        self.last_error = ""
        self.last_source_rejection = ""
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

    def rejected(self, reason: str) -> None:
        with self._lock:
            self.counts["rejected"] += 1
            self.last_rejection = reason
            self._last_problem_time = time.monotonic()

    def camera_info_rejected(self, reason: str) -> None:
        with self._lock:
            self.counts["camera_info_rejected"] += 1
            self.last_camera_info_rejection = reason
            self._last_problem_time = time.monotonic()

    def source_rejected(self, reason: str) -> None:
        """A sparse depth image or LiDAR scan that could not be used."""
        with self._lock:
            self.counts["metric_source_rejected"] += 1
            self.last_source_rejection = reason
            self._last_problem_time = time.monotonic()

    def error(self, reason: str) -> None:
        with self._lock:
            self.counts["errors"] += 1
            self.last_error = reason
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
                "last_rejection": self.last_rejection,
                "last_camera_info_rejection": self.last_camera_info_rejection,
                "last_error": self.last_error,
                "last_metric_source_rejection": self.last_source_rejection,
                "recent_problem": now - self._last_problem_time <= self.window,
            }


def diagnostic_array(stamp, name: str, hardware_id: str, level: bytes, message: str, values: dict):
    """One DiagnosticStatus in a DiagnosticArray; values become key/value strings (floats with 2 decimals)."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus(level=level, name=name, hardware_id=hardware_id, message=message)
    status.values = [
        KeyValue(key=key, value=f"{value:.2f}" if isinstance(value, float) else str(value))
        for key, value in values.items()
    ]
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [status]
    return array
