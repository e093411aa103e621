from depthmaster_ros.messages.stamp_cache import StampCache


def test_exact_nearest_and_reasons():
    cache = StampCache("camera_info", "camera_info_tolerance", size=3)
    assert cache.lookup(5, 10) == (None, "no valid camera_info received yet")
    for stamp in (100, 200, 300, 400):
        cache.add(stamp, f"info{stamp}")
    assert cache.lookup(300, 0) == ("info300", "")
    assert cache.lookup(310, 20) == ("info300", "")
    assert cache.lookup(100, 1000)[0] == "info200"  # 100 fell out of the 3-entry cache
    value, reason = cache.lookup(1_000_000_000, 50)
    assert value is None
    assert reason == "no camera_info within camera_info_tolerance of the image stamp (nearest 1.000 s away)"


def test_wait_for_a_message_published_just_after_the_image():
    import threading
    import time

    cache = StampCache("camera_info", "camera_info_tolerance")
    assert cache.wait_for(5, 1.0) is False  # no stream yet: no waiting
    cache.add(1, "old")
    threading.Timer(0.05, cache.add, args=(5, "new")).start()
    start = time.monotonic()
    assert cache.wait_for(5, 5.0) and time.monotonic() - start < 2.0
    assert cache.lookup(5, 0) == ("new", "")
    start = time.monotonic()
    assert cache.wait_for(9, 0.1) is False and time.monotonic() - start >= 0.09
