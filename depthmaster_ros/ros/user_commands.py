"""The commands the node and the tools tell their user to type, in the form that runs where they run: ``ros2
lifecycle set ...`` / ``ros2 param set ...`` where the ``ros2`` command is installed (a ROS install), else the
same request through ``depthmaster-ctl`` (the venv route, which has no ``ros2``), by its full path when it is not
on the PATH either. No rclpy here: the tools that print such lines need not start ROS."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

DEFAULT_NODE = "/depthmaster"


def ctl_program() -> str | None:
    """How to call depthmaster-ctl here: its name when it is on the PATH, else its path beside this Python's
    scripts (a venv that is not activated); None when it is not installed."""
    if shutil.which("depthmaster-ctl"):
        return "depthmaster-ctl"
    beside = Path(sys.executable).parent / "depthmaster-ctl"
    return str(beside) if beside.is_file() else None


def use_ros2() -> bool:
    return shutil.which("ros2") is not None or ctl_program() is None


def _ctl(node: str, *words: str) -> str:
    option = [] if node == DEFAULT_NODE else ["--node", node]
    return shlex.join([ctl_program(), *option, *words])


def lifecycle_command(node: str, transition: str) -> str:
    """``transition`` (configure, activate, deactivate, cleanup, shutdown) of ``node`` (fully qualified name)."""
    return f"ros2 lifecycle set {node} {transition}" if use_ros2() else _ctl(node, transition)


def param_set_command(node: str, name: str, value: str) -> str:
    return f"ros2 param set {node} {name} {value}" if use_ros2() else _ctl(node, "param", "set", name, value)


def diagnostics_command(node: str) -> str:
    return "ros2 topic echo /diagnostics" if use_ros2() else _ctl(node, "diagnostics")
