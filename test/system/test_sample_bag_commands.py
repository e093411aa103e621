"""The documented offline commands, run as a new user types them on the sample bag: `depthmaster-make-sample-bag`,
then `depthmaster-bag` and `depthmaster-fleet` with a params file whose scale_mode needs a measurement topic the
tools must find themselves (the sample bag has two depth images: its ground truth and the LiDAR's). The fleet
leaves no process of its Ray instance behind, finished or stopped with Ctrl-C."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from depthmaster_ros.messages.conversions import stamp_to_ns
from depthmaster_ros.samples.sample_bag import LIDAR_TO_CAMERA

from bag_helpers import read_all

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MAKE = "depthmaster-make-sample-bag recording/"
BAG = "depthmaster-bag recording/ depth_out/ --checkpoint ~/models/DepthMaster --params my_depthmaster.yaml"
FLEET = ("depthmaster-fleet recording/ --output depth_archive/ --checkpoint ~/models/DepthMaster "
         "--params my_depthmaster.yaml")


def session_processes(sid: int) -> list[str]:
    """Processes of the session ``sid`` still running (zombies waiting for a parent are not)."""
    left = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid and fields[0] != "Z":
                    command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    left.append(f"{entry.name} {command}")
            except (OSError, IndexError, ValueError):
                continue
    return left


@contextlib.contextmanager
def ray_temp_dir():
    """A folder for Ray's files, removed afterwards: short, as its socket paths must stay under 108 bytes."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def user(tiny_checkpoint, tmp_path_factory):
    """A user's folder: the sample bag made with the documented command, the weights where the docs put them, a
    copy of config/depthmaster.yaml to edit; the venv's tools on the PATH."""
    root = tmp_path_factory.mktemp("user")
    home = root / "home"
    shutil.copytree(tiny_checkpoint, home / "models" / "DepthMaster")
    with ray_temp_dir() as ray_files:  # this run's Ray files apart from any other's
        env = {**os.environ, "HOME": str(home), "PATH": f"{BIN}:{os.environ['PATH']}", "RAY_TMPDIR": ray_files}
        made = run(MAKE, root, env)
        assert made.returncode == 0, made.stderr
        assert f"lidar_to_camera: {LIDAR_TO_CAMERA}" in made.stdout
        yield root, env


def run(command, cwd, env, timeout=900):
    return subprocess.run(["bash", "-e", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def params_file(root, **edits):
    """config/depthmaster.yaml with these lines edited (processing_res 64: the tiny model, quickly)."""
    text = (REPO / "config" / "depthmaster.yaml").read_text()
    for name, value in {"processing_res": "64", **edits}.items():
        lines = [line for line in text.splitlines() if line.startswith(f"    {name}: ")]
        assert len(lines) == 1, name
        text = text.replace(lines[0] + "\n", f"    {name}: {value}\n")
    (root / "my_depthmaster.yaml").write_text(text)


def test_bag_finds_the_sparse_depth_topic(user):
    root, env = user
    params_file(root, scale_mode='"sparse_depth"')
    result = run(BAG, root, env)
    assert result.returncode == 0, result.stderr
    assert "image /camera/image_raw, camera_info /camera/camera_info, sparse_depth /lidar/depth; scale_mode " \
        "sparse_depth" in result.stderr
    outputs = read_all(root / "depth_out")
    frames = [stamp_to_ns(m.header.stamp) for _, m in outputs["/camera/image_raw"]]
    assert len(frames) == 20
    assert [stamp_to_ns(m.header.stamp) for _, m in outputs["/camera/depth/relative"]] == frames


def test_bag_with_the_lidar_cloud(user):
    root, env = user
    params_file(root, scale_mode='"pointcloud"', lidar_to_camera=str(LIDAR_TO_CAMERA))
    shutil.rmtree(root / "depth_out", ignore_errors=True)
    result = run(BAG, root, env)
    assert result.returncode == 0, result.stderr
    assert "lidar_points /lidar/points; scale_mode pointcloud" in result.stderr


def test_fleet_runs_the_same_and_leaves_no_ray_process(user):
    root, env = user
    params_file(root, scale_mode='"sparse_depth"')
    fleet = subprocess.Popen(["bash", "-e", "-c", FLEET], cwd=root, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = fleet.communicate(timeout=900)
    finally:
        if fleet.poll() is None:
            os.killpg(fleet.pid, signal.SIGKILL)
    assert fleet.returncode == 0, output
    assert "1 bags done, 0 done earlier, 0 failed" in output
    assert session_processes(fleet.pid) == []  # at once: nothing of its Ray instance outlives it
    outputs = read_all(root / "depth_archive" / "recording")
    assert len(outputs["/camera/depth/relative"]) == 20


def test_fleet_stopped_at_once_leaves_no_ray_process(user):
    """Ctrl-C four times while the bags' workers are starting (Ray starts them as the tasks arrive): a worker still
    starting when Ray goes down is the one that used to stay, idle, for a minute or two."""
    root, env = user
    params_file(root, scale_mode='"sparse_depth"')
    shutil.rmtree(root / "depth_archive", ignore_errors=True)
    fleet = subprocess.Popen(["bash", "-e", "-c", "exec " + FLEET], cwd=root, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines = []
        for line in fleet.stdout:
            lines.append(line)
            if "model actor(s)" in line:
                break
        assert fleet.poll() is None, "".join(lines)
        for _ in range(4):  # a user pressing on while it stops: Ray's shutdown must not be interrupted
            fleet.send_signal(signal.SIGINT)
            time.sleep(0.2)
        output = "".join(lines) + fleet.communicate(timeout=300)[0]
    finally:
        if fleet.poll() is None:
            os.killpg(fleet.pid, signal.SIGKILL)
    assert fleet.returncode in (0, 130), output
    assert session_processes(fleet.pid) == []


RAYLET_KILLED = """
import json, os, signal, sys, time
from depthmaster_ros.fleet.local_ray import LocalRay, processes_of, raylet_of
import ray

local = LocalRay(num_cpus=2, include_dashboard=False, log_to_driver=False)
workers = ray.get([ray.remote(lambda: os.getpid()).remote() for _ in range(2)])
raylet = raylet_of(os.getpid())
started = processes_of(raylet)
os.kill(raylet[0], signal.SIGKILL)  # the raylet gone without stopping its workers (as when killed with its driver)
time.sleep(3)
orphans = processes_of(raylet)  # they stay: idle, retrying for minutes
local.shutdown()
print(json.dumps({"workers": workers, "started": started, "orphans": orphans, "left": processes_of(raylet)}))
"""


def test_local_ray_ends_the_workers_its_raylet_left():
    """The mechanism behind the fleet's clean exit, made to happen: the raylet dies abruptly and its workers stay
    (they did for minutes without the sweep); LocalRay.shutdown() ends them."""
    import json

    with ray_temp_dir() as ray_files:
        driver = subprocess.Popen([sys.executable, "-c", RAYLET_KILLED], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env={**os.environ, "RAY_TMPDIR": ray_files},
                                  start_new_session=True)
        try:
            output, errors = driver.communicate(timeout=300)
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 0, errors[-3000:]
    report = json.loads(output.strip().splitlines()[-1])
    assert set(report["workers"]) <= set(report["started"])
    assert set(report["workers"]) <= set(report["orphans"])  # what the sweep is for
    assert report["left"] == [] and session_processes(driver.pid) == []
