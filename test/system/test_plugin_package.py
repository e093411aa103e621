"""A plug-in installed as a separate package, with no edit here: the test package of test/plugin_package.py (a
backend, a scale source, a stage and one broken entry point) is built and installed with pip into a folder of its
own, which the node and the command-line tools see on their PYTHONPATH (the project's environment is not
touched). The node and depthmaster-bag take its backend and scale mode, run its stage, and say once that the
broken entry point is left out."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from depthmaster_ros.messages.conversions import stamp_to_ns
from depthmaster_ros.model.backends import backend_names
from depthmaster_ros.ros.client import DepthMasterClient
from depthmaster_ros.samples.sample_bag import TOPICS, write_sample_bag

from bag_helpers import read_all
from node_process import NodeProcess, image_array, sample_frame
from plugin_package import NAME, VERSION, write_package

BIN = Path(sys.executable).parent
BROKEN = f"backend plug-in 'broken' from package {NAME} {VERSION}"
LOW, HIGH, SCALE, SHIFT, OFFSET = 0.3, 0.7, 0.6, 0.05, 0.1


def expected_depth(width, height):
    """The ramp, lifted by the toy stage, through the surveyed scale."""
    p = np.linspace(LOW, HIGH, width) + OFFSET
    return np.broadcast_to(1.0 / (SCALE * p + SHIFT) ** 2, (height, width))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The package built from its source tree and installed by pip into a folder of its own."""
    root = tmp_path_factory.mktemp("plugin")
    source = write_package(root / "src")
    target = root / "site"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                             "--no-build-isolation", "--target", str(target), str(source)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert (target / "depthmaster_toy_plugin" / "backend.py").is_file()
    return target


@pytest.fixture
def plugin_env(site, monkeypatch):
    """This test's processes see the package (os.environ: NodeProcess copies it)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    return dict(os.environ)


def test_the_package_is_invisible_without_its_folder(site):
    result = subprocess.run([str(BIN / "depthmaster-bag"), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ramp" not in result.stdout and "broken" not in result.stderr


def test_depthmaster_bag_offers_it_and_runs_with_it(plugin_env, tmp_path):
    help_text = subprocess.run([str(BIN / "depthmaster-bag"), "--help"], capture_output=True, text=True,
                               timeout=120, env=plugin_env)
    assert help_text.returncode == 0, help_text.stderr
    backends = re.search(r"--backend \{([a-z_,]+)\}", help_text.stdout).group(1).split(",")
    assert backends == list(backend_names()) + ["ramp"] and "--ramp-low RAMP_LOW" in help_text.stdout
    assert help_text.stderr.count(BROKEN) == 1 and "ModuleNotFoundError" in help_text.stderr

    bag = write_sample_bag(tmp_path / "in", frames=3, width=64, height=48)
    params = tmp_path / "p.yaml"
    params.write_text(f"/**:\n  ros__parameters:\n    scale_mode: surveyed\n    surveyed_scale: {SCALE}\n"
                      f"    surveyed_shift: {SHIFT}\n    toy_lift: {OFFSET}\n    ramp_high: {HIGH}\n"
                      "    temporal_mode: 'off'\n    max_range: 1000.0\n")
    result = subprocess.run([str(BIN / "depthmaster-bag"), bag, tmp_path / "out", "--params", params,
                             "--backend", "ramp", "--ramp-low", str(LOW), "--no-copy-input"],
                            capture_output=True, text=True, timeout=300, env=plugin_env)
    assert result.returncode == 0, result.stderr
    assert "ramp backend (0.3 to 0.7)" in result.stderr and "3 frames served" in result.stdout
    out = read_all(tmp_path / "out")
    for _, msg in out["/camera/depth"]:
        assert np.allclose(image_array(msg), expected_depth(64, 48), rtol=1e-5)
    scales = [msg for _, msg in out["/camera/depth/scale"]]
    assert all(msg.layout.dim[0].label.endswith(",age,toy_mean,toy_frames") for msg in scales)
    assert [msg.data[-1] for msg in scales] == [1.0, 2.0, 3.0] and all(msg.data[1] == SCALE for msg in scales)

    wrong = subprocess.run([str(BIN / "depthmaster-bag"), bag, tmp_path / "o2", "--backend", "ramp",
                            "--ramp-low", "2"], capture_output=True, text=True, timeout=120, env=plugin_env)
    assert wrong.returncode == 2 and "ramp_low must be <= 1.0, got 2.0" in wrong.stderr


def test_the_node_takes_its_backend_scale_mode_and_stage(ros, plugin_env, tmp_path):
    node = NodeProcess("/plug", tmp_path / "node.log", checkpoint="none", backend="ramp", ramp_low=LOW,
                       ramp_high=HIGH, scale_mode="surveyed", surveyed_scale=SCALE, surveyed_shift=SHIFT,
                       toy_lift=OFFSET, temporal_mode="'off'", max_range=1000.0)  # quoted: YAML's off is false
    client = DepthMasterClient(namespace="/plug", outputs=("depth", "depth/scale"), name="plugin_client")
    try:
        assert client.wait_for_node(120), node.log()
        rgb, camera = sample_frame(64, 48)
        # a frame every 3 s until one is answered (the node may re-subscribe to match its publishers' QoS first)
        for second in range(1, 21):
            client.publish_frame(rgb, camera, second * 10**9)
            if client.spin_until(lambda: client.received["depth"] and client.received["depth/scale"], 3.0):
                break
        depth = client.received["depth"][0]
        assert np.allclose(image_array(depth), expected_depth(64, 48), rtol=1e-5), node.log()
        scale = next(m for m in client.received["depth/scale"] if m.data[0] == stamp_to_ns(depth.header.stamp) / 1e9)
        assert scale.layout.dim[0].label.endswith(",age,toy_mean,toy_frames") and scale.data[1] == SCALE
        served = int(scale.data[-1])  # the stage's count of the frames it saw
        assert served >= 1
        assert client.spin_until(lambda: int(client.latest_diagnostics().get("toy_frames", 0)) >= served, 15.0), \
            client.latest_diagnostics()
        assert client.latest_diagnostics()["scale_mode"] == "surveyed"
        assert "loaded ramp backend (0.3 to 0.7)" in node.log()
    finally:
        client.destroy_node()
        assert node.stop() == 0, node.log()
    assert node.log().count(BROKEN) == 1
