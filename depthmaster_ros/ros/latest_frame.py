"""Newest frame wins: the hand-over between the subscription callbacks and the inference thread, one slot per
camera.

A frame that arrives while its camera's slot is full replaces the waiting one (that one is counted as dropped),
so inference never queues behind a camera. With several cameras the inference thread takes every waiting frame
at once, after giving the cameras that have none a short time (``gather``) to deliver theirs, so that frames
taken together can share one model pass.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Hashable, Iterable


class LatestFrames:
    """``on_drop(key, frame)``: called (under the lock, so keep it short) for each frame replaced before it was
    taken."""

    def __init__(self, on_drop: Callable[[Hashable, Any], None] = lambda key, frame: None):
        self._frames: dict[Hashable, Any] = {}
        self._condition = threading.Condition()
        self._on_drop = on_drop

    def put(self, key: Hashable, frame: Any) -> bool:
        """Store ``frame`` as ``key``'s newest; True if it replaced one that was never taken (a drop)."""
        with self._condition:
            replaced = key in self._frames
            if replaced:
                self._on_drop(key, self._frames[key])
            self._frames[key] = frame
            self._condition.notify_all()
            return replaced

    def take(self, timeout: float, keys: Iterable[Hashable] = (), gather: float = 0.0) -> dict[Hashable, Any]:
        """Every waiting frame by key (emptying the slots); {} after ``timeout`` seconds without one. Once one
        is there, wait up to ``gather`` seconds more for all of ``keys`` to have one."""
        keys = tuple(keys)
        with self._condition:
            if not self._condition.wait_for(lambda: bool(self._frames), timeout):
                return {}
            if gather > 0 and keys:
                self._condition.wait_for(lambda: all(key in self._frames for key in keys), gather)
            frames, self._frames = self._frames, {}
            return frames

    def clear(self) -> None:
        with self._condition:
            self._frames = {}
