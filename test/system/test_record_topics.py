"""depthmaster-record when topics are missing: none of them -> exit 1, nothing written, the typo named; some of
them -> the others recorded, the missing ones named, taken when they appear later."""

import subprocess
import sys
from pathlib import Path

from std_msgs.msg import String

from depthmaster_ros.ros.background_node import BackgroundNode

from bag_helpers import read_all

BIN = Path(sys.executable).parent


class Talker(BackgroundNode):
    """Publishes a String on each of its topics every 0.1 s."""

    def __init__(self, name, *topics):
        super().__init__(name)
        self.publishers_ = [self.create_publisher(String, topic, 10) for topic in topics]
        self.create_timer(0.1, lambda: [p.publish(String(data=p.topic_name)) for p in self.publishers_])


def record(tmp_path, *args):
    return subprocess.Popen([str(BIN / "depthmaster-record"), str(tmp_path / "out"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_none_of_the_topics_appears(ros, tmp_path):
    talker = Talker("depth_talker", "/camera/depth")
    try:
        recorder = record(tmp_path, "--topics", "/camera/depht", "--wait", "5")
        output, errors = recorder.communicate(timeout=120)
    finally:
        talker.destroy_node()
    assert recorder.returncode == 1, errors
    assert errors == "depthmaster-record: none of the topics appeared within 5 s: /camera/depht (did you mean " \
        "/camera/depth?); nothing recorded\n"
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_some_topics_appear(ros, tmp_path):
    talker = Talker("some_talker", "/camera/depth")
    late = None
    try:
        recorder = record(tmp_path, "--topics", "/camera/depth", "/camera/late", "/camera/never", "--wait", "5",
                          "--duration", "20")  # a generous while after the wait for the late topic's messages
        line = recorder.stderr.readline()
        assert line == "depthmaster-record: not seen within 5 s: /camera/late, /camera/never; recording the others " \
            "(and these if they appear)\n"
        late = Talker("late_talker", "/camera/late")  # a driver started late
        line = recorder.stderr.readline()
        assert line == "depthmaster-record: /camera/late appeared; recording it\n"
        output, errors = recorder.communicate(timeout=120)
    finally:
        talker.destroy_node()
        if late is not None:
            late.destroy_node()
    assert recorder.returncode == 0, errors
    assert output.startswith(f"depthmaster-record: wrote {tmp_path / 'out'}: /camera/depth ")
    assert output.rstrip().endswith("; never appeared: /camera/never"), output
    messages = read_all(tmp_path / "out")
    assert sorted(messages) == ["/camera/depth", "/camera/late"]
    assert messages["/camera/late"] and {m.data for _, m in messages["/camera/late"]} == {"/camera/late"}
