"""An rclpy node that spins itself on a background thread, so the code that owns it can wait for answers (service
calls, messages) while it does something else: the client of tests and notebooks, and ``depthmaster-ctl``."""

from __future__ import annotations

import threading
import time
from typing import Callable

from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


class BackgroundNode(Node):
    """A node spun by its own executor thread from construction until ``destroy_node()``. ``executor``:
    ``single`` (rclpy's SingleThreadedExecutor, what ``rclpy.spin`` uses) or ``events`` (the EventsExecutor of
    ``rclpy.experimental``; its callbacks cannot take a MessageInfo: ``events_executor`` says which)."""

    def __init__(self, name: str, executor: str = "single", **kwargs):
        if executor not in ("single", "events"):
            raise ValueError(f"executor must be single or events, got {executor!r}")
        super().__init__(name, **kwargs)
        self.events_executor = executor == "events"
        if self.events_executor:
            from rclpy.experimental import EventsExecutor

            self._executor = EventsExecutor()
        else:
            self._executor = SingleThreadedExecutor()
        self._executor.add_node(self)
        self._stopping = threading.Event()
        self._spinner = threading.Thread(target=self._spin, name=f"{name}-spin", daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        try:
            # spin_once in a loop: EventsExecutor.spin() on a background thread hung here (rclpy 9.1.2)
            while not self._stopping.is_set() and self.context.ok():
                self._executor.spin_once(timeout_sec=0.1)
        except ExternalShutdownException:  # rclpy was shut down first: nothing left to receive
            pass

    def destroy_node(self):
        self._stopping.set()
        self._spinner.join(timeout=10.0)
        self._executor.shutdown()
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
