"""The README's commands, run as written (the blocks marked ``<!-- readme-test: NAME -->``), in a sandbox that holds
what they refer to: ``~/models/DepthMaster`` (a tiny random checkpoint), ``recording/`` (a generated sample bag),
``my_images/``, ``frame.png``, ``my_depthmaster.yaml`` (a copy of config/depthmaster.yaml with the edits the
README asks for) and ``config/depthmaster.yaml``. The network is replaced by an ``hf`` that copies the tiny
checkpoint into the Hugging Face cache the way ``hf download`` lays it out. A README whose commands drift from the
tools fails here."""

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image

from depthmaster_ros.messages.conversions import stamp_to_ns
from depthmaster_ros.ros.client import DepthMasterClient
from depthmaster_ros.samples.sample_bag import write_sample_bag

from node_process import sample_frame
from bag_helpers import read_all

REPO = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- readme-test: ([\w-]+) -->\n```(bash|python)\n(.*?)```", re.S)
HF_SHIM = textwrap.dedent('''\
    #!{python}
    """Stands in for `hf download REPO [--local-dir DIR]` without the network: the tiny checkpoint, laid out as the
    Hugging Face cache keeps a download (models--OWNER--NAME/snapshots/REV + refs/main), or copied to DIR."""
    import shutil, sys
    from pathlib import Path
    from huggingface_hub import constants
    args = sys.argv[1:]
    assert args[:1] == ["download"], args
    repo, source = args[1], Path("{checkpoint}")
    if "--local-dir" in args:
        shutil.copytree(source, Path(args[args.index("--local-dir") + 1]).expanduser(), dirs_exist_ok=True)
    else:
        folder = Path(constants.HF_HUB_CACHE) / ("models--" + repo.replace("/", "--"))
        shutil.copytree(source, folder / "snapshots" / ("0" * 40), dirs_exist_ok=True)
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / "main").write_text("0" * 40)
    print("downloaded (test stand-in)", repo)
''')


def readme_blocks() -> dict[str, tuple[str, str]]:
    return {name: (language, code) for name, language, code in BLOCK.findall((REPO / "README.md").read_text())}


