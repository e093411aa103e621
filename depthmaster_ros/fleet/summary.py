"""The fleet summary: one row per bag (frames in and out, time span, throughput, scale statistics, the failure if
any) and the totals, as CSV and JSON in the output folder."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..rosbag.partial_output import write_atomically

STATUSES = ("done", "done earlier", "failed", "interrupted", "not started")


@dataclass
class BagResult:
    input: str
    output: str
    status: str = "not started"  # one of STATUSES
    frames_in: int = 0  # image messages of the chosen topic in the input (as read)
    frames_out: int = 0  # frames served (with outputs written)
    frames_skipped: int = 0  # frames done without outputs (unusable image, failed frame)
    frames_this_run: int = 0  # frames done by this run (a resumed bag: after its checkpoint)
    first_stamp_ns: int | None = None
    last_stamp_ns: int | None = None
    span_s: float | None = None  # from the first to the last frame served (header stamps)
    seconds: float = 0.0  # wall time of the bag's task in this run
    fps: float | None = None  # frames_this_run / seconds
    scale_frames: int = 0  # frames served with a metric scale
    scale_mean: float | None = None
    scale_min: float | None = None
    scale_max: float | None = None
    shift_mean: float | None = None
    salvaged: str = ""  # what --salvage read and lost
    error: str = ""
    notes: list[str] = field(default_factory=list)

    def take(self, summary: dict) -> None:
        """The statistics of a run's summary (``RunState.summary()``, also in a finished bag's metadata)."""
        self.frames_out = summary["frames_served"]
        self.frames_skipped = summary["frames_done"] - summary["frames_served"]
        for name in ("first_stamp_ns", "last_stamp_ns", "scale_frames", "scale_mean", "scale_min", "scale_max",
                     "shift_mean"):
            setattr(self, name, summary[name])
        if self.first_stamp_ns is not None:
            self.span_s = (self.last_stamp_ns - self.first_stamp_ns) / 1e9


@dataclass
class FleetSummary:
    bags: list[BagResult]
    seconds: float  # wall time of the whole run
    actors: int

    @property
    def frames_this_run(self) -> int:
        return sum(bag.frames_this_run for bag in self.bags)

    def totals(self) -> dict:
        counts = {status: sum(1 for bag in self.bags if bag.status == status) for status in STATUSES}
        return {"bags": len(self.bags), **{status.replace(" ", "_"): n for status, n in counts.items()},
                "frames_out": sum(bag.frames_out for bag in self.bags), "frames_this_run": self.frames_this_run,
                "seconds": self.seconds, "actors": self.actors,
                "fps": self.frames_this_run / self.seconds if self.seconds > 0 else None}

    def write(self, folder: Path, name: str = "fleet_summary") -> tuple[Path, Path]:
        """``folder/name.csv`` (one row per bag) and ``folder/name.json`` (the rows and the totals)."""
        columns = [f.name for f in fields(BagResult)]
        text = io.StringIO()
        writer = csv.DictWriter(text, columns)
        writer.writeheader()
        for bag in self.bags:
            row = asdict(bag)
            row["notes"] = " | ".join(bag.notes)
            writer.writerow({k: _cell(v) for k, v in row.items()})
        paths = folder / f"{name}.csv", folder / f"{name}.json"
        write_atomically(paths[0], text.getvalue())
        write_atomically(paths[1], json.dumps({"bags": [asdict(bag) for bag in self.bags], "total": self.totals()},
                                              indent=1))
        return paths


def _cell(value):
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return "" if value is None else value
