"""depthmaster-bag against what still got through: a second run on an output another run writes, an output folder
that cannot be written (said before the model loads), a lock left by a run that was killed, and --salvage on a
bag with a damaged chunk in the middle (its index intact: it opens, then stops at the chunk without --salvage)."""

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from depthmaster_ros.samples.sample_bag import write_sample_bag

from bag_helpers import damage_a_middle_chunk, read_all

BIN = Path(sys.executable).parent


def run_cli(*args):
    return subprocess.run([str(BIN / "depthmaster-bag"), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_a_second_run_on_the_same_output_is_refused_before_the_model_loads(tmp_path):
    bag = write_sample_bag(tmp_path / "in", frames=2, width=64, height=48)
    with open(tmp_path / "out.lock", "w") as held:  # another run (this process) writes it
        held.write(f"pid {os.getpid()} on robot, started 2026-12-05 10:00:00")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_cli(bag, tmp_path / "out", "--checkpoint", tmp_path / "no_checkpoint_here")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    assert line == (f"depthmaster-bag: output '{tmp_path / 'out'}' is being written by another run (pid "
                    f"{os.getpid()} on robot, started 2026-12-05 10:00:00); wait for it to end, or choose another "
                    "output")
    assert not (tmp_path / "out.partial").exists()


def test_an_output_folder_that_cannot_be_written_is_said_before_the_model_loads(tmp_path):
    """/sys refuses new entries even to root (a read-only folder does not stop root)."""
    bag = write_sample_bag(tmp_path / "in", frames=2, width=64, height=48)
    result = run_cli(bag, "/sys/depthmaster_out", "--checkpoint", tmp_path / "no_checkpoint_here")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    assert line.startswith("depthmaster-bag: cannot write the output in '/sys': "), line  # not the checkpoint


def test_salvage_past_a_damaged_chunk_after_a_killed_run(tiny_checkpoint, tmp_path):
    intact = write_sample_bag(tmp_path / "in", frames=12, width=160, height=120)
    damaged, _ = damage_a_middle_chunk(intact, tmp_path / "damaged")
    (tmp_path / "out.lock").write_text("pid 999999 on robot, started 2026-12-05 10:00:00")  # a SIGKILLed run's
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    processing_res: 64\n")
    common = (tmp_path / "out", "--checkpoint", tiny_checkpoint, "--params", params, "--no-copy-input")
    result = run_cli(damaged, *common)
    assert "took over the lock of a run that is no longer running (pid 999999 on robot" in result.stderr
    assert result.returncode == 2 and "--salvage reads what is readable" in result.stderr  # without --salvage
    result = run_cli(damaged, *common, "--resume", "--salvage")
    assert result.returncode == 0, result.stderr
    served = int(result.stdout.split(" frames served")[0].split()[-1])
    assert 0 < served < 12 and "skipped 1 damaged region(s)" in result.stdout
    assert "/camera/image_raw " in result.stdout.split("lost (listed in metadata.yaml, unreadable): ")[1]
    outputs = read_all(tmp_path / "out")["/camera/depth/relative"]
    assert len(outputs) == served and max(t for t, _ in outputs) > min(t for t, _ in read_all(intact)[
        "/camera/image_raw"][-2:])  # frames after the damage were served
    assert not (tmp_path / "out.lock").exists()


def test_the_tools_read_a_params_file_as_ros_does(tmp_path):
    """A list mixing integers and decimals: rcl refuses it (the node would not start), so the tools do too, with
    the same line instead of running with a file the node cannot use."""
    bag = write_sample_bag(tmp_path / "in", frames=2, width=64, height=48)
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    scale_mode: pointcloud\n"
                      "    lidar_to_camera: [0.1, 0, 0, 0, 0, 0, 1]\n")
    for tool, output in (("depthmaster-bag", [tmp_path / "out"]), ("depthmaster-fleet", ["--output", tmp_path])):
        result = subprocess.run([str(BIN / tool), str(bag), *map(str, output), "--params", str(params),
                                 "--checkpoint", str(tmp_path / "no_checkpoint_here")], capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        line, = result.stderr.strip().splitlines()
        assert line == (f"{tool}: {params} line 4: lidar_to_camera mixes decimal and integer values in one list; a "
                        "ROS parameter list holds one type (write every number with a decimal point, e.g. 0.0 for "
                        "0)"), line