@pytest.fixture(scope="module")
def sandbox(tiny_checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    home = root / "home"
    shutil.copytree(tiny_checkpoint, home / "models" / "DepthMaster")
    write_sample_bag(root / "recording", frames=8, width=64, height=48)
    (root / "my_images").mkdir()
    for index in range(2):
        Image.fromarray(sample_frame(64, 48, t=index / 2)[0]).save(root / "my_images" / f"{index}.png")
    Image.fromarray(sample_frame(64, 48)[0]).save(root / "frame.png")
    (root / "config").mkdir()
    shutil.copy(REPO / "config" / "depthmaster.yaml", root / "config" / "depthmaster.yaml")
    text = (REPO / "config" / "depthmaster.yaml").read_text()  # the user's copy, edited as the README says
    for line in ('processing_res: 768', 'scale_mode: "none"'):
        assert f"    {line}\n" in text
    text = text.replace("    processing_res: 768\n", "    processing_res: 64\n")
    (root / "my_depthmaster.yaml").write_text(text.replace('    scale_mode: "none"\n', '    scale_mode: "fixed"\n'))
    shims = root / "bin"
    shims.mkdir()
    (shims / "hf").write_text(HF_SHIM.format(python=sys.executable, checkpoint=tiny_checkpoint))
    (shims / "hf").chmod(0o755)
    env = {**os.environ, "HOME": str(home), "PATH": f"{shims}:{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return root, env


class Block:
    """A README block running in its own process group (a block may leave a node running in the background),
    its output in a file (a background process keeps a pipe open after the block ends)."""

    def __init__(self, sandbox, name: str):
        root, env = sandbox
        language, code = readme_blocks()[name]
        command = ["bash", "-e", "-c", code] if language == "bash" else [sys.executable, "-c", code]
        self.log = root / f"{name}.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def wait(self, timeout: float = 600) -> int:
        return self.process.wait(timeout)

    def stop(self) -> str:
        """SIGINT to everything the block started (as Ctrl-C in its terminal); its output."""
        try:
            os.killpg(self.process.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        self.process.wait(60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and subprocess.run(["pgrep", "-g", str(self.process.pid)],
                                                             capture_output=True).returncode == 0:
            time.sleep(0.2)  # background processes of the block finishing
        return self.log.read_text()


def run(sandbox, name, timeout=600):
    block = Block(sandbox, name)
    code = block.wait(timeout)
    output = block.stop()
    assert code == 0, f"README block {name!r} failed:\n{output}"
    return output


def test_the_marked_blocks_exist():
    assert set(readme_blocks()) == {"weights-cache", "python-api", "python-engine", "node", "bag", "replay"}


def test_download_into_the_cache_then_the_default_checkpoint_works(sandbox):
    output = run(sandbox, "weights-cache")
    assert "RANDOM weights" in output and "2 image(s) written" in output
    assert sorted(p.name for p in (sandbox[0] / "out").glob("*_pred.npy")) == ["0_pred.npy", "1_pred.npy"]


def test_python_api(sandbox):
    run(sandbox, "python-api")
    output = run(sandbox, "python-engine")
    assert "(48, 64) (48, 64) {}" in output


def test_depthmaster_bag(sandbox):
    output = run(sandbox, "bag")
    assert "8 frames served" in output
    bag = read_all(sandbox[0] / "depth_out")
    assert len(bag["/camera/depth"]) == 8 and len(bag["/camera/points"]) == 8


def test_the_node_command(ros, sandbox):
    node = Block(sandbox, "node")
    client = DepthMasterClient(namespace="/", outputs=("depth", "points"), name="readme_client",
                               image="/camera/color/image_raw", camera_info="/camera/color/camera_info")
    try:
        assert client.spin_until(lambda: client.image_pub.get_subscription_count() > 0, 180), node.stop()
        rgb, camera = sample_frame(64, 48)
        sent = set()
        for _ in range(100):  # a frame every 3 s until one is answered (however long the node takes)
            sent.add(client.get_clock().now().nanoseconds)
            client.publish_frame(rgb, camera, max(sent))
            if client.spin_until(lambda: any(stamp_to_ns(m.header.stamp) in sent for m in client.received["points"]),
                                 3.0):
                break
        else:
            raise AssertionError("the README's node never answered: " + node.stop())
    finally:
        client.destroy_node()
        output = node.stop()
    assert node.process.returncode == 0, output


def test_replay(ros, sandbox):
    """With the real weights the LiDAR gives the scale and depth and points appear; these random weights give no
    usable fit, and the node must say so rather than stay silent."""
    probe = DepthMasterClient(namespace="/", outputs=("depth", "points", "depth/relative"), name="replay_probe")
    try:
        block = Block(sandbox, "replay")
        try:
            code = block.wait(600)
            probe.spin_until(lambda: probe.received["depth/relative"], 300.0)  # the node may still be at work
            probe.spin_until(lambda: False, 2.0)
        finally:
            output = block.stop()  # and the node it started in the background
        assert code == 0, output
        assert "depthmaster-play: published /camera/camera_info 8" in output
        assert "no subscriber on /camera/depth_truth, /lidar/points (played anyway)" in output
        assert probe.received["depth/relative"], output  # served while the bag played
        metric = probe.received["depth"] and probe.received["points"]
        assert metric or "no depth, points for this frame: no scale fit yet" in output, output
        statuses = [s for m in probe.received["/diagnostics"] for s in m.status if s.name.endswith(": depth")]
        assert statuses and {kv.key: kv.value for kv in statuses[-1].values}["scale_mode"] == "sparse_depth"
    finally:
        probe.destroy_node()
