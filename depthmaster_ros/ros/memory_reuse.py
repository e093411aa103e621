"""Keep the memory a frame frees for the next frame (glibc's malloc), so the node does not fault in fresh pages for
every frame's arrays and messages.

Why: per 640x480 frame the node allocates and frees megabytes (the image, the depth, a 4.9 MB cloud, its message,
rclpy's C copy of it, the serialised payload). glibc hands blocks that large to mmap, or trims the freed top of
its heap, so each frame touched about 2,400 fresh pages (about 10 MB), each a page fault that the kernel zero-fills:
measured here (docs/performance.md), building and publishing the cloud took 8 to 9 ms, 3.5 to 4.5 ms with the
freed memory kept. The settings (glibc's mallopt): allocations up to
32 MB come from the heap, and the heap is not trimmed. The cost: the process keeps its peak working set (a few tens
of MB beyond the model) instead of returning it between frames. After a frame much larger than the recent ones (a hostile
message) the node still gives the freed memory back (``host_memory.release_freed_memory``, ``malloc_trim``). Where the C library is not glibc (musl, macOS)
nothing changes.
"""

from __future__ import annotations

from ..host_memory import glibc

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc <malloc.h>
MMAP_THRESHOLD = 32 * 2**20  # glibc's upper limit on 64-bit systems
TRIM_THRESHOLD = 2**30
TOP_PAD = 64 * 2**20


def keep_freed_memory() -> str:
    """Set glibc's malloc to reuse freed memory (see the module doc); one line saying what was done."""
    libc = glibc()
    if libc is None:
        return "malloc: not glibc, left as it is"
    done = [libc.mallopt(option, value) == 1 for option, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))]
    if not all(done):
        return "malloc: glibc refused the settings; freed memory is returned as usual"
    return "malloc: freed memory kept for reuse (blocks up to 32 MB from the heap, no trimming)"
