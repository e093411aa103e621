"""Robot-side packaging: `colcon build` of this package gives an install tree that `ros2 run` / `ros2 launch` use."""

import os
import subprocess
import sys
import tarfile
import time
from importlib.metadata import distribution
from pathlib import Path

import pytest

from ros2_tools import install_ros2_tools

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def console_scripts():
    return sorted(ep.name for ep in distribution("depthmaster_ros").entry_points if ep.group == "console_scripts")


def source_files():
    """The files git would ship (tracked + untracked-not-ignored): what a robot's workspace gets."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.split()
    return [name for name in listed if (REPO / name).is_file()]


@pytest.fixture(scope="module")
def install_tree(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("ws")
    package_dir = workspace / "src" / "depthmaster_ros"
    package_dir.mkdir(parents=True)
    archive = workspace / "src.tar"
    with tarfile.open(archive, "w") as tar:
        for name in source_files():
            tar.add(REPO / name, arcname=name)
    with tarfile.open(archive) as tar:
        tar.extractall(package_dir, filter="data")
    result = subprocess.run([str(VENV_BIN / "colcon"), "build", "--base-paths", "src"], cwd=workspace,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return workspace / "install" / "depthmaster_ros"


def test_colcon_install_tree(install_tree):
    share = install_tree / "share" / "depthmaster_ros"
    assert (share / "package.xml").read_bytes() == (REPO / "package.xml").read_bytes()
    assert (install_tree / "share/ament_index/resource_index/packages/depthmaster_ros").is_file()
    for folder, patterns in (("launch", ["*.launch.py"]), ("config", ["*.yaml", "*.rviz", "*.xml"]),
                             ("config/train", ["*.yaml"])):
        expected = sorted(p.name for pattern in patterns for p in (REPO / folder).glob(pattern))
        installed = sorted(p.name for p in (share / folder).iterdir() if p.is_file())
        assert expected and installed == expected
    assert "depthmaster.launch.py" in os.listdir(share / "launch")
    scripts = console_scripts()
    assert {"depthmaster-infer", "depthmaster-node", "depthmaster_node"} <= set(scripts)
    lib = install_tree / "lib" / "depthmaster_ros"
    assert sorted(p.name for p in lib.iterdir()) == scripts
    assert all(os.access(lib / name, os.X_OK) for name in scripts)


def test_installed_script_runs_from_install_tree(install_tree):
    site = next(install_tree.glob("lib/python3*/site-packages"))
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import depthmaster_ros; print(depthmaster_ros.__file__)"],
                           env=env, cwd=install_tree, capture_output=True, text=True, check=True).stdout
    assert Path(where.strip()).is_relative_to(install_tree)
    result = subprocess.run([str(install_tree / "lib/depthmaster_ros/depthmaster-infer"), "--help"], env=env,
                            cwd=install_tree, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--checkpoint" in result.stdout


def test_launch_file_matches_the_node():
    """launch cannot run here; check what it names against what the package provides."""
    import ast

    import yaml

    from depthmaster_ros.ros.node import NODE_NAME
    from depthmaster_ros.messages.topics import OUTPUT_TOPICS

    source = (REPO / "launch" / "depthmaster.launch.py").read_text()
    tree = ast.parse(source)
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "LifecycleNode")
    keywords = {k.arg: k.value.value for k in call.keywords if isinstance(k.value, ast.Constant)}
    assert keywords["package"] == "depthmaster_ros" and keywords["name"] == NODE_NAME
    assert keywords["executable"] in console_scripts()
    for remap in ('("image"', '("image/compressed"', '("camera_info"'):
        assert remap in source
    rviz = yaml.safe_load((REPO / "config" / "depthmaster.rviz").read_text())
    topics = [d["Topic"]["Value"] for d in rviz["Visualization Manager"]["Displays"] if "Topic" in d]
    assert topics and set(topics) <= set(OUTPUT_TOPICS)


@pytest.fixture(scope="module")
def ros2_tools(tmp_path_factory):
    return install_ros2_tools(tmp_path_factory.mktemp("ros2_tools"))


def ros2(site, install_tree, *args, pythonpath=(), prefixes=(), **kwargs):
    """``ros2 ARGS`` with the install tree sourced; ``pythonpath``: more folders for its processes; ``prefixes``:
    more ament prefixes (other packages, e.g. stand-ins for camera drivers)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (site, *pythonpath))),
           "AMENT_PREFIX_PATH": ":".join(map(str, (install_tree, *prefixes, sys.prefix)))}
    command = [sys.executable, "-c", "import sys; from ros2cli.cli import main; sys.argv[0] = 'ros2'; "
               "sys.exit(main())", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def ctrl_c(launch, client) -> str:
    """Ctrl-C in the terminal of a ``ros2 launch`` (SIGINT to its process group, so its node gets it from the
    terminal and again from launch) and its output; it is killed if still running after that, or if the test failed
    first. ``client``: the test's node, destroyed."""
    import signal

    try:
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGINT)
        return launch.communicate(timeout=60)[0]
    finally:
        client.destroy_node()
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGKILL)


