"""The commands of the README and docs/*.md, run as written (the blocks marked ``<!-- readme-test: NAME -->``, see
test/doc_blocks.py), in a sandbox that holds what they refer to: ``~/models/DepthMaster`` (a tiny random
checkpoint), ``recording/`` (a generated sample bag), ``my_images/``, ``frame.png``, ``my_depthmaster.yaml`` (a
copy of config/depthmaster.yaml with the edits the docs ask for), ``config/depthmaster.yaml``, ``docs/`` and the
docs' yaml blocks as files. The network is replaced by an ``hf`` that copies the tiny checkpoint into the Hugging
Face cache the way ``hf download`` lays it out. A README or a page whose commands drift from the tools fails here."""

import csv
import json
import os
import re
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from depthmaster_ros.messages.conversions import stamp_to_ns
from depthmaster_ros.ros.client import DepthMasterClient
from depthmaster_ros.samples.sample_bag import write_sample_bag

from bag_helpers import read_all
from doc_blocks import REPO, Block, doc_blocks, run_block, write_files
from eval_fixtures import write_datasets
from node_process import sample_frame

# Every runnable block, by the page it is on. A block that loses its marker, or a new one that no test here runs,
# fails test_the_marked_blocks_exist: add a new block's name here with a test of what it should do.
EXPECTED_BLOCKS = {
    "weights-cache": "README.md",
    "node": "README.md",
    "weights-folder": "docs/install.md",
    "python-api": "docs/python-api.md",
    "python-engine": "docs/python-api.md",
    "cameras.yaml": "docs/node.md",
    "cameras": "docs/node.md",
    "bag": "docs/offline.md",
    "replay": "docs/offline.md",
    "fleet": "docs/offline.md",
    "eval": "docs/evaluation-and-training.md",
    "temporal-synthetic": "docs/temporal.md",
    "temporal-scannet": "docs/temporal.md",
    "diagnostics": "docs/troubleshooting.md",
    "broken.yaml": "docs/troubleshooting.md",
    "params-check": "docs/troubleshooting.md",
    "ctl": "docs/tools.md",
    "view-layout": "docs/tools.md",
    "regenerate": "docs/development.md",
    "onnx-export": "docs/jetson-tensorrt.md",
}
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
    (root / "docs").mkdir()
    shutil.copy(REPO / "config" / "depthmaster.yaml", root / "config" / "depthmaster.yaml")
    text = (REPO / "config" / "depthmaster.yaml").read_text()  # the user's copy, edited as the README says
    for line in ('processing_res: 768', 'scale_mode: "none"'):
        assert f"    {line}\n" in text
    text = text.replace("    processing_res: 768\n", "    processing_res: 64\n")
    (root / "my_depthmaster.yaml").write_text(text.replace('    scale_mode: "none"\n', '    scale_mode: "fixed"\n'))
    write_files(root)
    shims = root / "bin"
    shims.mkdir()
    (shims / "hf").write_text(HF_SHIM.format(python=sys.executable, checkpoint=tiny_checkpoint))
    (shims / "hf").chmod(0o755)
    env = {**os.environ, "HOME": str(home), "PATH": f"{shims}:{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return root, env


def run(sandbox, name, timeout=600):
    return run_block(*sandbox, name, timeout)


def start(sandbox, name) -> Block:
    return Block(*sandbox, name)


def answered(client: DepthMasterClient, topic: str, width: int = 64, height: int = 48, tries: int = 100) -> bool:
    """Publish a frame every 3 s until one is answered on ``topic`` (however long the node takes)."""
    rgb, camera = sample_frame(width, height)
    sent = set()
    for _ in range(tries):
        sent.add(client.get_clock().now().nanoseconds)
        client.publish_frame(rgb, camera, max(sent))
        if client.spin_until(lambda: any(stamp_to_ns(m.header.stamp) in sent for m in client.received[topic]), 3.0):
            return True
    return False


def test_the_marked_blocks_exist():
    assert {name: block.path for name, block in doc_blocks().items()} == EXPECTED_BLOCKS


def test_download_into_the_cache_then_the_default_checkpoint_works(sandbox):
    output = run(sandbox, "weights-cache")
    assert "RANDOM weights" in output and "2 image(s) written" in output
    assert sorted(p.name for p in (sandbox[0] / "out").glob("*_pred.npy")) == ["0_pred.npy", "1_pred.npy"]


def test_download_into_a_folder_of_your_choice(sandbox):
    root, env = sandbox
    shutil.rmtree(Path(env["HOME"]) / "models" / "DepthMaster")  # the block's download puts it back
    output = run(sandbox, "weights-folder")
    assert "downloaded (test stand-in) zysong212/DepthMaster" in output and "2 image(s) written" in output
    assert (Path(env["HOME"]) / "models" / "DepthMaster" / "model_index.json").is_file()


def test_python_api(sandbox):
    run(sandbox, "python-api")
    output = run(sandbox, "python-engine")
    assert "(48, 64) (48, 64) {}" in output


def test_depthmaster_bag(sandbox):
    output = run(sandbox, "bag")
    assert "8 frames served" in output
    bag = read_all(sandbox[0] / "depth_out")
    assert len(bag["/camera/depth"]) == 8 and len(bag["/camera/points"]) == 8


def test_the_node_command_and_reading_its_diagnostics(ros, sandbox):
    node = start(sandbox, "node")
    client = DepthMasterClient(namespace="/", outputs=("depth", "points"), name="readme_client",
                               image="/camera/color/image_raw", camera_info="/camera/color/camera_info")
    try:
        assert client.spin_until(lambda: client.image_pub.get_subscription_count() > 0, 180), node.stop()
        assert answered(client, "points"), "the README's node never answered: " + node.stop()
        diagnostics = run(sandbox, "diagnostics", timeout=120)  # the troubleshooting page's reader, node running
        ctl = run(sandbox, "ctl", timeout=120)  # tools.md's depthmaster-ctl lines, on the same node
    finally:
        client.destroy_node()
        output = node.stop()
    assert node.process.returncode == 0, output
    assert re.match(r"\[(OK|WARN)\] depthmaster: depth: ", diagnostics), diagnostics
    for key, value in (("lifecycle_state", "active"), ("scale_mode", "fixed"), ("metric_state", "ok")):
        assert re.search(rf"^    {key} +{value}$", diagnostics, re.M), diagnostics
    assert re.match(r"active\nscale: 0.5\nscale: 0.5\nshift: 0.05\nscale_mode: fixed\n\[(OK|WARN)\] depthmaster: "
                    r"depth: ", ctl), ctl


def test_a_foxglove_layout(sandbox):
    import json

    run(sandbox, "view-layout")
    text = json.dumps(json.loads((sandbox[0] / "depthmaster_layout.json").read_text()))
    assert '"/camera/depth/colored"' in text and '"/camera/points"' in text


def test_several_cameras_in_one_node(ros, sandbox):
    node = start(sandbox, "cameras")
    clients = {name: DepthMasterClient(namespace=f"/{name}", outputs=("depth/relative",), name=f"{name}_probe",
                                       image=f"/{name}/color/image_raw", camera_info=f"/{name}/color/camera_info")
               for name in ("front", "rear")}
    try:
        for name, client in clients.items():
            assert client.spin_until(lambda: client.image_pub.get_subscription_count() > 0, 180), node.stop()
            assert answered(client, "depth/relative"), f"camera {name} never answered: " + node.stop()
        front = clients["front"]
        assert front.spin_until(lambda: {"front", "rear"} <= cameras_reported(front), 30), node.stop()
    finally:
        for client in clients.values():
            client.destroy_node()
        output = node.stop()
    assert node.process.returncode == 0, output
    statuses = {s.name: {kv.key: kv.value for kv in s.values} for m in front.received["/diagnostics"] for s in m.status}
    assert statuses["depthmaster: depth rear"]["scale_mode"] == "ground_plane"


def cameras_reported(client) -> set:
    return {s.name.removeprefix("depthmaster: depth ") for m in client.received["/diagnostics"] for s in m.status}


def test_replay(ros, sandbox):
    """With the real weights the LiDAR gives the scale and depth and points appear; these random weights give no
    usable fit, and the node must say so rather than stay silent."""
    probe = DepthMasterClient(namespace="/", outputs=("depth", "points", "depth/relative"), name="replay_probe")
    try:
        block = start(sandbox, "replay")
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


def test_fleet_on_this_machine(sandbox):
    root, _ = sandbox
    for name, frames in (("monday", 3), ("tuesday", 2)):
        write_sample_bag(root / "archive" / name, frames=frames, width=64, height=48)
    output = run(sandbox, "fleet")
    for name, frames in (("monday", 3), ("tuesday", 2)):
        bag = read_all(root / "depth_archive" / name)
        assert len(bag["/camera/depth"]) == frames and len(bag["/camera/points"]) == frames, output
    with open(root / "depth_archive" / "fleet_summary.csv") as summary:
        rows = {Path(row["output"]).name: row for row in csv.DictReader(summary)}
    assert {name: (row["status"], row["frames_out"]) for name, row in rows.items()} == \
        {"monday": ("done", "3"), "tuesday": ("done", "2")}, output


def test_the_papers_evaluation(sandbox):
    root, env = sandbox
    write_datasets(Path(env["HOME"]) / "data" / "eval")
    output = run(sandbox, "eval")
    assert "RANDOM weights" in output
    with open(root / "results" / "nyu" / "per_image.csv") as table:
        assert len(list(csv.DictReader(table))) == 2
    summary = json.loads((root / "results" / "nyu" / "summary.json").read_text())
    assert summary, output
    assert any((Path(env["HOME"]) / "data" / "eval_pred" / "nyu").rglob("*")), "no predictions saved"


def test_a_params_file_the_node_cannot_read(sandbox):
    output = run(sandbox, "params-check", timeout=120)
    assert output.splitlines() == [
        "depthmaster-node: broken.yaml line 4: lidar_to_camera mixes decimal and integer values in one list; a ROS "
        "parameter list holds one type (write every number with a decimal point, e.g. 0.0 for 0)", "exit code 2"]


def test_the_temporal_evaluation_on_generated_and_scannet_layout_sequences(sandbox):
    """docs/temporal.md's commands: the synthetic tables (TAE among the columns, the long loop among the
    sequences), and the model on a ScanNet-layout scene under ~/data/scannet (the sample scene written in that
    layout: 13 frames, of which the protocol scores frames 10 to 12)."""
    from depthmaster_ros.eval.scannet_sequences import write_scene
    from depthmaster_ros.samples.sample_scene import PinholeCamera, render, view_pose

    root, env = sandbox
    output = run(sandbox, "temporal-synthetic")
    results = json.loads((root / "results" / "temporal" / "temporal.json").read_text())
    assert "long loop" in results and "| TAE | metric TAE |" in output
    pinhole = PinholeCamera.with_size(64, 48)
    times = [k / 30 for k in range(13)]
    views = [render(pinhole, t=t) for t in times]
    write_scene(Path(env["HOME"]) / "data" / "scannet" / "scene0000_00", [rgb for rgb, _ in views],
                [depth for _, depth in views], [view_pose(t) for t in times], pinhole.K)
    output = run(sandbox, "temporal-scannet")
    assert "RANDOM weights" in output and "scene0000_00: 3 frames" in output
    scannet = json.loads((root / "results" / "temporal_scannet" / "temporal.json").read_text())
    assert list(scannet["scenes"]) == ["scene0000_00"] and scannet["mean"]


def test_regenerating_the_generated_files(sandbox):
    """The development page's commands write exactly the files the repository holds (the figure: the same size and,
    within text rendering, the same picture)."""
    root, _ = sandbox
    output = run(sandbox, "regenerate")
    assert (root / "config" / "depthmaster.yaml").read_text() == (REPO / "config" / "depthmaster.yaml").read_text()
    assert (root / "docs" / "parameters.md").read_text() == (REPO / "docs" / "parameters.md").read_text()
    made = np.asarray(Image.open(root / "docs" / "images" / "sample_scene.png").convert("RGB"), np.float64)
    kept = np.asarray(Image.open(REPO / "docs" / "images" / "sample_scene.png").convert("RGB"), np.float64)
    assert made.shape == kept.shape == (576, 1920, 3), (made.shape, kept.shape)
    assert np.abs(made - kept).mean() < 2.0, "docs/images/sample_scene.png is stale: regenerate it" + output


def test_onnx_export(sandbox):
    output = run(sandbox, "onnx-export")
    assert "640x480 images at processing_res 768: model at 768x576 (WxH), fp32, dynamic batch" in output
    assert "check: ONNX Runtime (CPU) vs PyTorch eager on the same fp32 input" in output
    home = Path(sandbox[1]["HOME"])
    assert (home / "models" / "depthmaster_768x576_fp32.onnx").is_file()
