"""Newest frame wins: a one-slot hand-over between the subscription callbacks and the inference thread.

A frame that arrives while the slot is full replaces the waiting one (that one is counted as dropped), so
inference never queues behind the camera.
"""

from __future__ import annotations

import threading
from typing import Any


class LatestFrameSlot:
    def __init__(self):
        self._frame: Any = None
        self._condition = threading.Condition()
        self.dropped = 0

    def put(self, frame: Any) -> bool:
        """Store ``frame``; True if it replaced a frame that was never taken (a drop)."""
        with self._condition:
            replaced = self._frame is not None
            if replaced:
                self.dropped += 1
            self._frame = frame
            self._condition.notify()
            return replaced

    def take(self, timeout: float) -> Any:
        """The waiting frame (emptying the slot), or None after ``timeout`` seconds."""
        with self._condition:
            if self._frame is None:
                self._condition.wait(timeout)
            frame, self._frame = self._frame, None
            return frame

    def clear(self) -> None:
        with self._condition:
            self._frame = None
