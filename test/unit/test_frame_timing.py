"""The node's per-frame timing record (ros/frame_timing.py): what the benchmark reads from ~/frame_timing."""

import time

import pytest

from depthmaster_ros.ros.frame_timing import MARKS, FrameTiming


def test_marks_are_monotonic_clock_times_and_survive_the_round_trip():
    before = time.monotonic_ns()
    timing = FrameTiming.starting_now("front")
    timing.stamp_ns = 1_700_000_000_123_456_789
    for name in MARKS[1:]:
        timing.mark(name)
    timing.mark("model_start", 42)
    timing.output("depth", 1, 2, 3)
    timing.output("points", 3, 5, 8)
    after = time.monotonic_ns()
    assert before <= timing.marks["received"] <= timing.marks["taken"] <= timing.marks["finished"] <= after
    assert timing.marks["model_start"] == 42

    copy = FrameTiming.from_json(timing.to_json())
    assert copy == timing and list(copy.marks) == list(MARKS)
    assert copy.outputs == [("depth", 1, 2, 3), ("points", 3, 5, 8)]


def test_an_unknown_mark_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown frame timing mark 'decode'.*decoded"):
        FrameTiming("").mark("decode")
