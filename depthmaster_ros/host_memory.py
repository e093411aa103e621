"""This process's memory on its host: what it may still allocate, what it uses, and giving freed memory back.

Three limits can stop an allocation, and a robot meets all of them: the memory the system still has
(``MemAvailable`` in /proc/meminfo), the process's cgroup (a container's or a systemd unit's ``memory.max``; v1
``memory.limit_in_bytes``) and its address-space limit (``RLIMIT_AS``, ``ulimit -v``, which counts every mapping,
reserved or not). :func:`headroom` is the smallest, named, so a refusal can say which one it was.

Linux only (the node's platform); elsewhere each reading is None and nothing is refused. Imports nothing heavy: the
node's start-up checks the address-space limit with it before PyTorch is imported.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import resource
from dataclasses import dataclass
from pathlib import Path

GIB = 2**30
# The node's libraries (PyTorch, OpenCV, ROS 2) loaded, before any model: under an address-space limit below this
# their own loading ends in a segmentation fault (measured 2026-12-05: 1.1 GiB crashes, 1.2 GiB starts).
START_ADDRESS_SPACE = int(1.25 * GIB)
CGROUP_ROOT = Path("/sys/fs/cgroup")
UNLIMITED_CGROUP = 2**60  # v1 reports "no limit" as a huge page-rounded number


@dataclass(frozen=True)
class Headroom:
    """``available`` bytes can still be allocated, set by ``source`` (its ``limit`` and ``used``, if any)."""

    available: int
    source: str
    limit: int | None = None
    used: int | None = None

    def describe(self) -> str:
        if self.limit is None:
            return f"{self.available / GIB:.2f} GiB available ({self.source})"
        return (f"{self.available / GIB:.2f} GiB available ({self.source} {self.limit / GIB:.2f} GiB, "
                f"{self.used / GIB:.2f} GiB used)")


def process_status(pid: int | str = "self") -> dict[str, int]:
    """VmSize, VmRSS and VmHWM (peak RSS) of a process, bytes; {} where /proc is missing."""
    values = {}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return values
    for line in lines:
        key, _, rest = line.partition(":")
        if key in ("VmSize", "VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def system_available() -> Headroom | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return Headroom(int(line.split()[1]) * 1024, "MemAvailable")
    except OSError:
        pass
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return None if text == "max" else int(text)


def _cgroup_dirs() -> list[tuple[Path, str, str]]:
    """(directory, limit file, usage file) of this process's memory cgroup and its ancestors, v2 or v1."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2
            base, files = CGROUP_ROOT, ("memory.max", "memory.current")
            if not (base / "cgroup.controllers").exists():
                base = CGROUP_ROOT / "unified"
        elif "memory" in controllers.split(","):
            base, files = CGROUP_ROOT / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        folder = base / path.lstrip("/")
        while True:
            if (folder / files[0]).exists():
                found.append((folder, *files))
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
    return found


def cgroup_available() -> Headroom | None:
    """The tightest memory cgroup limit above this process, less its usage; None without one."""
    best = None
    for folder, limit_file, usage_file in _cgroup_dirs():
        limit, used = _read_int(folder / limit_file), _read_int(folder / usage_file)
        if limit is None or used is None or limit >= UNLIMITED_CGROUP:
            continue
        room = Headroom(max(0, limit - used), f"cgroup {folder / limit_file}", limit, used)
        if best is None or room.available < best.available:
            best = room
    return best


def address_space_limit() -> int | None:
    """The soft RLIMIT_AS, bytes (None: unlimited)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def address_space_available() -> Headroom | None:
    limit = address_space_limit()
    if limit is None:
        return None
    used = process_status().get("VmSize", 0)
    return Headroom(max(0, limit - used), "RLIMIT_AS", limit, used)


def headroom() -> tuple[Headroom | None, Headroom | None]:
    """(resident headroom, address-space headroom): the tighter of MemAvailable and the cgroup limit (resident
    memory), and RLIMIT_AS less the address space in use (None where there is no such limit)."""
    resident = [room for room in (system_available(), cgroup_available()) if room is not None]
    return (min(resident, key=lambda room: room.available) if resident else None), address_space_available()


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """The C library with glibc's malloc tuning (``mallopt``, ``malloc_trim``), or None where the C library is
    another (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def release_freed_memory() -> bool:
    """Give the memory freed after a large frame back to the system (glibc's ``malloc_trim``); False where that
    does not exist (another C library).

    Why it is needed: glibc keeps freed blocks below its mmap threshold in its heaps, and that threshold rises (up
    to 32 MiB) each time a larger mmapped block is freed, so after one large frame its buffers of up to 32 MiB sit
    in heaps that are only trimmed at their top; each thread that allocates (the inference thread, the executor's)
    has its own heap. Measured on the node (a 7000x7000 PNG reduced to 1332x1332, scripts/node_load_probe.py):
    resident memory 2 s after the frame 1.33 x the steady state without trimming, 0.96 x with it.
    ``malloc_trim(0)`` returns every free page of every heap; it is called only after a frame much larger than the
    recent ones, so a steady stream does not pay for it."""
    libc = glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def too_small_to_start(needed: int = START_ADDRESS_SPACE) -> str | None:
    """Why the process cannot start under its address-space limit (its libraries alone need ``needed`` bytes of
    address space; a start below that ends in a segmentation fault while they load), or None."""
    limit = address_space_limit()
    if limit is None or limit >= needed:
        return None
    return (f"the address-space limit (RLIMIT_AS, ulimit -v) is {limit / GIB:.2f} GiB, but PyTorch, OpenCV and ROS 2 "
            f"alone need about {needed / GIB:.2f} GiB of address space and the model more: raise the limit (a cgroup "
            "memory limit, e.g. systemd's MemoryMax, counts resident memory and is the better tool)")

