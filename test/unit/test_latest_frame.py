import threading
import time

from depthmaster_ros.ros.latest_frame import LatestFrames


def test_newest_frame_replaces_waiting_one_per_camera():
    dropped = []
    slots = LatestFrames(on_drop=lambda key, frame: dropped.append((key, frame)))
    assert slots.take(0.01) == {}
    assert slots.put("a", 1) is False and slots.put("a", 2) is True and slots.put("a", 3) is True
    assert slots.put("b", 10) is False
    assert dropped == [("a", 1), ("a", 2)]  # each replaced frame, once; none of b's
    assert slots.take(0.01) == {"a": 3, "b": 10} and slots.take(0.01) == {}


def test_take_wakes_up_on_put():
    slots = LatestFrames()
    threading.Timer(0.05, slots.put, args=("", "frame")).start()
    start = time.monotonic()
    assert slots.take(5.0) == {"": "frame"} and time.monotonic() - start < 2.0


def test_gather_waits_for_the_other_cameras_but_not_forever():
    slots = LatestFrames()
    slots.put("front", 1)
    threading.Timer(0.1, slots.put, args=("rear", 2)).start()
    start = time.monotonic()
    assert slots.take(1.0, keys=("front", "rear"), gather=5.0) == {"front": 1, "rear": 2}
    assert time.monotonic() - start < 2.0  # returned when the last camera delivered, not after 5 s
    slots.put("front", 3)
    start = time.monotonic()
    assert slots.take(1.0, keys=("front", "rear"), gather=0.2) == {"front": 3}  # rear never comes
    assert 0.15 < time.monotonic() - start < 2.0
    slots.put("front", 4)
    assert slots.take(1.0, keys=("front", "rear"), gather=0.0) == {"front": 4}


def test_each_replaced_frame_is_handed_to_on_drop():
    replaced = []
    slots = LatestFrames(on_drop=lambda key, frame: replaced.append((key, frame)))
    slots.put("a", 1)
    slots.put("a", 2)
    slots.put("b", 5)
    slots.put("a", 3)
    assert replaced == [("a", 1), ("a", 2)]
    assert slots.take(0.01) == {"a": 3, "b": 5}
    slots.put("a", 4)
    slots.clear()  # deactivation: discarded, not a drop
    assert replaced == [("a", 1), ("a", 2)]