def test_ros2_launch_ends_with_exit_code_0_on_ctrl_c(install_tree, ros2_tools, tiny_checkpoint, tmp_path, ros):
    """As a robot engineer runs it: ros2 launch, wait for the node to be active, Ctrl-C in the terminal (SIGINT
    to the whole process group, so the node gets it from the terminal and again from launch)."""
    import time

    from node_process import lifecycle
    from depthmaster_ros.ros.client import DepthMasterClient

    params = tmp_path / "params.yaml"
    params.write_text(f'/**:\n  ros__parameters:\n    checkpoint: "{tiny_checkpoint}"\n    processing_res: 64\n')
    launch = ros2(ros2_tools, install_tree, "launch", "depthmaster_ros", "depthmaster.launch.py",
                  f"params_file:={params}", "namespace:=launched", start_new_session=True)
    client = DepthMasterClient(namespace="/launched", outputs=("depth/relative",), name="launch_probe")
    running = False
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and launch.poll() is None:
            if client.count_publishers("/launched/depth/relative") and lifecycle(client, "/launched/depthmaster") \
                    == "active":
                break
            time.sleep(0.5)
        running = launch.poll() is None
    finally:
        output = ctrl_c(launch, client)
    assert running, output
    assert launch.returncode == 0, output
    assert "process has finished cleanly" in output and "process has died" not in output, output
    assert "Traceback" not in output, output


def test_ros2_launch_runs_a_plugin_installed_beside_the_package(install_tree, ros2_tools, tmp_path, ros):
    """A plug-in package installed beside this one (test/plugin_package.py, by pip into its own folder on the
    PYTHONPATH): the launch file's node takes its backend and scale mode from the params file, with no edit here."""
    import time

    import numpy as np

    from depthmaster_ros.ros.client import DepthMasterClient
    from node_process import image_array, sample_frame
    from plugin_package import write_package

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation",
                    "--target", str(site), str(write_package(tmp_path / "src"))], check=True, capture_output=True,
                   timeout=600)
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    backend: ramp\n    ramp_low: 0.4\n    ramp_high: 0.4\n"
                      "    scale_mode: surveyed\n    surveyed_scale: 0.5\n    surveyed_shift: 0.0\n")
    launch = ros2(ros2_tools, install_tree, "launch", "depthmaster_ros", "depthmaster.launch.py",
                  f"params_file:={params}", "namespace:=plugged", pythonpath=[site], start_new_session=True)
    client = DepthMasterClient(namespace="/plugged", outputs=("depth",), name="launch_plugin_probe")
    try:
        rgb, camera = sample_frame(64, 48)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and launch.poll() is None and not client.received["depth"]:
            client.publish_frame(rgb, camera, time.time_ns())  # until the node is up and answers
            client.spin_until(lambda: bool(client.received["depth"]), 2.0)
        depth = [image_array(msg) for msg in client.received["depth"][:1]]
    finally:
        output = ctrl_c(launch, client)
    assert depth, output
    # p = 0.4 everywhere, s = 0.5, t = 0: depth = 1 / (0.5 * 0.4)^2 = 25 m
    assert np.allclose(depth[0], 25.0, rtol=1e-5)
    assert launch.returncode == 0 and "loaded ramp backend (0.4 to 0.4)" in output, output


