"""Robot-side packaging: `colcon build` of this package gives an install tree that `ros2 run` / `ros2 launch` use."""

import os
import subprocess
import sys
import tarfile
import time
from importlib.metadata import distribution
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# The upstream `ros2 launch` / `ros2 lifecycle` tools as wheels, beside this checkout in the project's workplace;
# on a robot they come with ROS. Tests that need them skip without them.
ROS2_TOOLS = REPO.parent / "shared" / "wheels" / "ros2-tools"


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
    wheels = sorted(ROS2_TOOLS.glob("*.whl"))
    if not wheels:
        pytest.skip(f"the ROS 2 launch tools are not installed here (no wheels in {ROS2_TOOLS})")
    site = tmp_path_factory.mktemp("ros2_tools")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                    *map(str, wheels)], check=True, capture_output=True, timeout=300)
    return site


def ros2(site, install_tree, *args, prefixes=(), **kwargs):
    """The upstream `ros2` command on this package's install tree (and ``prefixes``: other packages)."""
    paths = ":".join(map(str, [install_tree, *prefixes, sys.prefix]))
    env = {**os.environ, "PYTHONPATH": str(site), "AMENT_PREFIX_PATH": paths}
    command = [sys.executable, "-c", "import sys; from ros2cli.cli import main; sys.argv[0] = 'ros2'; "
               "sys.exit(main())", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_ros2_launch_ends_with_exit_code_0_on_ctrl_c(install_tree, ros2_tools, tiny_checkpoint, tmp_path, ros):
    """As a robot engineer runs it: ros2 launch, wait for the node to be active, Ctrl-C in the terminal (SIGINT
    to the whole process group, so the node gets it from the terminal and again from launch)."""
    import signal
    import time

    from node_process import lifecycle
    from depthmaster_ros.ros.client import DepthMasterClient

    params = tmp_path / "params.yaml"
    params.write_text(f'/**:\n  ros__parameters:\n    checkpoint: "{tiny_checkpoint}"\n    processing_res: 64\n')
    launch = ros2(ros2_tools, install_tree, "launch", "depthmaster_ros", "depthmaster.launch.py",
                  f"params_file:={params}", "namespace:=launched", start_new_session=True)
    client = DepthMasterClient(namespace="/launched", outputs=("depth/relative",), name="launch_probe")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and launch.poll() is None:
            if client.count_publishers("/launched/depth/relative") and lifecycle(client, "/launched/depthmaster") \
                    == "active":
                break
            time.sleep(0.5)
        assert launch.poll() is None, launch.communicate()[0]
        os.killpg(launch.pid, signal.SIGINT)
        output, _ = launch.communicate(timeout=60)
    finally:
        client.destroy_node()
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGKILL)
    assert launch.returncode == 0, output
    assert "process has finished cleanly" in output and "process has died" not in output, output
    assert "Traceback" not in output, output


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
    """Until the node answers on ``topic`` (with ``frame_id``); then Ctrl-C to the launch. Its output."""
    import signal

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and launch.poll() is None and not client.received[topic]:
            time.sleep(0.5)
        assert launch.poll() is None and client.received[topic], "nothing on " + topic
        assert {m.header.frame_id for m in client.received[topic]} == {frame_id}
        os.killpg(launch.pid, signal.SIGINT)
        output = launch.communicate(timeout=90)[0]
    except BaseException:
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGKILL)
        print(launch.communicate()[0])
        raise
    assert launch.returncode == 0 and "process has died" not in output and "Traceback" not in output, output
    return output


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
    try:
        assert client.spin_until(lambda: "scale_mode" in client.latest_diagnostics(), 240)
        output = served(launch, client, "depth/relative", "front_color_optical_frame")
        diagnostics = client.latest_diagnostics()
    finally:
        client.destroy_node()
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
    try:
        output = served(launch, client, "depth/relative", "usb_optical_frame")
    finally:
        client.destroy_node()
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
        output = served(launch, client, "depth/relative", "remote_optical")
    finally:
        camera.destroy_node()
        client.destroy_node()
    if decoder == "republish":
        parameters = stand_in_parameters(output, "republish")
        assert (parameters["in_transport"], parameters["out_transport"]) == ("compressed", "raw")
    else:
        assert "stand-in republish" not in output
