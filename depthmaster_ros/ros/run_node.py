"""depthmaster-node (also ``depthmaster_node`` for ``ros2 run``): start the lifecycle node and spin it.

This module is small on purpose: it takes over SIGINT and SIGTERM before the heavy imports (torch, diffusers),
so a Ctrl-C at any moment ends the process cleanly: during start-up it aborts the start, while serving it asks
the spin loop to stop (no exception in the middle of a callback, no publish on a dead context), and during
shutdown further signals are ignored (``ros2 launch`` and a terminal both deliver Ctrl-C). The process also ends
after the lifecycle ``shutdown`` transition. The exit code is 0 unless the parameters make the node impossible
(2).
"""

from __future__ import annotations

import os
import signal
import sys


class _Signals:
    def __init__(self):
        self.received: int | None = None
        self.starting = True
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame):
        if self.received is None:
            self.received = signum
            if self.starting:
                raise KeyboardInterrupt
        # later signals: shutdown is already under way

    def ignore(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def main(args: list[str] | None = None) -> int:
    signals = _Signals()
    node = None
    rclpy = None
    try:
        from .memory_reuse import keep_freed_memory
        from .middleware_profile import use_package_profile

        middleware = use_package_profile()  # before rclpy creates the participant
        memory = keep_freed_memory()
        import rclpy
        from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        from .node import DepthMasterNode
        from .user_commands import lifecycle_command

        rclpy.init(args=args if args is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
        try:
            node = DepthMasterNode()
        except ValueError as exc:  # a structural parameter (cameras) that no later transition can fix
            print(f"depthmaster: {exc}", file=sys.stderr)
            return 2
        node.get_logger().info(f"{middleware}; {memory}")
        if node.get_parameter("autostart").value and not node.autostart():
            node.get_logger().error("autostart failed; the node stays up (unconfigured) and reports why on "
                                    "/diagnostics. Fix the cause (the model parameters such as checkpoint can be "
                                    "set while unconfigured) and configure again: "
                                    + lifecycle_command(node.get_fully_qualified_name(), "configure"))
        signals.starting = False
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while signals.received is None and not node.finished.is_set() and rclpy.ok():
            try:
                executor.spin_once(timeout_sec=0.1)
            except ExternalShutdownException:
                break
    except KeyboardInterrupt:
        print("depthmaster: interrupted during start-up", file=sys.stderr)
    finally:
        signals.ignore()
        if node is not None and not (node.stop() and node.stopped_cleanly):
            # the inference thread is inside a long model pass: tearing down ROS under it would abort the process
            print("depthmaster: stopped during a model pass; exiting without waiting for it", file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        if node is not None:
            node.destroy_node()
        if rclpy is not None:
            rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
