"""depthmaster-fleet on a local Ray instance (2 CPUs): bags in, each output byte for byte what depthmaster-bag writes
for it (the tiny model; the test double where the scale tracker has to fit), a corrupt bag reported while the
others finish, a stopped run and a killed run resumed to the same outputs, a killed model actor retried by Ray,
the inputs a user can name, and the benchmark command."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from depthmaster_ros.fleet.bag_task import BagOptions
from depthmaster_ros.fleet.inputs import fleet_inputs
from depthmaster_ros.fleet.runner import ClusterOptions, FleetError, FleetRun, ModelCluster
from depthmaster_ros.samples.sample_bag import write_sample_bag

from bag_helpers import SIZE, fake_for, params, run_bag, same_bytes

BIN = Path(sys.executable).parent
THREADS = 2  # torch threads of every model instance, the bag tool's and the actors' (float rounding depends on it)
SPLIT = 3


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 1024**2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Three good bags (mcap and sqlite3) and a corrupt one, in one folder."""
    folder = tmp_path_factory.mktemp("archive")
    write_sample_bag(folder / "bag_a", frames=6, **SIZE)
    write_sample_bag(folder / "bag_b", frames=6, storage="sqlite3", **SIZE)
    write_sample_bag(folder / "bag_c", frames=9, **SIZE)
    corrupt = write_sample_bag(folder / "corrupt", frames=2, **SIZE)
    (corrupt / "corrupt.mcap").write_bytes(b"this is not an mcap file" * 100)
    return folder


@pytest.fixture(scope="module")
def model_values(tiny_checkpoint):
    return params(scale_mode="fixed", scale=0.6, shift=0.15, checkpoint=str(tiny_checkpoint), cpu_threads=THREADS)


@pytest.fixture(scope="module")
def references(archive, model_values, tmp_path_factory):
    """depthmaster-bag's run (this process) on each good bag, under the name the fleet gives its output."""
    from depthmaster_ros.tools.cli_options import create_backend

    folder = tmp_path_factory.mktemp("references")
    backend = create_backend(model_values)
    for name in ("bag_a", "bag_b", "bag_c"):
        run_bag(backend, archive / name, folder / name, model_values, split_frames=SPLIT)[1]()
    return folder


def checkpoints(folder):
    """Output files closed so far in the .partial folders under ``folder`` (or in ``folder`` itself)."""
    count = 0
    for progress in [*Path(folder).glob("*.partial/progress.json"), Path(folder) / "progress.json"]:
        try:
            count += len(json.loads(progress.read_text())["files"])
        except (OSError, ValueError, KeyError):  # being replaced
            pass
    return count


def test_outputs_equal_the_bag_tool_a_corrupt_bag_is_reported_and_a_stopped_run_resumes(
        ray_local, archive, model_values, references, tmp_path):
    from depthmaster_ros.tools.cli_options import create_backend

    long_bag = write_sample_bag(tmp_path / "in" / "bag_d", frames=40, **SIZE)  # still running when stopped
    run_bag(create_backend(model_values), long_bag, tmp_path / "ref" / "bag_d", model_values, split_frames=SPLIT)[1]()
    cluster = ModelCluster(model_values, 1, ClusterOptions(actors=2, cpus_per_actor=0.5, bags_at_once=2))
    try:
        inputs = fleet_inputs([str(archive), str(long_bag)])
        options = BagOptions(split_frames=SPLIT)
        out = tmp_path / "out"

        stopped = FleetRun(cluster, inputs, out, model_values, options)  # Ctrl-C once bag_d saved a checkpoint
        thread = threading.Thread(target=lambda: setattr(stopped, "summary", stopped.run()))
        thread.start()
        deadline = time.monotonic() + 300
        while checkpoints(out / "bag_d.partial") == 0 and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        stopped.stop_requested = True
        thread.join(300)
        statuses = {Path(bag.output).name: bag.status for bag in stopped.summary.bags}
        assert statuses["bag_d"] == "interrupted", statuses
        for name, status in statuses.items():  # nothing unfinished looks finished
            assert (out / name).exists() == (status == "done"), (name, status)

        summary = FleetRun(cluster, inputs, out, model_values, options).run()
    finally:
        cluster.shutdown()
    by_name = {Path(bag.output).name: bag for bag in summary.bags}
    assert {name: bag.status in ("done", "done earlier") for name, bag in by_name.items()} == {
        "bag_a": True, "bag_b": True, "bag_c": True, "bag_d": True, "corrupt": False}
    assert by_name["corrupt"].status == "failed" and "cannot open bag" in by_name["corrupt"].error
    assert "frames were saved at its last checkpoint" in by_name["bag_d"].notes[0]  # resumed, not redone
    for name in ("bag_a", "bag_b", "bag_c", "bag_d"):
        assert same_bytes(out / name, (tmp_path / "ref" if name == "bag_d" else references) / name), name
        assert by_name[name].frames_out == by_name[name].frames_in == {"bag_c": 9, "bag_d": 40}.get(name, 6)
        assert by_name[name].scale_mean == pytest.approx(0.6) and by_name[name].span_s > 0

    csv_path, json_path = summary.write(out)
    rows = json.loads(json_path.read_text())
    assert rows["total"]["bags"] == 5 and rows["total"]["failed"] == 1
    assert csv_path.read_text().splitlines()[0].startswith("input,output,status,frames_in,frames_out")


