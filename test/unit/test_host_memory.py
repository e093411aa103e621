"""The memory this process may still use (host_memory.py) and the start-up check built on it (engine/limits.py):
cgroup limits read from v1 and v2 layouts, the address-space limit, and the refusal with its numbers."""

import resource

import pytest

from depthmaster_ros import host_memory
from depthmaster_ros.engine.limits import RUNTIME_ADDRESS_SPACE, RUNTIME_RESIDENT, startup_problem
from depthmaster_ros.host_memory import GIB, Headroom
from depthmaster_ros.model.backends import LoadEstimate


def fake_cgroup(tmp_path, monkeypatch, proc_cgroup: str, files: dict):
    root = tmp_path / "cgroup"
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(proc_cgroup)
    monkeypatch.setattr(host_memory, "CGROUP_ROOT", root)
    real_path = host_memory.Path
    monkeypatch.setattr(host_memory, "Path", lambda p: proc if p == "/proc/self/cgroup" else real_path(p))


def test_the_tightest_cgroup_limit_above_the_process_counts_v2(tmp_path, monkeypatch):
    fake_cgroup(tmp_path, monkeypatch, "0::/robot.slice/depthmaster.service\n", {
        "cgroup.controllers": "memory",
        "robot.slice/memory.max": str(6 * GIB), "robot.slice/memory.current": str(5 * GIB),
        "robot.slice/depthmaster.service/memory.max": "max",
        "robot.slice/depthmaster.service/memory.current": str(GIB),
    })
    room = host_memory.cgroup_available()
    assert room.available == GIB and room.limit == 6 * GIB and room.used == 5 * GIB
    assert room.source.endswith("robot.slice/memory.max")
    assert room.describe().startswith("1.00 GiB available (cgroup ") and "6.00 GiB, 5.00 GiB used" in room.describe()


def test_cgroup_v1_and_no_limit(tmp_path, monkeypatch):
    fake_cgroup(tmp_path, monkeypatch, "4:memory:/docker/abc\n1:cpu:/\n", {
        "memory/docker/abc/memory.limit_in_bytes": str(2 * GIB),
        "memory/docker/abc/memory.usage_in_bytes": str(GIB // 2),
        "memory/memory.limit_in_bytes": "9223372036854771712", "memory/memory.usage_in_bytes": str(20 * GIB),
    })
    assert host_memory.cgroup_available().available == 2 * GIB - GIB // 2
    fake_cgroup(tmp_path / "none", monkeypatch, "4:memory:/\n", {
        "memory/memory.limit_in_bytes": "9223372036854771712", "memory/memory.usage_in_bytes": str(GIB)})
    assert host_memory.cgroup_available() is None


def test_the_address_space_limit_and_the_start_check():
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = host_memory.process_status()["VmSize"]
    try:
        resource.setrlimit(resource.RLIMIT_AS, (used + 8 * GIB, hard))
        room = host_memory.address_space_available()
        assert room.source == "RLIMIT_AS" and room.limit == used + 8 * GIB
        assert 7 * GIB < room.available <= 8 * GIB  # the process keeps allocating a little meanwhile
        assert host_memory.too_small_to_start(used + 9 * GIB).startswith(
            f"the address-space limit (RLIMIT_AS, ulimit -v) is {(used + 8 * GIB) / GIB:.2f} GiB")
        assert host_memory.too_small_to_start(used) is None
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    if soft == resource.RLIM_INFINITY:
        assert host_memory.address_space_available() is None


def test_freed_memory_is_given_back_on_glibc():
    assert host_memory.release_freed_memory() is True  # this machine runs glibc


class Cpu:
    type = "cpu"


def test_a_model_that_cannot_fit_is_refused_with_its_numbers():
    # the published model in bf16: 3.8 GB of float32 files, VAE's first block 128 channels
    estimate = LoadEstimate(loading=2 * 3_800_000_000, weights=1_900_000_000, device=Cpu(), bytes_per_pixel=10 * 128 * 2)
    pixels = 768 * 576
    activations = estimate.activation_bytes(pixels)
    assert activations == 10 * 128 * 2 * pixels
    needed = max(estimate.loading, estimate.weights + activations) + RUNTIME_RESIDENT
    room = Headroom(needed - 1, "cgroup /sys/fs/cgroup/robot/memory.max", 8 * GIB, 8 * GIB - needed + 1)
    problem = startup_problem(estimate, pixels, 1, resident=room)
    assert problem.startswith(f"loading the model needs about {needed / GIB:.2f} GiB of memory (weights 1.77 GiB "
                              "(7.08 GiB while loading), activations 1.05 GiB at 442,368 processing pixels x 1, "
                              "runtime 0.30 GiB) but ")
    assert "cgroup /sys/fs/cgroup/robot/memory.max 8.00 GiB" in problem
    assert startup_problem(estimate, pixels, 1, resident=Headroom(needed, "MemAvailable")) is None
    # an address-space limit counts the runtime's reservations, which are larger
    space = Headroom(needed, "RLIMIT_AS", 3 * GIB, 3 * GIB - needed)
    assert "of address space" in startup_problem(estimate, pixels, 1, address_space=space)
    assert RUNTIME_ADDRESS_SPACE > RUNTIME_RESIDENT


def test_on_a_gpu_the_device_is_checked_too():
    class Cuda:
        type = "cuda"

        def __str__(self):
            return "cuda:0"

    estimate = LoadEstimate(loading=GIB, weights=GIB // 2, device=Cuda(), bytes_per_pixel=1000)
    assert startup_problem(estimate, 10**6, 2, device_free=3 * GIB) is None
    problem = startup_problem(estimate, 10**6, 2, device_free=GIB)
    assert problem.startswith("the model needs about 2.36 GiB on cuda:0")


@pytest.mark.parametrize("text, value", [("max", None), ("123\n", 123)])
def test_cgroup_values(tmp_path, text, value):
    path = tmp_path / "memory.max"
    path.write_text(text)
    assert host_memory._read_int(path) == value
