"""A Ray instance started by this process on this machine, and its complete end.

``ray.shutdown()`` stops what ``ray.init()`` started itself (the GCS, the raylet, the dashboard), but not always
the workers the raylet started: a worker still starting up when the raylet goes (importing torch and rclpy takes
seconds on a loaded machine) keeps retrying to reach it, idle (``ray::IDLE``), for a minute or two before it gives
up. Every process the raylet starts carries its pid in its environment (``RAY_RAYLET_PID``); after the shutdown
those still running are ended (SIGTERM, then SIGKILL after a grace period). Linux (``/proc``); elsewhere only
``ray.shutdown()``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

PROC = Path("/proc")


def _start_ticks(pid: int) -> int | None:
    """The process's start time (clock ticks since boot): tells a process from a later one with the same pid."""
    try:
        return int((PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _environment(pid: int) -> dict[str, str]:
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()] if PROC.is_dir() else []


def raylet_of(parent: int) -> tuple[int, int] | None:
    """(pid, start ticks) of the raylet that ``parent`` started, if any."""
    for pid in _pids():
        try:
            status = (PROC / str(pid) / "status").read_text()
            comm = (PROC / str(pid) / "comm").read_text().strip()
        except OSError:
            continue
        ppid = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), None)
        ticks = _start_ticks(pid)
        if comm == "raylet" and ppid == str(parent) and ticks is not None:
            return pid, ticks
    return None


def processes_of(raylet: tuple[int, int]) -> list[int]:
    """The live processes the raylet started (its pid in their environment, started after it)."""
    pid, ticks = raylet
    found = []
    for candidate in _pids():
        started = _start_ticks(candidate)
        if started is not None and started >= ticks and _environment(candidate).get("RAY_RAYLET_PID") == str(pid):
            found.append(candidate)
    return found


def end_processes(pids: list[int], grace: float = 5.0) -> list[int]:
    """SIGTERM each, SIGKILL what is left after ``grace`` seconds; the pids that had to be killed."""
    started = {pid: _start_ticks(pid) for pid in pids}

    def alive(pid):  # the same process, still there and not a zombie waiting for its parent
        try:
            state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state != "Z" and _start_ticks(pid) == started[pid]

    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    killed = [pid for pid in pids if alive(pid)]
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return killed


class LocalRay:
    """``ray.init(address="local", **options)`` now; :meth:`shutdown` ends it with every process it started."""

    def __init__(self, **options):
        import ray

        ray.init(address="local", **options)
        self._raylet = raylet_of(os.getpid())

    def shutdown(self) -> None:
        import ray

        ray.shutdown(wait_for_processes=True)
        if self._raylet is not None:
            end_processes(processes_of(self._raylet))
            self._raylet = None
