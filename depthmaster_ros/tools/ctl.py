"""depthmaster-ctl: drive a running depthmaster node from the command line (its lifecycle, its parameters, its
/diagnostics), where the `ros2` command is not installed (this package's venv). What it does is what `ros2
lifecycle`, `ros2 param` and `ros2 topic echo /diagnostics` do with the node.

Exit codes: 0 done; 1 the node was not found (or did not answer) within --timeout; 2 a usage error; 3 the node
refused (a transition that failed or is not possible from its state, a value it refused, a name it lacks).
"""

from __future__ import annotations

import argparse
import signal
import sys

EXAMPLES = """\
examples:
  depthmaster-ctl state                             the lifecycle state of /depthmaster
  depthmaster-ctl configure                         also activate, deactivate, cleanup, shutdown
  depthmaster-ctl --node /front/depthmaster activate
  depthmaster-ctl param set scale_mode sparse_depth values typed as by `ros2 param set` (YAML)
  depthmaster-ctl param set lidar_to_camera "[0.0, -0.1, 0.0, 0.5, -0.5, 0.5, 0.5]"
  depthmaster-ctl param get scale shift
  depthmaster-ctl param dump > my_depthmaster.yaml  the values in use, as a params file
  depthmaster-ctl diagnostics --watch               the node's /diagnostics, until Ctrl-C
"""


def parse_args(argv):
    from ..ros.node_control import TRANSITIONS
    from ..ros.user_commands import DEFAULT_NODE

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--node", default=argparse.SUPPRESS, metavar="NAME",
                        help=f"the node: a fully qualified name or one relative to --namespace (default "
                        f"{DEFAULT_NODE})")
    common.add_argument("--namespace", "-n", default=argparse.SUPPRESS, metavar="NS",
                        help="the node's namespace (the node is NS/depthmaster unless --node names it)")
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS, metavar="S",
                        help="seconds to wait for the node to be found and for each answer (default 10)")
    parser = argparse.ArgumentParser(prog="depthmaster-ctl", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1] + "\n" + EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser("state", parents=[common], help="print the node's lifecycle state")
    for transition in TRANSITIONS:
        commands.add_parser(transition, parents=[common], help=f"lifecycle transition: {transition}")
    param = commands.add_parser("param", parents=[common], help="list, get, set, describe or dump parameters")
    verbs = param.add_subparsers(dest="verb", metavar="VERB", required=True)
    verbs.add_parser("list", parents=[common], help="parameter names").add_argument("prefix", nargs="?", default="")
    verbs.add_parser("get", parents=[common], help="values").add_argument("names", nargs="+", metavar="NAME")
    setter = verbs.add_parser("set", parents=[common], help="set one value (YAML-typed, as `ros2 param set`)")
    setter.add_argument("name")
    setter.add_argument("value")
    verbs.add_parser("describe", parents=[common], help="type, range and meaning").add_argument(
        "names", nargs="+", metavar="NAME")
    verbs.add_parser("dump", parents=[common], help="the node's values as a params file (--params-file, --params); "
                     "without rclpy's own (use_sim_time, ...)")
    diagnostics = commands.add_parser("diagnostics", parents=[common], help="print the node's /diagnostics")
    diagnostics.add_argument("--watch", action="store_true", help="keep printing (about 1 Hz) until Ctrl-C")
    args = parser.parse_args(argv)
    args.timeout = getattr(args, "timeout", 10.0)
    if not args.timeout > 0:
        parser.error(f"--timeout must be > 0 seconds, got {args.timeout}")
    return args


def _yaml(value) -> str:
    """A value as it would be written in a params file (one line)."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def run(control, args, stop) -> int:
    import yaml

    from ..parameters import is_ros_builtin
    from ..ros.node_control import TRANSITIONS, format_status

    if args.command == "state":
        print(control.state())
    elif args.command in TRANSITIONS:
        print(f"{args.command}: {control.target} is now {control.change_state(args.command)}")
    elif args.command == "param" and args.verb == "list":
        print("\n".join(control.parameter_names(args.prefix)))
    elif args.command == "param" and args.verb == "get":
        for name, value in control.get_parameters(args.names).items():
            print(f"{name}: {'(not set)' if value is None else _yaml(value)}")
    elif args.command == "param" and args.verb == "set":
        value = control.set_parameter(args.name, args.value)
        print(f"{args.name}: {_yaml(value)}")
    elif args.command == "param" and args.verb == "describe":
        for entry in control.describe(args.names):
            print(f"{entry.pop('name')}:")
            for key, value in entry.items():
                print(f"    {key}: {value}")
    elif args.command == "param" and args.verb == "dump":
        names = [n for n in control.parameter_names() if not is_ros_builtin(n)]
        values = {k: v for k, v in control.get_parameters(names).items() if v is not None}
        print(yaml.safe_dump({control.target: {"ros__parameters": values}}, sort_keys=False), end="")
    elif args.command == "diagnostics":
        if not args.watch:
            print("\n".join(format_status(status) for status in control.diagnostics()))
            return 0
        control.state()  # the node must exist: exit 1 otherwise, as for every other command
        unwatch = control.watch_diagnostics(
            lambda statuses: print("\n".join(format_status(s) for s in statuses) + "\n", flush=True))
        try:
            control.node.spin_until(lambda: stop["now"], float("inf"))
        finally:
            unwatch()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = {"now": False}
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.update(now=True))
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from ..ros.background_node import BackgroundNode
    from ..ros.node_control import NodeControl, NodeNotFound, Refused, node_name

    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    node = BackgroundNode("depthmaster_ctl", start_parameter_services=False)
    target = node_name(getattr(args, "node", None), getattr(args, "namespace", None))
    try:
        return run(NodeControl(node, target, args.timeout), args, stop)
    except (NodeNotFound, TimeoutError) as exc:
        print(f"depthmaster-ctl: {exc}", file=sys.stderr)
        return 1
    except Refused as exc:
        print(f"depthmaster-ctl: {exc}", file=sys.stderr)
        return 3
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
