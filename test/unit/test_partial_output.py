"""An offline run's output under OUTPUT.partial/: reproducible bytes, final file names, and every way a run can
stop (Ctrl-C, a full disk, a crash before its first checkpoint) continued to the bytes of an uninterrupted run.
The hard crash (SIGKILL) of a real process is in test_bag.py."""

import errno
import json

import pytest
import yaml

from depthmaster_ros.rosbag.bag_run import Interrupted
from depthmaster_ros.rosbag.io import open_writer
from depthmaster_ros.rosbag.partial_output import SUMMARY_KEY, disk_full_message

from bag_helpers import fake_for, params, run_bag, same_bytes

VALUES = params(scale_mode="sparse_depth", scale_time_constant=0.3, max_range=1000.0)


@pytest.fixture(scope="module")
def reference(sample, tmp_path_factory):
    """An uninterrupted run, split every 2 frames, per storage."""
    out = {}
    for storage in ("mcap", "sqlite3"):
        bag = tmp_path_factory.mktemp(f"reference_{storage}") / "out"
        run_bag(fake_for(), sample, bag, VALUES, storage=storage, split_frames=2)[1]()
        out[storage] = bag
    return out


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from depthmaster_ros.samples.sample_bag import write_sample_bag

    return write_sample_bag(tmp_path_factory.mktemp("bags") / "sample", frames=6, width=64, height=48)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_two_runs_write_the_same_bytes_under_final_names(sample, reference, tmp_path, storage):
    out = tmp_path / "out"
    run_bag(fake_for(), sample, out, VALUES, storage=storage, split_frames=2)[1]()
    assert same_bytes(out, reference[storage])
    suffix = ".mcap" if storage == "mcap" else ".db3"
    files = sorted(p.name for p in out.iterdir() if p.suffix == suffix)
    metadata = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert len(files) >= 2 and files == [f"out_{i}{suffix}" for i in range(len(files))]
    assert metadata["relative_file_paths"] == files and metadata["message_count"] == 6 * 5 + 6 * 6
    assert json.loads(metadata["custom_data"][SUMMARY_KEY])["frames_served"] == 6


def test_ctrl_c_resumes_to_the_same_bytes(sample, reference, tmp_path):
    """Stopped between two splits: the file being written is kept as the tail and continued."""
    run, go = run_bag(fake_for(), sample, tmp_path / "out", VALUES, split_frames=2)

    class StopAfter:
        left = 3

        def update(self, n):
            self.left -= n
            if self.left <= 0:
                run.stop_requested = True

    with pytest.raises(Interrupted):
        go(progress=StopAfter())
    progress = json.loads((tmp_path / "out.partial" / "progress.json").read_text())
    assert progress["files"] == ["out_0"] and progress["tail"] and progress["state"]["frames_done"] == 3
    lines = []
    run_bag(fake_for(), sample, tmp_path / "out", VALUES, split_frames=2, log=lines.append)[1](resume=True)
    assert same_bytes(tmp_path / "out", reference["mcap"]) and not (tmp_path / "out.partial").exists()
    assert lines == [f"resuming {tmp_path / 'out.partial'}: 3 frames were saved at its last checkpoint"]


class FullDisk:
    """Writers that fail like a full disk once ``limit`` messages were written by all of them together."""

    def __init__(self, limit):
        self.left = limit

    def __call__(self, path, storage):
        writer = open_writer(path, storage)
        write = writer.write

        def write_until_full(connection, log_time, data):
            if self.left == 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.left -= 1
            write(connection, log_time, data)

        writer.write = write_until_full
        return writer


def test_a_full_disk_stops_with_a_resumable_run(sample, reference, tmp_path):
    run, go = run_bag(fake_for(), sample, tmp_path / "out", VALUES, split_frames=2, writer_factory=FullDisk(40))
    with pytest.raises(OSError) as failure:
        go()
    assert failure.value.errno == errno.ENOSPC and not (tmp_path / "out").exists()
    partial = tmp_path / "out.partial"
    progress = json.loads((partial / "progress.json").read_text())
    assert progress["files"] and run.saved_frames == progress["state"]["frames_done"] >= 2
    assert (partial / f"out_{len(progress['files'])}").is_dir()  # the file it was writing: not listed, dropped

    message = disk_full_message(failure.value, partial, run.saved_frames, 6, "depthmaster-bag ... --resume")
    assert message.startswith(f"the disk is full: no space left writing {partial} (")
    assert f"saved up to its last checkpoint ({run.saved_frames} of 6 frames); free some space and continue" in message
    assert disk_full_message(OSError(errno.EACCES, "Permission denied"), partial, 0, 6, "") is None

    run_bag(fake_for(), sample, tmp_path / "out", VALUES, split_frames=2)[1](resume=True)
    assert same_bytes(tmp_path / "out", reference["mcap"])


def test_a_run_killed_before_its_first_checkpoint_starts_over(sample, reference, tmp_path):
    partial = tmp_path / "out.partial"
    (partial / "out_0").mkdir(parents=True)
    (partial / "out_0" / "out_0.mcap").write_bytes(b"\x89MCAP0\r\n")  # what SIGKILL leaves of a first file
    lines = []
    run_bag(fake_for(), sample, tmp_path / "out", VALUES, split_frames=2, log=lines.append)[1](resume=True)
    assert lines == [f"cannot resume {partial}: no progress was saved before the run stopped (it was killed at its "
                     "start); starting over"]
    assert same_bytes(tmp_path / "out", reference["mcap"])
