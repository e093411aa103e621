"""depthmaster-ctl against a live node process, and the node's own instructions run exactly as it prints them:
with no `ros2` command where the node runs they name depthmaster-ctl, with one they name `ros2 ...`."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from node_process import NodeProcess
from ros2_tools import install_ros2_tools

BIN = Path(sys.executable).parent
NO_ROS2_PATH = "/usr/bin:/bin"  # the venv not activated, no ROS install: neither ros2 nor depthmaster-ctl on it


def ctl(*args, timeout=120, env=None):
    return subprocess.run([str(BIN / "depthmaster-ctl"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def shell(command, env, timeout=120):
    """A line the node printed, run as a user pastes it into a terminal of the same machine."""
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=timeout, env=env)


def wait_for_log(node, pattern, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, node.log(), re.M)
        if found:
            return found
        assert node.alive(), node.log()
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} not in the node's log:\n{node.log()}")


def test_ctl_drives_a_live_node(ros, tiny_checkpoint, tmp_path):
    env = {**os.environ, "PATH": NO_ROS2_PATH}
    node = NodeProcess("/ctl", tmp_path / "node.log", env=env, checkpoint=tmp_path / "missing", processing_res=64)
    target = "/ctl/depthmaster"
    try:
        # autostart fails; the node says how to configure again, with the tool that exists here
        instruction = wait_for_log(node, r"configure again: (.+)$").group(1).strip()
        assert instruction == f"{BIN / 'depthmaster-ctl'} --node {target} configure"

        result = ctl("--node", target, "state")
        assert (result.returncode, result.stdout) == (0, "unconfigured\n"), result.stderr
        result = ctl("-n", "/ctl", "diagnostics")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("[ERROR] depthmaster: depth: configure failed: checkpoint folder")
        assert re.search(r"^    lifecycle_state +unconfigured$", result.stdout, re.M), result.stdout

        refused = shell(instruction, env)  # the instruction as printed, before the cause is fixed
        assert refused.returncode == 3 and "configure failed: checkpoint folder" in refused.stderr, refused
        assert "(state now: unconfigured)" in refused.stderr

        result = ctl("-n", "/ctl", "param", "set", "checkpoint", tiny_checkpoint)
        assert (result.returncode, result.stdout) == (0, f"checkpoint: {tiny_checkpoint}\n"), result.stderr
        configured = shell(instruction, env)
        assert (configured.returncode, configured.stdout) == (0, f"configure: {target} is now inactive\n"), configured
        result = ctl("-n", "/ctl", "configure")  # not possible from inactive
        assert result.returncode == 3 and "cannot configure /ctl/depthmaster from state 'inactive' (possible " \
            "now: activate, cleanup, shutdown)" in result.stderr, result
        result = ctl("-n", "/ctl", "activate")
        assert (result.returncode, result.stdout) == (0, f"activate: {target} is now active\n"), result.stderr

        # parameters, typed as `ros2 param set` types them
        result = ctl("-n", "/ctl", "param", "set", "scale", "2")  # an integer for a double: the node takes 2.0
        assert (result.returncode, result.stdout) == (0, "scale: 2.0\n"), result.stderr
        result = ctl("-n", "/ctl", "param", "set", "lidar_to_camera", "[0, -0.1, 0, 0.5, -0.5, 0.5, 0.5]")
        assert (result.returncode, result.stdout) == (0, "lidar_to_camera: [0.0, -0.1, 0.0, 0.5, -0.5, 0.5, 0.5]\n")
        result = ctl("-n", "/ctl", "param", "set", "scale_mode", "sparse_depth")
        assert (result.returncode, result.stdout) == (0, "scale_mode: sparse_depth\n"), result.stderr
        result = ctl("-n", "/ctl", "param", "get", "scale", "scale_mode", "processing_res", "cameras")
        assert result.stdout == "scale: 2.0\nscale_mode: sparse_depth\nprocessing_res: 64\ncameras: (not set)\n"
        result = ctl("-n", "/ctl", "param", "set", "processing_res", "64.5")
        assert result.returncode == 3, result
        assert result.stderr == "depthmaster-ctl: /ctl/depthmaster refused processing_res = 64.5: processing_res " \
            "must be an integer, got float 64.5\n"
        result = ctl("-n", "/ctl", "param", "set", "scale_mod", "fixed")
        assert result.returncode == 3 and "no parameter 'scale_mod' (did you mean scale_mode?)" in result.stderr
        result = ctl("-n", "/ctl", "param", "describe", "processing_res")
        assert result.returncode == 0 and "    type: integer\n" in result.stdout and "range: (0, " in result.stdout
        assert "scale_mode" in ctl("-n", "/ctl", "param", "list").stdout.split()
        dump = ctl("-n", "/ctl", "param", "dump")
        values = yaml.safe_load(dump.stdout)[target]["ros__parameters"]
        assert values["scale"] == 2.0 and values["processing_res"] == 64 and "cameras" not in values
        (tmp_path / "dumped.yaml").write_text(dump.stdout)  # a params file: the node's loader reads it back
        from depthmaster_ros.parameters import load_params_file

        assert load_params_file(tmp_path / "dumped.yaml")["scale_mode"] == "sparse_depth"

        # a model parameter while active: refused with the way out, which runs as written
        result = ctl("-n", "/ctl", "param", "set", "checkpoint", tmp_path / "other")
        assert result.returncode == 3, result
        way_out = re.search(r"\((.+ deactivate), then cleanup", result.stderr).group(1)
        assert way_out == f"{BIN / 'depthmaster-ctl'} --node {target} deactivate"
        result = shell(way_out, env)
        assert (result.returncode, result.stdout) == (0, f"deactivate: {target} is now inactive\n"), result.stderr

        watch = subprocess.Popen([str(BIN / "depthmaster-ctl"), "-n", "/ctl", "diagnostics", "--watch"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            lines = [watch.stdout.readline() for _ in range(200)]
            assert sum(line.startswith("[WARN] depthmaster: depth: node is inactive") for line in lines) >= 2, lines
            watch.send_signal(signal.SIGINT)
            assert watch.wait(60) == 0, watch.stderr.read()
        finally:
            if watch.poll() is None:
                watch.kill()

        # within its timeout the command discovers the graph (a loaded machine took more than 2 s to see any node)
        result = ctl("--node", "/nope/depthmaster", "--timeout", "10", "state")
        assert result.returncode == 1, result
        assert result.stderr.startswith("depthmaster-ctl: no node /nope/depthmaster answered within 10 s; nodes "
                                        "seen: ") and "did you mean /ctl/depthmaster" in result.stderr, result.stderr
        result = ctl("frobnicate")
        assert result.returncode == 2 and "invalid choice: 'frobnicate'" in result.stderr
        assert "Traceback" not in result.stderr

        result = ctl("-n", "/ctl", "shutdown")
        assert (result.returncode, result.stdout) == (0, f"shutdown: {target} is now finalized\n"), result.stderr
        node.process.wait(60)
        assert node.process.returncode == 0, node.log()
    finally:
        node.stop()


@pytest.fixture(scope="module")
def ros2_on_path(tmp_path_factory):
    """A `ros2` command on the PATH (the upstream ros2cli wheels) as a ROS install has one."""
    root = tmp_path_factory.mktemp("ros2")
    site = install_ros2_tools(root / "site")
    (root / "bin").mkdir()
    command = root / "bin" / "ros2"
    command.write_text(f"#!/bin/sh\nPYTHONPATH={site} exec {sys.executable} -c 'import sys; from ros2cli.cli "
                       "import main; sys.argv[0] = \"ros2\"; sys.exit(main())' \"$@\"\n")
    command.chmod(0o755)
    return root / "bin"


def until_found(command, env, timeout=120.0):
    """A ros2 command, again while it says "Node not found": each ros2 process discovers the graph anew and gives
    up after a short wait, which a loaded machine can overrun (a user would run it again)."""
    deadline = time.monotonic() + timeout
    result = shell(command, env)
    while "Node not found" in result.stdout + result.stderr and time.monotonic() < deadline:
        time.sleep(1.0)
        result = shell(command, env)
    return result


def test_node_names_ros2_where_it_exists(ros, tiny_checkpoint, tmp_path, ros2_on_path):
    env = {**os.environ, "PATH": f"{ros2_on_path}:{NO_ROS2_PATH}"}
    assert shutil.which("ros2", path=env["PATH"]) and not shutil.which("depthmaster-ctl", path=env["PATH"])
    node = NodeProcess("/ros2ctl", tmp_path / "node.log", env=env, checkpoint=tmp_path / "missing",
                       processing_res=64)
    try:
        instruction = wait_for_log(node, r"configure again: (.+)$").group(1).strip()
        assert instruction == "ros2 lifecycle set /ros2ctl/depthmaster configure"
        fix = until_found(f"ros2 param set /ros2ctl/depthmaster checkpoint {tiny_checkpoint}", env)
        assert fix.returncode == 0 and "Set parameter successful" in fix.stdout, fix
        result = until_found(instruction, env)
        assert result.returncode == 0 and "Transitioning successful" in result.stdout, result
        result = ctl("-n", "/ros2ctl", "state")
        assert (result.returncode, result.stdout) == (0, "inactive\n"), result.stderr
    finally:
        shell("ros2 daemon stop", env)  # the ros2 commands started ros2cli's daemon, which would outlive the test
        assert node.stop() == 0, node.log()