def test_scale_tracking_in_frame_order_and_a_killed_actor_retried(ray_local, archive, tmp_path):
    """The test double (registered here, sent to the actors) gives fits, so the scale tracker's smoothing has to
    see every bag's frames in order; an actor killed before the run is restarted by Ray and its batches retried."""
    from ray import cloudpickle
    import ray

    import fake_backend

    cloudpickle.register_pickle_by_value(fake_backend)
    values = params(scale_mode="sparse_depth", scale_time_constant=0.3, max_range=1000.0, backend=fake_backend.NAME,
                    checkpoint="test-double")
    inputs = {"sparse_depth": "/lidar/depth"}
    names = ("bag_a", "bag_c")
    with fake_backend.injected(fake_for(12)):
        for name in names:
            run_bag(fake_for(12), archive / name, tmp_path / "ref" / name,
                    values, split_frames=SPLIT)[1]()
        cluster = ModelCluster(values, 1, ClusterOptions(actors=2, cpus_per_actor=0.5))
        try:
            victim = ray.get(cluster.actors[0].pid.remote())
            os.kill(victim, signal.SIGKILL)
            summary = FleetRun(cluster, [i for i in fleet_inputs([str(archive)]) if i.name in names],
                               tmp_path / "out", values, BagOptions(inputs=inputs, split_frames=SPLIT)).run()
            assert ray.get(cluster.actors[0].pid.remote()) != victim  # restarted
        finally:
            cluster.shutdown()
    assert [bag.status for bag in summary.bags] == ["done", "done"], [bag.error for bag in summary.bags]
    assert all(bag.scale_frames == bag.frames_out > 0 for bag in summary.bags)
    for name in names:
        assert same_bytes(tmp_path / "out" / name, tmp_path / "ref" / name), name


def test_no_room_for_the_bag_tasks_is_refused(ray_local, model_values):
    with pytest.raises(FleetError, match="need 2.25 CPUs and 0 GPUs; the cluster has 2 CPUs"):
        ModelCluster(model_values, 1, ClusterOptions(actors=2, cpus_per_actor=1.0))


def test_benchmark_prints_frames_per_second(ray_local, tiny_checkpoint, capsys):
    import torch

    from depthmaster_ros.tools import fleet_bench

    threads = torch.get_num_threads()
    try:
        assert fleet_bench.main(["--checkpoint", str(tiny_checkpoint), "--bags", "2", "--frames", "2", "--size",
                                 "64x48", "--actors", "2", "--idle-seconds", "0.2"]) == 0  # (1,2 by default)
    finally:
        torch.set_num_threads(threads)
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if "CPU ms/frame" in line]
    assert [row.split("  ")[0] for row in rows] == ["depthmaster-bag (1 process)", "depthmaster-fleet, 2 actors"]
    assert all(float(row.split(" frames/s")[0].split()[-1]) > 0 for row in rows)
    assert sum("x the single process's frames/s" in line and "CPU ms per frame" in line for line in lines) == 1


def kill_session(session: int) -> None:
    """SIGKILL every process of the session the fleet command started (it, Ray's processes, its workers)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[3]) == session:
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except ProcessLookupError:
                    pass


def test_command_line_killed_midway_then_rerun(archive, references, tiny_checkpoint, tmp_path):
    params_file = tmp_path / "p.yaml"
    params_file.write_text("depthmaster:\n  ros__parameters:\n    processing_res: 64\n    scale_mode: fixed\n"
                           "    scale: 0.6\n    shift: 0.15\n")
    out = tmp_path / "out"
    command = [str(BIN / "depthmaster-fleet"), str(archive), "--output", str(out), "--checkpoint",
               str(tiny_checkpoint), "--params", str(params_file), "--threads", str(THREADS), "--split-frames",
               str(SPLIT), "--num-cpus", "2", "--actors", "2", "--bags-at-once", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not checkpoints(out / "bag_c.partial") and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # bag_a and bag_b are done (one bag at a time), bag_c has 6 of 9 frames to go
        assert process.poll() is None, process.communicate()[1]
    finally:
        kill_session(process.pid)  # the run, its Ray instance and workers, at once
        process.communicate(timeout=60)
    assert not (out / "bag_c").exists() and not (out / "fleet_summary.json").exists()

    result = subprocess.run(command, capture_output=True, text=True, timeout=600, start_new_session=True)
    assert result.returncode == 1, result.stderr  # one bag failed
    assert "2 bags were finished by an earlier run: skipped" in result.stderr
    assert "corrupt: failed: cannot open bag" in result.stderr
    assert "1 bags done, 2 done earlier, 1 failed, 0 not finished" in result.stdout
    for name in ("bag_a", "bag_b", "bag_c"):
        assert same_bytes(out / name, references / name), name
    rows = {Path(row["output"]).name: row for row in json.loads((out / "fleet_summary.json").read_text())["bags"]}
    assert rows["bag_b"]["status"] == "done earlier" and rows["bag_b"]["frames_out"] == 6
    assert rows["bag_c"]["notes"] and "were saved at its last checkpoint" in rows["bag_c"]["notes"][0]
