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


def test_the_wait_follows_the_stream_not_the_clock(monkeypatch):
    """A stream that brings each image's exact stamp is waited for (a large image or a busy machine can delay its
    camera info by more than the tolerance); a later stamp ends the wait at once; a stream that never matches
    exactly (infos at their own rate) costs only the tolerance."""
    import threading
    import time

    from depthmaster_ros.messages import stamp_cache

    monkeypatch.setattr(stamp_cache, "EXACT_WAIT_S", 60.0)  # so that "ended early" means far earlier than that
    exact = StampCache("camera_info", "camera_info_tolerance")
    exact.add(10, "a")
    assert exact.lookup(10, 0)[0] == "a"  # the stream matches images exactly
    threading.Timer(0.5, exact.add, args=(20, "late")).start()  # later than the 0.05 s tolerance
    assert exact.wait_for(20, 0.05, expected=True) and exact.lookup(20, 0)[0] == "late"
    threading.Timer(0.2, exact.add, args=(40, "newer")).start()
    start = time.monotonic()
    assert exact.wait_for(30, 0.05, expected=True) is False  # 30 will not come: 40 came instead
    assert time.monotonic() - start < 30.0

    periodic = StampCache("camera_info", "camera_info_tolerance")
    periodic.add(1, "static info")
    for stamp in (100, 200, 300):
        assert periodic.lookup(stamp, 10**9)[0] == "static info"  # never exact
    start = time.monotonic()
    assert periodic.wait_for(400, 0.05, expected=True) is False
    assert time.monotonic() - start < 30.0