# Every argument of every launch file (those of depthmaster.launch.py also apply to the files that include it).
NODE_ARGS = {"params_file": "/tmp/p.yaml", "namespace": "front", "checkpoint": "/models/DepthMaster",
             "scale_mode": "fixed", "input_transport": "raw", "image": "/c/image_raw",
             "compressed_image": "/c/image_raw/compressed", "camera_info": "/c/camera_info",
             "sparse_depth": "/c/depth", "sparse_depth_info": "/c/depth/camera_info", "lidar_points": "/lidar",
             "autostart": "false", "log_level": "debug", "use_rviz": "false"}
LAUNCH_ARGS = {
    "depthmaster.launch.py": NODE_ARGS,
    "realsense.launch.py": {"camera_namespace": "rs", "camera_name": "front", "serial_no": "123456",
                            "color_profile": "1280,720,15", "depth_profile": "848,480,15", **NODE_ARGS},
    "usb_cam.launch.py": {"camera_namespace": "usb", "video_device": "/dev/video2", "image_width": "1280",
                          "image_height": "720", "framerate": "15.0", "pixel_format": "mjpeg2rgb",
                          "frame_id": "usb_optical_frame", "camera_info_url": "file:///tmp/usb.yaml", **NODE_ARGS},
    "compressed_camera.launch.py": {"decoder": "republish", "raw_image": "decoded", **NODE_ARGS},
}


def test_launch_files_declare_their_arguments(install_tree, ros2_tools):
    """`ros2 launch --show-args` of each launch file lists exactly its arguments (the included node's too), and
    `ros2 launch --print` reads each with every argument given."""
    import re

    assert sorted(p.name for p in (install_tree / "share/depthmaster_ros/launch").glob("*.launch.py")) == \
        sorted(LAUNCH_ARGS)
    for name, values in LAUNCH_ARGS.items():
        shown = ros2(ros2_tools, install_tree, "launch", "depthmaster_ros", name, "--show-args")
        output = shown.communicate(timeout=120)[0]
        assert shown.returncode == 0, output
        assert sorted(re.findall(r"^    '([\w.]+)':$", output, re.M)) == sorted(values), (name, output)
        printed = ros2(ros2_tools, install_tree, "launch", "--print", "depthmaster_ros", name,
                       *(f"{key}:={value}" for key, value in values.items()))
        output = printed.communicate(timeout=120)[0]
        assert printed.returncode == 0, (name, output)
        assert ("OpaqueFunction" if name == "depthmaster.launch.py" else "IncludeLaunchDescription") in output
        assert "Traceback" not in output and "error" not in output.lower(), (name, output)


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    from driver_stand_ins import install_stand_ins

    return install_stand_ins(tmp_path_factory.mktemp("drivers"))


def run_launch(ros2_tools, install_tree, stand_ins, name, tmp_path, checkpoint, *args):
    params = tmp_path / "params.yaml"
    params.write_text(f'/**:\n  ros__parameters:\n    checkpoint: "{checkpoint}"\n    processing_res: 64\n')
    return ros2(ros2_tools, install_tree, "launch", "depthmaster_ros", name, f"params_file:={params}", *args,
                prefixes=[stand_ins], start_new_session=True)


