import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def test_demo_runs_node_end_to_end(tiny_checkpoint, tmp_path):
    env = {**os.environ, "ROS_DOMAIN_ID": str(int(os.environ["ROS_DOMAIN_ID"]) % 100 + 101)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "depthmaster-demo"), "--checkpoint", str(tiny_checkpoint),
         "--frames", "3", "--width", "64", "--height", "48", "--output", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DEMO ON RANDOM WEIGHTS" in result.stdout
    assert "/demo_camera/points" in result.stdout and "Fixed scale calibrated on frame 0" in result.stdout
    assert "processed" in result.stdout
    assert np.load(tmp_path / "depth.npy").shape == (48, 64)
    assert (tmp_path / "colored.png").is_file()
