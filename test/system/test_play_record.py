"""depthmaster-play -> depthmaster-node -> depthmaster-record, three processes over a localhost ROS graph."""

import subprocess
import sys
from pathlib import Path

from depthmaster_ros.samples.sample_bag import TOPICS, write_sample_bag
from depthmaster_ros.messages.conversions import stamp_to_ns

from node_process import NodeProcess
from bag_helpers import read_all

BIN = Path(sys.executable).parent


def wait_for_subscribers(topics, timeout=90.0):
    """Until the node and the recorder subscribe (start-up takes a while on a loaded 2-core machine)."""
    import time

    import rclpy

    probe = rclpy.create_node("probe_subscribers")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(probe.count_subscribers(topic) > 0 for topic in topics):
                return True
            rclpy.spin_once(probe, timeout_sec=0.1)
        return False
    finally:
        probe.destroy_node()


def test_replay_through_the_node_is_recorded(ros, tiny_checkpoint, tmp_path):
    """The node keeps the newest frame, so how many of the played frames it serves depends on how busy the
    machine is; what must hold on any machine: every recorded output carries the stamp of a played frame, in
    order, and the last frame (which nothing replaces) is served."""
    import signal

    from depthmaster_ros.ros.client import DepthMasterClient

    bag = write_sample_bag(tmp_path / "in", frames=5, width=64, height=48)
    input_stamps = [stamp_to_ns(m.header.stamp) for _, m in read_all(bag)[TOPICS["image"]]]
    node = NodeProcess("/camera", tmp_path / "node.log", remaps={"image": "image_raw"}, checkpoint=tiny_checkpoint,
                       processing_res=64, scale_mode="fixed", scale=0.6, shift=0.15)
    recorder = subprocess.Popen([str(BIN / "depthmaster-record"), str(tmp_path / "out"), "--topics", "/camera/depth",
                                 "/camera/points", "--duration", "600"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    probe = DepthMasterClient(namespace="/camera", outputs=("depth", "points"), name="replay_probe")
    try:
        assert wait_for_subscribers([TOPICS["image"], TOPICS["camera_info"], "/camera/depth", "/camera/points"]), \
            node.log()
        play = subprocess.run([str(BIN / "depthmaster-play"), str(bag), "--rate", "0.5", "--wait-for-subscribers", "60",
                               "--delay", "2",
                               "--topics", TOPICS["image"], TOPICS["camera_info"]],
                              capture_output=True, text=True, timeout=300)
        assert play.returncode == 0, play.stderr
        assert f"{TOPICS['image']} 5" in play.stdout
        last = input_stamps[-1]
        assert probe.spin_until(lambda: all(any(stamp_to_ns(m.header.stamp) == last for m in probe.received[t])
                                            for t in ("depth", "points")), 300.0), node.log()
        probe.spin_until(lambda: False, 1.0)  # the recorder receives the same messages
        recorder.send_signal(signal.SIGINT)
        output, _ = recorder.communicate(timeout=120)
        assert recorder.returncode == 0, output
    finally:
        probe.destroy_node()
        if recorder.poll() is None:
            recorder.kill()
        assert node.stop() == 0, node.log()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metadata.yaml", "out_0.mcap"]  # final names
    assert not (tmp_path / "out.partial").exists()
    recorded = read_all(tmp_path / "out")
    for topic in ("/camera/depth", "/camera/points"):
        stamps = [stamp_to_ns(m.header.stamp) for _, m in recorded[topic]]
        assert stamps and stamps[-1] == input_stamps[-1], (stamps, input_stamps)
        assert stamps == [s for s in input_stamps if s in stamps] and len(set(stamps)) == len(stamps)
