"""An rclpy node that spins itself on a background thread, so the code that owns it can wait for answers (service
calls, messages) while it does something else: the client of tests and notebooks, and ``depthmaster-ctl``."""

from __future__ import annotations

import threading
import time
from typing import Callable

from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


class BackgroundNode(Node):
    """A node spun by its own executor thread from construction until ``destroy_node()``."""

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self)
        self._spinner = threading.Thread(target=self._spin, name=f"{name}-spin", daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:  # rclpy was shut down first: nothing left to receive
            pass

    def destroy_node(self):
        self._executor.shutdown()
        self._spinner.join(timeout=10.0)
        return super().destroy_node()

    def spin_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait (the background thread receives meanwhile) until ``condition()`` or ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.01)
        return condition()

    def wait(self, future, timeout: float = 20.0):
        """Spin until ``future`` (a service call) is done; its result."""
        if not self.spin_until(future.done, timeout):
            raise TimeoutError(f"no answer from the service within {timeout} s")
        return future.result()
