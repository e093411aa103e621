"""depthmaster-bag as a command: a params file, salvage of a bag cut short, one camera's values, SIGINT and SIGKILL
then --resume byte for byte, a full disk."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from depthmaster_ros.samples.sample_bag import write_sample_bag

from bag_helpers import SIZE, params, read_all, run_bag, same_bytes


BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_bag(tmp_path_factory.mktemp("bags") / "sample", frames=6, **SIZE)


def run_cli(*args, **kwargs):
    return subprocess.run([str(BIN / "depthmaster-bag"), *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_command_line(tiny_checkpoint, sample, tmp_path):
    params_file = tmp_path / "p.yaml"
    params_file.write_text("depthmaster:\n  ros__parameters:\n    processing_res: 64\n    scale_mode: fixed\n"
                           "    scale: 0.6\n    shift: 0.15\n")
    result = run_cli(sample, tmp_path / "out", "--checkpoint", tiny_checkpoint, "--params", params_file,
                     "--storage", "sqlite3", "--no-copy-input")
    assert result.returncode == 0, result.stderr
    assert "RANDOM weights" in result.stderr and "6 frames served, 0 messages skipped" in result.stdout
    assert "/camera/depth " in result.stdout and set(read_all(tmp_path / "out")) == {
        f"/camera/{t}" for t in ("depth", "depth/camera_info", "depth/relative", "depth/colored", "points",
                                 "depth/scale")}
    result = run_cli(sample, tmp_path / "out", "--checkpoint", tiny_checkpoint)
    assert result.returncode == 2 and "already exists" in result.stderr
    result = run_cli(sample, tmp_path / "o2", "--checkpoint", tiny_checkpoint, "--params", params_file,
                     "--image-topic", "/nope")
    assert result.returncode == 2 and "--image-topic /nope is not in the bag" in result.stderr


def test_command_line_salvages_a_bag_cut_short(tiny_checkpoint, tmp_path):
    from bag_helpers import cut_short

    bag = cut_short(write_sample_bag(tmp_path / "in", frames=6, storage="sqlite3", **SIZE), tmp_path, 0.6)
    result = run_cli(bag, tmp_path / "out", "--checkpoint", tiny_checkpoint, "--salvage", "--no-copy-input")
    assert result.returncode == 0, result.stderr
    served = int(result.stdout.split(" frames served")[0].split()[-1])
    assert 0 < served < 6 and f"salvaging {bag}: read " in result.stderr
    assert f"salvaged input: read " in result.stdout and f"/camera/image_raw {6 - served} of 6" in result.stdout
    assert len(read_all(tmp_path / "out")["/camera/depth/relative"]) == served


def test_command_line_takes_one_cameras_values_from_a_multi_camera_params_file(tiny_checkpoint, sample, tmp_path):
    params_file = tmp_path / "cams.yaml"
    params_file.write_text("/**:\n  ros__parameters:\n    processing_res: 64\n    scale_mode: fixed\n"
                           "    cameras: [front, rear]\n    rear: {scale: 0.6, shift: 0.15}\n")
    options = ["--checkpoint", tiny_checkpoint, "--params", params_file, "--no-copy-input"]
    for camera, expected in (("rear", (0.6, 0.15)), (None, (1.0, 0.0))):  # node-level defaults: 1, 0
        out = tmp_path / f"out_{camera}"
        result = run_cli(sample, out, *options, *(["--camera", camera] if camera else []))
        assert result.returncode == 0, result.stderr
        assert ("without --camera their per-camera values are not used" in result.stderr) == (camera is None)
        scales = {tuple(msg.data[1:3]) for _, msg in read_all(out)["/camera/depth/scale"]}
        assert scales == {expected}
    result = run_cli(sample, tmp_path / "o3", *options, "--camera", "left")
    assert result.returncode == 2 and "camera 'left' is not one of cameras ['front', 'rear']" in result.stderr


@pytest.fixture(scope="module")
def long_run(tiny_checkpoint, tmp_path_factory):
    """A 20-frame bag, the options of a command-line run, and the output of the same run in this process (the
    same checkpoint and parameters), under the same name."""
    from depthmaster_ros.tools.cli_options import create_backend

    tmp_path = tmp_path_factory.mktemp("long_run")
    bag = write_sample_bag(tmp_path / "long", frames=20, **SIZE)
    params_file = tmp_path / "p.yaml"
    params_file.write_text("depthmaster:\n  ros__parameters:\n    processing_res: 64\n    scale_mode: fixed\n"
                           "    scale: 0.6\n    shift: 0.15\n")
    values = params(scale_mode="fixed", scale=0.6, shift=0.15, checkpoint=str(tiny_checkpoint))
    reference = tmp_path / "reference" / "out"
    run_bag(create_backend(values), bag, reference, values, split_frames=3)[1]()
    return bag, ["--checkpoint", str(tiny_checkpoint), "--params", str(params_file), "--split-frames", "3"], \
        reference


def checkpoints(partial):
    try:
        return len(json.loads((partial / "progress.json").read_text())["files"])
    except (OSError, ValueError, KeyError):  # not there yet, or being replaced
        return 0


def started(command, until, timeout=240):
    """The command running, once ``until()`` holds (it is still running then: the test needs it mid-run)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not until() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, process.communicate()[1]
    return process


def test_sigint_and_sigkill_then_resume_give_the_bytes_of_an_uninterrupted_run(long_run, tmp_path):
    bag, options, reference = long_run
    out, partial = tmp_path / "out", tmp_path / "out.partial"
    command = [str(BIN / "depthmaster-bag"), str(bag), str(out), *options]

    process = started(command, lambda: checkpoints(partial) >= 1)
    process.send_signal(signal.SIGINT)  # Ctrl-C: stops after the current batch, saves everything done
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted after" in stderr and "all saved" in stderr and not out.exists()

    saved = checkpoints(partial)
    process = started(command + ["--resume"], lambda: checkpoints(partial) >= saved + 1)
    process.kill()  # SIGKILL: no chance to save; the file being written is left incomplete
    process.communicate(timeout=60)
    assert not out.exists() and checkpoints(partial) >= saved + 1

    result = run_cli(bag, out, *options)
    assert result.returncode == 2 and "holds an unfinished run of this output: continue it with --resume" in \
        result.stderr
    result = run_cli(bag, out, *options, "--resume")
    assert result.returncode == 0, result.stderr
    assert "frames were saved at its last checkpoint" in result.stderr and "20 frames served" in result.stdout
    assert same_bytes(out, reference) and not partial.exists()


def test_a_full_disk_says_so_and_resumes(long_run, tmp_path):
    """On a real full disk: a 300 kB tmpfs in a user and mount namespace (skipped where those are not allowed)."""
    import shutil

    bag, options, reference = long_run
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-rm", "mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)]).returncode:
        pytest.skip("no user and mount namespaces here to mount a small tmpfs")
    tool = f"{BIN / 'depthmaster-bag'} {bag} {disk / 'out'} {' '.join(options)}"
    script = (f"mount -t tmpfs -o size=300k tmpfs {disk} && {{ {tool}; echo \"exit $?\"; "
              f"mount -o remount,size=64m {disk} && {tool} --resume && cp -r {disk / 'out'} {tmp_path}; }}")
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "exit 2" in result.stdout and f"the disk is full: no space left writing {disk / 'out.partial'}" in \
        result.stderr and "of 20 frames); free some space and continue with" in result.stderr
    assert "[Errno 28]" not in result.stderr and "20 frames served" in result.stdout
    assert same_bytes(tmp_path / "out", reference)
