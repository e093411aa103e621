"""Pairing messages by stamp (the job message_filters does, which is not installable here): camera infos, sparse
depth images and LiDAR scans are matched to each image.

Keeps the last few messages of one kind. An image takes the one with its exact stamp, else the nearest within a
tolerance; otherwise the lookup says why none fits, for /diagnostics.

Waiting for the exact stamp is event-driven, like message_filters' exact-time synchroniser: a stream whose
messages carry the images' stamps (a driver publishing the CameraInfo with each image) is waited for until that
stamp arrives or a later one shows it will not, up to ``EXACT_WAIT_S``, however long a large image takes to arrive
or decode and however busy the machine is; a stream that does not match images exactly (a camera info published
at its own rate) is waited for only up to the pairing tolerance.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from typing import Any

EXACT_WAIT_S = 2.0  # the longest wait for a message that has come with the exact stamp of recent images


class StampCache:
    def __init__(self, label: str, tolerance_name: str, size: int = 32):
        self.label = label  # e.g. "camera_info", for the reasons
        self.tolerance_name = tolerance_name  # the parameter a user would change
        self._size = size
        self._items: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._exact = deque(maxlen=8)  # whether the recent lookups found their exact stamp

    def add(self, stamp_ns: int, value: Any) -> None:
        with self._arrived:
            self._items[stamp_ns] = value
            self._items.move_to_end(stamp_ns)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
            self._arrived.notify_all()

    def wait_for(self, stamp_ns: int, timeout: float, expected: bool = False) -> bool:
        """Wait for a message with exactly this stamp, if one can come: the stream has delivered before, or
        ``expected`` (someone publishes it). The wait ends when it arrives, when a message with a later stamp
        arrives (the stream has moved on), or after ``timeout`` seconds, or ``EXACT_WAIT_S`` for a stream that
        has been matching image stamps exactly (or has no history yet). True if it is there."""
        with self._arrived:
            if not self._items and not expected:
                return False
            patience = max(timeout, EXACT_WAIT_S) if (any(self._exact) or not self._exact) else timeout
            return self._arrived.wait_for(
                lambda: stamp_ns in self._items or any(s > stamp_ns for s in self._items), patience) and \
                stamp_ns in self._items

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._exact.clear()

    def lookup(self, stamp_ns: int, tolerance_ns: int) -> tuple[Any | None, str]:
        """(value, "") for the exact or nearest stamp within tolerance, else (None, reason)."""
        with self._lock:
            self._exact.append(stamp_ns in self._items)
            if stamp_ns in self._items:
                return self._items[stamp_ns], ""
            if not self._items:
                return None, f"no valid {self.label} received yet"
            nearest = min(self._items, key=lambda s: abs(s - stamp_ns))
            if abs(nearest - stamp_ns) <= tolerance_ns:
                return self._items[nearest], ""
            gap = abs(nearest - stamp_ns) / 1e9
            return None, f"no {self.label} within {self.tolerance_name} of the image stamp (nearest {gap:.3f} s away)"
