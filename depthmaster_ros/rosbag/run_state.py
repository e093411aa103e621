"""The state of one offline run: how far it got in the input, what it wrote and skipped, the scale it used, and
the engine's stage state, so a resumed run continues exactly where a checkpoint left off."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def reason_shape(reason: str) -> str:
    """A reason with its numbers blanked: reasons of one shape say the same thing about different frames."""
    return NUMBER.sub("#", reason)


@dataclass
class RunState:
    """Progress of a run (saved with every checkpoint in OUTPUT.partial/progress.json)."""

    fingerprint: str = ""
    messages_done: int = 0  # input messages fully handled (copied, cached)
    frames_done: int = 0  # image messages handled (served or skipped)
    frames_served: int = 0
    frames_at_split: int = 0  # frames_done when the last output file was closed (the next closes split_frames on)
    skipped: dict = field(default_factory=dict)  # reason -> count
    notes: dict = field(default_factory=dict)  # frames served without metric outputs: reason -> count
    written: dict = field(default_factory=dict)  # output topic -> messages
    seconds: float = 0.0  # processing time in this process (model here + post-processing + serialisation)
    first_stamp_ns: int | None = None  # header stamps of the first and last frame served
    last_stamp_ns: int | None = None
    scale_frames: int = 0  # frames served with a metric scale
    scale_sum: float = 0.0
    scale_min: float | None = None
    scale_max: float | None = None
    shift_sum: float = 0.0
    engine: dict | None = None  # the engine's stage state (scale tracker, ...) after the last frame done

    @classmethod
    def from_dict(cls, values: dict) -> "RunState":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown fields {unknown}")
        return cls(**values)

    def as_dict(self) -> dict:
        return asdict(self)

    def count(self, kind: str, reason: str) -> None:
        """One more frame or message ``skipped`` / served with a ``notes`` reason. Reasons that differ only in
        their numbers ("only 41% of 930 pairs agree ...", "only 38% of 925 ...") are one reason, counted under the
        first one's words: a summary line per kind of problem, not per frame."""
        counter = getattr(self, kind)
        shape = reason_shape(reason)
        key = next((known for known in counter if reason_shape(known) == shape), reason)
        counter[key] = counter.get(key, 0) + 1

    def served(self, stamp_ns: int, scale) -> None:
        self.frames_served += 1
        if self.first_stamp_ns is None:
            self.first_stamp_ns = stamp_ns
        self.last_stamp_ns = stamp_ns
        if scale is not None:
            self.scale_frames += 1
            self.scale_sum += scale.scale
            self.shift_sum += scale.shift
            self.scale_min = scale.scale if self.scale_min is None else min(self.scale_min, scale.scale)
            self.scale_max = scale.scale if self.scale_max is None else max(self.scale_max, scale.scale)

    def summary(self) -> dict:
        """What the finished bag holds, for its metadata.yaml and the fleet summary: no timings, so two runs of
        the same input write the same bytes."""
        mean = self.scale_sum / self.scale_frames if self.scale_frames else None
        return {"frames_done": self.frames_done, "frames_served": self.frames_served,
                "skipped": dict(sorted(self.skipped.items())), "notes": dict(sorted(self.notes.items())),
                "written": dict(sorted(self.written.items())), "first_stamp_ns": self.first_stamp_ns,
                "last_stamp_ns": self.last_stamp_ns, "scale_frames": self.scale_frames,
                "scale_mean": mean, "scale_min": self.scale_min, "scale_max": self.scale_max,
                "shift_mean": self.shift_sum / self.scale_frames if self.scale_frames else None}

    @property
    def span_s(self) -> float:
        if self.first_stamp_ns is None:
            return math.nan
        return (self.last_stamp_ns - self.first_stamp_ns) / 1e9


def input_identity(path: Path) -> dict:
    """What identifies an input bag cheaply: its resolved path, its metadata.yaml and its storage files' names and
    sizes (a bag cut short has no metadata.yaml; a copy keeps the sizes)."""
    from .salvage import storage_files

    files, _ = storage_files(path)
    metadata = path / "metadata.yaml"
    return {"input": str(path.resolve()), "metadata": metadata.read_text() if metadata.is_file() else None,
            "files": [(f.name, f.stat().st_size) for f in files]}


def fingerprint(input_bag: Path, **settings) -> str:
    """A hash of the input and every setting that changes the output: a saved run is resumed only with these."""
    text = json.dumps({"input": input_identity(input_bag), **settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
