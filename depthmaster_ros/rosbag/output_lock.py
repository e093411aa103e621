"""One run per output: ``OUTPUT.lock`` beside the output, held with ``flock`` for as long as a run writes OUTPUT
(or OUTPUT.partial/), and the output folder checked before anything slow starts.

``flock`` is released by the kernel when its process ends, however it ends (SIGKILL, a crash, a power cut), so a
lock left by a dead run is recognised as stale by simply taking it: no pid to check, no stale file to delete by
hand. The file holds the holder's pid, host and start time for the message a second run prints. The lock is taken
on the file that is at the path (a run that removes it at its end cannot hand a second run a lock on a deleted
file: the taker checks that the file it locked is still the one at the path).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import socket
import time
from pathlib import Path

from .io import BagError

MIN_FREE_BYTES = 64 * 2**10  # below this not even the progress file and a first file's header fit


def lock_path(output: Path) -> Path:
    return output.with_name(output.name + ".lock")


class OutputLock:
    def __init__(self, output: Path):
        self.output = Path(output)
        self.path = lock_path(self.output)
        self._fd: int | None = None
        self.stale: str = ""  # what a dead run had left in the lock file, when one was taken over

    def acquire(self) -> "OutputLock":
        """Take the lock (BagError naming the run that holds it, or why the folder cannot be written)."""
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BagError(cannot_write(folder, exc)) from exc
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise BagError(cannot_write(folder, exc)) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise BagError(f"output '{self.output}' is being written by another run "
                                   f"({holder or 'its holder did not say who it is'}); wait for it to end, or "
                                   "choose another output") from exc
                raise BagError(f"cannot lock {self.path}: {exc.strerror}") from exc
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed it as it ended: lock the new one
        self.stale = _read(fd)
        record = f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink()
        except OSError:
            pass
        os.close(self._fd)  # closing releases the lock
        self._fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def cannot_write(folder: Path, exc: OSError) -> str:
    return f"cannot write the output in '{folder}': {exc.strerror or exc}"


def check_output_folder(output: Path, input_bag: Path, copy_input: bool, warn=lambda line: None) -> None:
    """Before anything slow: the output's folder has room. BagError when less than ``MIN_FREE_BYTES`` are free
    (a full disk); a warning (``warn``) when less than the input's size (twice that with the input copied): depth
    images and clouds take several times the camera images' bytes, so the output is larger still. A disk that fills
    during the run stops it resumably. (That the folder can be written is proven by taking the lock in it.)"""
    folder = Path(output).parent
    try:
        free = shutil.disk_usage(folder).free
        size = sum(f.stat().st_size for f in ([input_bag] if input_bag.is_file() else input_bag.rglob("*"))
                   if f.is_file())
    except OSError:
        return
    if free < MIN_FREE_BYTES:
        raise BagError(f"only {free // 1024} KiB are free in '{folder}': free some space or choose another output")
    needed = size * (2 if copy_input else 1)
    if free < needed:
        warn(f"only {free / 2**20:.0f} MiB are free in '{folder}', less than the output's least size (about "
             f"{needed / 2**20:.0f} MiB, the input's{' twice: it is copied' if copy_input else ''}): the run stops "
             "when the disk is full and continues with --resume once there is room")
