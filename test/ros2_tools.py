"""The upstream ROS 2 command-line tools (`ros2 launch`, `ros2 lifecycle`, `ros2 param`, ...) for the tests that
run them: wheels beside this checkout in the project's workplace; on a robot they come with ROS. Tests that need
them skip without them."""

import subprocess
import sys
from pathlib import Path

import pytest

ROS2_TOOLS = Path(__file__).resolve().parents[1].parent / "shared" / "wheels" / "ros2-tools"


def install_ros2_tools(target: Path) -> Path:
    """The tools installed into ``target`` (a folder for PYTHONPATH); the test is skipped without the wheels."""
    wheels = sorted(ROS2_TOOLS.glob("*.whl"))
    if not wheels:
        pytest.skip(f"the ROS 2 command-line tools are not installed here (no wheels in {ROS2_TOOLS})")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target),
                    *map(str, wheels)], check=True, capture_output=True, timeout=300)
    return target
