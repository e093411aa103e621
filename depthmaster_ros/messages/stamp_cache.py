"""Pairing messages by stamp (the job message_filters does, which is not installable here): camera infos, sparse
depth images and LiDAR scans are matched to each image.

Keeps the last few messages of one kind. An image takes the one with its exact stamp, else the nearest within a
tolerance; otherwise the lookup says why none fits, for /diagnostics.

Waiting for the exact stamp is event-driven, like message_filters' exact-time synchroniser: a stream whose
messages carry the images' stamps (a driver publishing the CameraInfo with each image) is waited for until that
stamp arrives or a later one shows it will not, up to ``EXACT_WAIT_S``, however long a large image takes to arrive
or decode, however busy the machine is and however long the transport takes to repair a lost sample; a stream
that does not match images exactly (a camera info published at its own rate) is waited for only up to the pairing
tolerance. A node must deliver each stream's messages in order (one callback at a time per topic).

What a frame the node may still process needs is never evicted: the stamps of such frames are *held*
(:class:`HeldStamps`, shared by a camera's caches), and a full cache evicts its oldest messages only below the one
that pairs with the oldest held frame (its exact stamp, or the nearest before it). Beyond ``size`` the cache grows
for held frames up to ``HELD_GROWTH`` times ``size``, so a frame stuck somewhere cannot make it grow without end.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

# The longest wait for a message that has come with the exact stamp of recent images. A reliable stream's lost
# sample is sent again at the publisher's next heartbeat (Fast DDS: every 3 s) and holds back the samples after it:
# a node flooded with 640x480 images at 10 Hz got its camera infos in bursts 2.2 to 3.0 s apart.
EXACT_WAIT_S = 5.0
CACHE_SIZE = 32  # messages kept per input (3.2 s at 10 Hz) when no frame holds more
HELD_GROWTH = 2  # a cache holds at most this many times its size for the frames that are still to be paired


class HeldStamps:
    """The stamps of the frames that may still be paired (waiting for the model, or being paired), a multiset."""

    def __init__(self):
        self._stamps: Counter = Counter()
        self._lock = threading.Lock()

    def hold(self, stamp_ns: int) -> None:
        with self._lock:
            self._stamps[stamp_ns] += 1

    def release(self, stamp_ns: int) -> None:
        with self._lock:
            if self._stamps[stamp_ns] > 1:
                self._stamps[stamp_ns] -= 1
            else:
                self._stamps.pop(stamp_ns, None)

    def oldest(self) -> int | None:
        with self._lock:
            return min(self._stamps) if self._stamps else None

    def clear(self) -> None:
        with self._lock:
            self._stamps.clear()


class StampCache:
    def __init__(self, label: str, tolerance_name: str, size: int = CACHE_SIZE, held: HeldStamps | None = None):
        self.label = label  # e.g. "camera_info", for the reasons
        self.tolerance_name = tolerance_name  # the parameter a user would change
        self._size = size
        self._held = held if held is not None else HeldStamps()
        self._items: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._exact = deque(maxlen=8)  # whether the recent lookups found their exact stamp

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def add(self, stamp_ns: int, value: Any) -> None:
        with self._arrived:
            self._items[stamp_ns] = value
            self._evict()
            self._arrived.notify_all()

    def _evict(self) -> None:
        """Down to ``size`` messages, oldest stamp first, keeping what the oldest held frame pairs with (up to
        ``HELD_GROWTH`` x ``size``)."""
        excess = len(self._items) - self._size
        if excess <= 0:
            return
        stamps = sorted(self._items)
        oldest_held = self._held.oldest()
        if oldest_held is not None:
            below = [stamp for stamp in stamps if stamp <= oldest_held]
            floor = below[-1] if below else oldest_held  # the held frame's own, or the nearest before it
            evictable = sum(1 for stamp in stamps if stamp < floor)
            excess = max(min(excess, evictable), len(self._items) - HELD_GROWTH * self._size)
        for stamp in stamps[:excess]:
            del self._items[stamp]

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
