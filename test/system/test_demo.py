import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_node_and_bag_tools_end_to_end(tiny_checkpoint, tmp_path):
    env = {**os.environ, "ROS_DOMAIN_ID": str(int(os.environ["ROS_DOMAIN_ID"]) % 100 + 101)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "depthmaster-demo"), "--checkpoint", str(tiny_checkpoint),
         "--frames", "5", "--width", "64", "--height", "48", "--output", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.count("DEMO ON RANDOM WEIGHTS") == 2
    assert "depthmaster-play: published /camera/camera_info 5, /camera/image_raw 5" in out
    assert "/camera/points" in out and "latency_p50_ms" in out and "Scale in use on the last frame" in out
    assert "depthmaster-bag: wrote" in out and "5 frames served" in out
    for bag in ("sample_bag", "recorded", "offline"):
        assert (tmp_path / bag / "metadata.yaml").is_file()