def served(launch, client, topic, frame_id, timeout=240):
    """Until the node answers on ``topic`` (in ``frame_id``); then Ctrl-C to the launch (``client`` destroyed).
    (the launch's output, the node's last /diagnostics status as key/values)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and launch.poll() is None and not client.received[topic]:
            time.sleep(0.5)
        client.received["/diagnostics"].clear()  # a status published after that output
        client.spin_until(lambda: bool(client.latest_diagnostics()), 15.0)
        running, received, diagnostics = launch.poll() is None, list(client.received[topic]), \
            client.latest_diagnostics()
    finally:
        output = ctrl_c(launch, client)
    assert running and received, f"nothing on {topic}:\n{output}"
    assert {m.header.frame_id for m in received} == {frame_id}
    assert launch.returncode == 0 and "process has died" not in output and "Traceback" not in output, output
    return output, diagnostics


def stand_in_parameters(output, executable):
    import json
    import re

    return json.loads(re.search(rf"stand-in {executable}: (.*)$", output, re.M).group(1))


def test_realsense_launch_serves_the_camera(install_tree, ros2_tools, stand_ins, tiny_checkpoint, tmp_path, ros):
    """The RealSense driver (a stand-in publishing where realsense2_camera does) and the node beside its topics:
    the colour image in, its aligned depth paired as the sparse depth, outputs in the colour optical frame."""
    from depthmaster_ros.ros.client import DepthMasterClient

    launch = run_launch(ros2_tools, install_tree, stand_ins, "realsense.launch.py", tmp_path, tiny_checkpoint,
                        "camera_namespace:=rs", "camera_name:=front", "color_profile:=1280,720,15")
    client = DepthMasterClient(namespace="/rs/front", outputs=("depth/relative",), name="realsense_probe")
    output, diagnostics = served(launch, client, "depth/relative", "front_color_optical_frame")
    assert diagnostics["scale_mode"] == "sparse_depth"
    assert "no sparse depth image" not in diagnostics["metric_state"], diagnostics  # the aligned depth arrived
    assert diagnostics["metric_source_rejected"] == "0", diagnostics
    driver = stand_in_parameters(output, "realsense2_camera_node")
    assert driver["align_depth.enable"] is True and driver["enable_depth"] is True and driver["enable_color"]
    assert driver["rgb_camera.color_profile"] == "1280,720,15" and driver["camera_name"] == "front"


def test_usb_cam_launch_serves_the_camera(install_tree, ros2_tools, stand_ins, tiny_checkpoint, tmp_path, ros):
    from depthmaster_ros.ros.client import DepthMasterClient

    launch = run_launch(ros2_tools, install_tree, stand_ins, "usb_cam.launch.py", tmp_path, tiny_checkpoint,
                        "camera_namespace:=usb", "frame_id:=usb_optical_frame", "image_width:=1280")
    client = DepthMasterClient(namespace="/usb", outputs=("depth/relative",), name="usb_probe")
    output, _ = served(launch, client, "depth/relative", "usb_optical_frame")
    driver = stand_in_parameters(output, "usb_cam_node_exe")
    assert driver["image_width"] == 1280 and driver["framerate"] == 30.0 and driver["video_device"] == "/dev/video0"


@pytest.mark.parametrize("decoder", ["node", "republish"])
def test_compressed_camera_launch(install_tree, ros2_tools, stand_ins, tiny_checkpoint, tmp_path, ros, decoder):
    """A camera elsewhere publishing JPEG (here this test): decoded by the node itself, or by image_transport's
    republish (a stand-in) into a raw topic the node subscribes to."""
    from depthmaster_ros.ros.client import DepthMasterClient

    from node_process import sample_frame

    launch = run_launch(ros2_tools, install_tree, stand_ins, "compressed_camera.launch.py", tmp_path,
                        tiny_checkpoint, "namespace:=net", f"decoder:={decoder}",
                        "compressed_image:=/remote/image_raw/compressed", "camera_info:=/remote/camera_info")
    camera = DepthMasterClient(namespace="/remote", outputs=(), image="image_raw", name="remote_camera")
    client = DepthMasterClient(namespace="/net", outputs=("depth/relative",), name="compressed_probe")
    rgb, intrinsics = sample_frame(64, 48)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and launch.poll() is None and not client.received["depth/relative"]:
            camera.publish_frame(rgb, intrinsics, camera.get_clock().now().nanoseconds, frame_id="remote_optical",
                                 compressed="jpeg")
            time.sleep(0.5)
        output, _ = served(launch, client, "depth/relative", "remote_optical")
    finally:
        camera.destroy_node()
    if decoder == "republish":
        parameters = stand_in_parameters(output, "republish")
        assert (parameters["in_transport"], parameters["out_transport"]) == ("compressed", "raw")
    else:
        assert "stand-in republish" not in output
