"""depthmaster-node (also ``depthmaster_node`` for ``ros2 run``): start the lifecycle node and spin it.

This module is small on purpose: it takes over SIGINT and SIGTERM before the heavy imports (torch, diffusers),
so a Ctrl-C at any moment ends the process cleanly: during start-up it aborts the start, while serving it asks
the spin loop to stop (no exception in the middle of a callback, no publish on a dead context), and during
shutdown further signals are ignored (``ros2 launch`` and a terminal both deliver Ctrl-C). The process also ends
after the lifecycle ``shutdown`` transition. The exit code is 0 unless the arguments, a params file or a read-only
parameter make the node impossible, or a node of the same name already runs (2, with one line saying why).
``--help`` prints the usage without starting anything (``node_command_line.py``).
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
    from .node_command_line import check_arguments, usage, wants_help

    argv = list(args if args is not None else sys.argv)
    if wants_help(argv[1:]):
        print(usage(), end="")
        return 0
    problem = check_arguments(argv[1:])
    if problem is not None:
        print(f"depthmaster-node: {problem}", file=sys.stderr)
        return 2
    signals = _Signals()
    refused: list[str] = []  # a node of the same name found after configure, with duplicate_name refuse
    node = None
    rclpy = None
    executor = None
    try:
        from ..host_memory import too_small_to_start

        problem = too_small_to_start()  # before the libraries that would crash under it
        if problem:
            print(f"depthmaster: {problem}", file=sys.stderr)
            return 2

        from .memory_reuse import keep_freed_memory
        from .middleware_profile import use_package_profile

        middleware = use_package_profile()  # before rclpy creates the participant
        memory = keep_freed_memory()
        import rclpy
        from rclpy.executors import ExternalShutdownException
        from rclpy.signals import SignalHandlerOptions

        from .node import DepthMasterNode, node_executor
        from .unique_name import DuplicateName

        try:
            rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
        except Exception as exc:  # rcl refused an argument checked nowhere else (a remap rule, ...)
            print(f"depthmaster-node: the ROS arguments could not be read: {_rcl_reason(exc)}", file=sys.stderr)
            return 2
        try:
            node = DepthMasterNode()
        except ValueError as exc:  # a structural parameter (cameras) that no later transition can fix
            print(f"depthmaster-node: {exc}", file=sys.stderr)
            return 2
        node.get_logger().info(f"{middleware}; {memory}")
        try:
            _start(node, refused)
        except DuplicateName as exc:
            node.get_logger().error(f"{exc}; exiting (duplicate_name: refuse)")
            return 2
        signals.starting = False
        executor = node_executor(node)
        while signals.received is None and not node.finished.is_set() and not refused and rclpy.ok():
            try:
                executor.spin_once(timeout_sec=0.1)
            except ExternalShutdownException:
                break
    except KeyboardInterrupt:
        print("depthmaster: interrupted during start-up", file=sys.stderr)
    finally:
        signals.ignore()
        if node is not None and not (node.stop() and node.stopped_cleanly):
            # the inference thread is inside a long model pass (or configure is loading the model): tearing down
            # ROS under it would abort the process
            print("depthmaster: stopped during a model pass or load; exiting without waiting for it", file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        if rclpy is not None:
            rclpy.try_shutdown()
    return 2 if refused else 0


def _start(node, refused: list[str]) -> None:
    """The duplicate-name check, then autostart on a thread of its own (the node's services answer while the model
    loads). DuplicateName if refused now. A twin found before the model loads costs no model; under load discovery
    can take longer than the check's window, so the graph is looked at once more after configure (seconds later,
    on the autostart thread): a twin found then is logged and put in ``refused`` (the node exits with 2), or
    warned."""
    from .unique_name import DuplicateName, duplicate_of

    refuse = node.get_parameter("duplicate_name").value == "refuse"
    reason = duplicate_of(node)
    if reason is not None:
        if refuse:
            raise DuplicateName(reason)
        node.warn_at_start(reason)

    def look_again() -> None:
        again = duplicate_of(node, discovery_s=0.0)
        if again is None:
            return
        if refuse:
            node.get_logger().error(f"{again}; exiting (duplicate_name: refuse)")
            refused.append(again)
        else:
            node.warn_at_start(again)

    node.schedule_autostart(then=look_again if reason is None else None)


def _rcl_reason(exc: Exception) -> str:
    """rcl's message without its source locations (', at /project/src/...')."""
    import re

    text = " ".join(str(exc).split())
    text = re.sub(r",? at /\S+:\d+", "", text).replace("failed to initialize rcl: ", "")
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ == "UnknownROSArgsError" else text


if __name__ == "__main__":
    sys.exit(main())
