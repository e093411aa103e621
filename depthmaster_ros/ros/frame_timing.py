"""Where one frame's time goes inside the node: a few monotonic timestamps along its path, sent as one record on
the debug topic ``~/frame_timing`` (std_msgs/String, JSON) after the frame's outputs are published, and only
while someone subscribes to that topic (``depthmaster-bench --node`` does; ``ros2 topic echo`` works too).

Why a topic: the node runs in its own process, as on a robot, and the benchmark must measure that process, not
one it shares with the client (same GIL, same executor). Why CLOCK_MONOTONIC (``time.monotonic_ns``): it is one
clock for every process of a machine, so a subscriber on the same machine puts its own timestamps (when it
published the image, when each output arrived) beside the node's. The cost when nobody listens: one clock read
per mark and per output (a few microseconds a frame); the record is neither built nor published.

Marks (nanoseconds): ``received`` (the image callback), ``taken`` (the inference thread took it: the newest-frame
hand-over), ``decoded`` (message -> RGB array), ``model_start`` / ``model_done`` (the model pass of the frames
taken together), ``finishing`` (this camera's turn after the pass: a pass's cameras one after the other, each
published before the next), ``paired`` (the frame job with its camera info and measurements, paired after the
model pass so that they had its time to arrive), ``finished`` (engine.finish: the stream's stages and the outputs:
resize, metric depth, cloud). ``outputs``: per published output, in publishing order,
[topic, build start, built, publish call returned].
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

MARKS = ("received", "taken", "decoded", "model_start", "model_done", "finishing", "paired", "finished")
TOPIC = "~/frame_timing"


@dataclass
class FrameTiming:
    camera: str = ""
    stamp_ns: int = 0
    marks: dict[str, int] = field(default_factory=dict)
    outputs: list[tuple[str, int, int, int]] = field(default_factory=list)

    @classmethod
    def starting_now(cls, camera: str) -> "FrameTiming":
        timing = cls(camera)
        timing.mark("received")
        return timing

    def mark(self, name: str, at: int | None = None) -> int:
        """Set mark ``name`` (one of :data:`MARKS`) to ``at`` or now; the time set."""
        if name not in MARKS:
            raise ValueError(f"unknown frame timing mark {name!r}; expected one of {', '.join(MARKS)}")
        self.marks[name] = time.monotonic_ns() if at is None else at
        return self.marks[name]

    def output(self, topic: str, started: int, built: int, published: int) -> None:
        self.outputs.append((topic, started, built, published))

    def to_json(self) -> str:
        return json.dumps({"camera": self.camera, "stamp_ns": self.stamp_ns, "marks": self.marks,
                           "outputs": [list(item) for item in self.outputs]})

    @classmethod
    def from_json(cls, text: str) -> "FrameTiming":
        data = json.loads(text)
        return cls(data["camera"], int(data["stamp_ns"]), {k: int(v) for k, v in data["marks"].items()},
                   [(str(t), int(a), int(b), int(c)) for t, a, b, c in data["outputs"]])
