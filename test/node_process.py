"""Test helpers: run `depthmaster-node` as a separate process, and talk to it from the test process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.samples.sample_scene import PinholeCamera, render

BIN = Path(sys.executable).parent


class NodeProcess:
    """`depthmaster-node --ros-args -r __ns:=NS -p k:=v ...`; stop() sends SIGINT and returns the exit code."""

    def __init__(self, namespace: str, log_path: Path, remaps: dict | None = None, params_file: Path | None = None,
                 memory_limit: int | None = None, env: dict | None = None, **params):
        """``memory_limit``: bytes of address space the process may use (RLIMIT_AS), as a robot's cgroup would;
        ``env``: the process's environment (default: this one's)."""
        self.namespace = namespace
        self.log_path = log_path
        args = [str(BIN / "depthmaster-node"), "--ros-args", "-r", f"__ns:={namespace}"]
        if params_file is not None:
            args += ["--params-file", str(params_file)]
        for source, target in (remaps or {}).items():
            args += ["-r", f"{source}:={target}"]
        for key, value in params.items():
            value = str(value).lower() if isinstance(value, bool) else value
            args += ["-p", f"{key}:={value}"]
        self._log = open(log_path, "w")

        def limit():
            if memory_limit is not None:
                import resource

                resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env or os.environ.copy(),
                                        preexec_fn=limit if memory_limit is not None else None)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def peak_rss_mb(self) -> float:
        """The process's peak resident memory so far (VmHWM), MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc status")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30.0, sig: int = signal.SIGINT) -> int:
        if self.alive():
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def sample_frame(width: int = 64, height: int = 48, t: float = 0.0):
    camera = PinholeCamera.with_size(width, height)
    rgb, depth = render(camera, t=t)
    return rgb, CameraIntrinsics.from_K(width, height, camera.K)


def now_ns(node) -> int:
    return node.get_clock().now().nanoseconds


def lifecycle(node, target: str, transition: int | None = None) -> str:
    """Trigger ``transition`` (a lifecycle_msgs/Transition id) if given; return the resulting state label."""
    if transition is not None:
        client = node.create_client(ChangeState, f"{target}/change_state")
        assert client.wait_for_service(timeout_sec=20.0)
        assert node.wait(client.call_async(ChangeState.Request(transition=Transition(id=transition)))).success
    client = node.create_client(GetState, f"{target}/get_state")
    assert client.wait_for_service(timeout_sec=20.0)
    return node.wait(client.call_async(GetState.Request())).current_state.label


def image_array(msg) -> np.ndarray:
    dtype = {"32FC1": np.float32, "bgr8": np.uint8}[msg.encoding]
    channels = 3 if msg.encoding == "bgr8" else 1
    array = np.frombuffer(bytes(msg.data), dtype=dtype).reshape(msg.height, msg.width, channels)
    return array[..., 0] if channels == 1 else array
