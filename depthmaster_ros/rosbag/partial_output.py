"""OUTPUT.partial/: the output bag of a run that is not finished, kept so that every way a run can stop leaves
something a resumed run continues from, and nothing that looks like a finished bag.

The output is written as a rosbag2 split into files (rosbag2's own layout: ``OUTPUT_0.mcap``, ``OUTPUT_1.mcap``,
... and one metadata.yaml). Each file is closed at a checkpoint, and checkpoints fall at points that depend only
on the input (every ``split_frames`` frames), so a resumed run writes the same files, byte for byte, as an
uninterrupted one. In OUTPUT.partial/:

- ``progress.json``: the run state at the last checkpoint and the files closed so far. Written to a temporary
  file, flushed to disk and renamed, after the files it lists were flushed: a crash or a power loss leaves the
  previous one or the new one, never half of one.
- ``OUTPUT_<k>/``: file k, a complete bag of its own once listed. The one being written when the process was
  killed, the power failed or the disk filled is not listed and is dropped when the run resumes; the frames it
  held are processed again.
- ``tail.<n>/OUTPUT_<k>/``: after Ctrl-C / SIGTERM, what file k held when the run stopped (closed properly);
  the resumed run copies it into file k and continues, so an interruption loses no work.

Finishing moves the files into ``OUTPUT.partial/OUTPUT/`` with a metadata.yaml for all of them (plus the run's
summary in its ``custom_data``) and renames that folder to OUTPUT: the output appears whole or not at all.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

from .io import BagError, ConnectionMap, open_writer
from .salvage import SalvageReader

SPLIT_FRAMES = 100  # frames per output file (and between checkpoints) unless told otherwise
PROGRESS = "progress.json"
FORMAT = 2  # of progress.json; 1 (before crash safety) had no files list
SUFFIX = {"mcap": ".mcap", "sqlite3": ".db3"}
SUMMARY_KEY = "depthmaster_ros.run"  # the run's summary in metadata.yaml's custom_data


class CannotResume(Exception):
    """The saved run cannot be continued (the text says why); the run starts over."""


def partial_folder(output: Path) -> Path:
    return output.with_name(output.name + ".partial")


def unfinished_run(output: Path) -> str:
    """What to say when OUTPUT.partial/ exists and the run was not asked to resume it."""
    return (f"'{partial_folder(output)}' holds an unfinished run of this output: continue it with --resume, or "
            "delete it to start over")


def split_name(output: Path, index: int) -> str:
    """The name of file ``index`` of a bag (rosbag2's convention: OUTPUT_0, OUTPUT_1, ...)."""
    return f"{output.name}_{index}"


def sync(path: Path) -> None:
    """Flush a file, or a folder's files and the folder itself, to the disk."""
    items = [path] if path.is_file() else [*sorted(p for p in path.iterdir() if p.is_file()), path]
    for item in items:
        descriptor = os.open(item, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    sync(path.parent)


class PartialOutput:
    """The output of one run under OUTPUT.partial/. ``writer_factory(path, storage)`` opens a rosbag2 writer (the
    tests pass one that fails like a full disk)."""

    def __init__(self, output: Path, storage: str = "mcap", writer_factory=open_writer):
        if storage not in SUFFIX:
            raise BagError(f"storage '{storage}' is not supported; expected one of {', '.join(SUFFIX)}")
        self.output = Path(output)
        self.folder = partial_folder(self.output)
        self.storage = storage
        self._open_writer = writer_factory
        self.files: list[str] = []  # closed and listed
        self.tail: str | None = None  # tail.<n> folder of the interrupted file, if any
        self.bag: ConnectionMap | None = None  # the file being written
        self.saved_frames = 0  # frames_done of the state at the last checkpoint

    # ------------------------------------------------------------------ starting
    def start(self, state: dict) -> None:
        """A fresh OUTPUT.partial/ (which must not exist) with its first progress.json."""
        self.folder.mkdir(parents=True)
        self._save(state, complete=False)

    def load(self, fingerprint: str) -> tuple[dict, bool]:
        """The saved run state and whether it had finished processing; files not listed (a crash's incomplete
        file, an older tail) are removed. CannotResume when it cannot be continued, BagError when it was made
        with other settings (not ours to delete)."""
        path = self.folder / PROGRESS
        if not path.is_file():
            raise CannotResume("no progress was saved before the run stopped (it was killed at its start)")
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CannotResume(f"{path} is unreadable ({exc})") from exc
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise CannotResume(f"{path} was written by another version of depthmaster_ros")
        if saved["state"].get("fingerprint") != fingerprint:
            raise BagError(f"'{self.folder}' was made from another input, parameters or options; delete it or run "
                           "with the same settings")
        files, tail = saved["files"], saved["tail"]
        for name in files + ([f"{tail}/{split_name(self.output, len(files))}"] if tail else []):
            if not (self.folder / name / "metadata.yaml").is_file():
                raise CannotResume(f"{self.folder / name} is listed as saved but is missing")
        keep = set(files) | {tail, PROGRESS, self.output.name}
        for item in self.folder.iterdir():
            if item.name not in keep:
                shutil.rmtree(item) if item.is_dir() else item.unlink()
        self.files, self.tail = list(files), tail
        self.saved_frames = saved["state"].get("frames_done", 0)
        return saved["state"], saved["complete"]

    # ------------------------------------------------------------------ writing
    def write(self, topic: str, msgtype: str, log_time: int, data: bytes) -> None:
        if self.bag is None:
            self._open_next()
        self.bag.write(topic, msgtype, log_time, data)

    def _open_next(self) -> None:
        path = self.folder / split_name(self.output, len(self.files))
        if path.exists():
            shutil.rmtree(path)
        self.bag = ConnectionMap(self._open_writer(path, self.storage))
        if self.tail:  # the interrupted file's messages first, in the order they were written: the same bytes
            reader = SalvageReader(self.folder / self.tail / path.name, written_order=True)
            try:
                for connection, log_time, data in reader.messages():
                    self.bag.write(connection.topic, connection.msgtype, log_time, data)
            finally:
                reader.close()

    def checkpoint(self, state: dict, split: bool) -> None:
        """Save the run state. ``split``: the file being written is complete (a split point, or the end); else
        the run is stopping and that file becomes the tail a resumed run continues."""
        old_tail = self.tail
        if split and self.bag is None and self.tail:
            self._open_next()  # the tail is file k as it stands
        if self.bag is not None:
            bag, self.bag = self.bag, None
            bag.writer.close()
            path = self.folder / split_name(self.output, len(self.files))
            sync(path)
            if split:
                self.files.append(path.name)
                self.tail = None
            else:
                number = 1 + max([int(p.name.split(".")[1]) for p in self.folder.glob("tail.*")] or [0])
                (self.folder / f"tail.{number}").mkdir()
                path.rename(self.folder / f"tail.{number}" / path.name)
                self.tail = f"tail.{number}"
        self._save(state, complete=False)
        if old_tail and old_tail != self.tail:
            shutil.rmtree(self.folder / old_tail, ignore_errors=True)
        self.saved_frames = state.get("frames_done", 0)

    def abandon(self) -> None:
        """After a failure (a full disk, an error): close what is open as well as possible; it is not listed, so
        a resumed run drops it and continues from the last checkpoint."""
        bag, self.bag = self.bag, None
        if bag is not None:
            try:
                bag.writer.close()
            except Exception:  # noqa: BLE001 - the run already failed; the file is dropped on resume
                pass

    def _save(self, state: dict, complete: bool) -> None:
        write_atomically(self.folder / PROGRESS, json.dumps(
            {"format": FORMAT, "state": state, "files": self.files, "tail": self.tail, "complete": complete},
            indent=1))

    # ------------------------------------------------------------------ finishing
    def finish(self, state: dict, summary: dict) -> None:
        """Close the last file and make OUTPUT: the files with their final names and one metadata.yaml."""
        if self.bag is None and not self.tail and not self.files:
            self._open_next()  # nothing was written: an empty bag
        self.checkpoint(state, split=True)
        self._save(state, complete=True)
        self.assemble(summary)

    def assemble(self, summary: dict) -> None:
        """Move the listed files into OUTPUT.partial/OUTPUT/, write its metadata.yaml, rename it to OUTPUT and
        remove OUTPUT.partial. Safe to repeat after a crash part way."""
        import yaml

        final = self.folder / self.output.name
        final.mkdir(exist_ok=True)
        parts = []
        for name in self.files:
            file_name = name + SUFFIX[self.storage]
            if (self.folder / name / file_name).exists():
                os.replace(self.folder / name / file_name, final / file_name)
            parts.append(yaml.safe_load((self.folder / name / "metadata.yaml").read_text())
                         ["rosbag2_bagfile_information"])
        metadata = merged_metadata(parts, self.storage)
        metadata["custom_data"] = {SUMMARY_KEY: json.dumps(summary, sort_keys=True)}
        write_atomically(final / "metadata.yaml", yaml.safe_dump({"rosbag2_bagfile_information": metadata},
                                                                  sort_keys=False))
        sync(final)
        final.rename(self.output)
        sync(self.output.parent)
        shutil.rmtree(self.folder)


def merged_metadata(parts: list[dict], storage: str) -> dict:
    """One rosbag2 metadata (version 9, as rosbags writes it) for the files whose own metadata are ``parts``: a
    split bag, as ``ros2 bag record --max-bag-size`` makes. No files: an empty bag of no topic."""
    topics: dict[str, dict] = {}
    files = []
    for part in parts:
        for item in part["topics_with_message_count"]:
            name = item["topic_metadata"]["name"]
            if name not in topics:
                topics[name] = {"message_count": 0, "topic_metadata": item["topic_metadata"]}
            topics[name]["message_count"] += item["message_count"]
        files += part["files"]
    counted = [f for f in files if f["message_count"]]
    start = min((f["starting_time"]["nanoseconds_since_epoch"] for f in counted), default=0)
    end = max((f["starting_time"]["nanoseconds_since_epoch"] + f["duration"]["nanoseconds"] for f in counted),
              default=0)
    template = parts[0] if parts else {"compression_format": "zstd" if storage == "mcap" else "",
                                       "compression_mode": "", "ros_distro": "rosbags", "version": 9}
    return {"compression_format": template["compression_format"],
            "compression_mode": template["compression_mode"],
            "custom_data": None,
            "duration": {"nanoseconds": end - start},
            "files": files,
            "message_count": sum(f["message_count"] for f in files),
            "relative_file_paths": [f["path"] for f in files],
            "ros_distro": template.get("ros_distro", "rosbags"),
            "starting_time": {"nanoseconds_since_epoch": start},
            "storage_identifier": storage,
            "topics_with_message_count": list(topics.values()),
            "version": template.get("version", 9)}


def disk_full_message(error: OSError, partial: Path, saved_frames: int, frames: int, resume_hint: str) -> str | None:
    """What to tell the user when the disk filled up (None for another error)."""
    if error.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    try:
        free = f"{shutil.disk_usage(partial.parent).free / 1e6:.0f} MB free there now"
    except OSError:
        free = "free space unknown"
    return (f"the disk is full: no space left writing {partial} ({free}; {error.strerror}). The run is saved up "
            f"to its last checkpoint ({saved_frames} of {frames} frames); free some space and continue with: "
            f"{resume_hint}")
