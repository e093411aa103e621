import threading
import time

from depthmaster_ros.ros.latest_frame import LatestFrameSlot


def test_newest_frame_replaces_waiting_one():
    slot = LatestFrameSlot()
    assert slot.take(0.01) is None
    assert slot.put(1) is False and slot.put(2) is True and slot.put(3) is True
    assert slot.dropped == 2 and slot.take(0.01) == 3 and slot.take(0.01) is None


def test_take_wakes_up_on_put():
    slot = LatestFrameSlot()
    threading.Timer(0.05, slot.put, args=("frame",)).start()
    start = time.monotonic()
    assert slot.take(5.0) == "frame" and time.monotonic() - start < 2.0
