"""/diagnostics ages its reasons with the clock."""
from depthmaster_ros.ros.diagnostics import FrameStats


def test_old_reasons_are_history_not_the_present(monkeypatch):
    """/diagnostics must not repeat minutes-old reasons as if they were current."""
    import depthmaster_ros.ros.diagnostics as diagnostics

    now = [1000.0]
    monkeypatch.setattr(diagnostics.time, "monotonic", lambda: now[0])
    stats = FrameStats(window=5.0)
    stats.problem("image", "bad encoding")
    now[0] += 3.0
    stats.problem("camera_info", "K is all zeros")
    assert stats.snapshot()["recent_problems"] == ["bad encoding", "K is all zeros"]
    now[0] += 4.0  # the image rejection is 7 s old, the camera info one 4 s
    snap = stats.snapshot()
    assert snap["recent_problems"] == ["K is all zeros"] and snap["last_rejection"] == "bad encoding"


