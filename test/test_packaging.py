"""Robot-side packaging: `colcon build` of this package gives an install tree that `ros2 run` / `ros2 launch` use."""

import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from importlib.metadata import distribution
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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


def test_package_xml_is_format_3_ament_python():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "depthmaster_ros"
    assert root.find("export/build_type").text == "ament_python"
    depends = {e.text for e in root.iter("exec_depend")}
    assert {"rclpy", "sensor_msgs", "diagnostic_msgs", "python3-numpy"} <= depends


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
    from depthmaster_ros.ros.outputs import OUTPUT_TOPICS

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
