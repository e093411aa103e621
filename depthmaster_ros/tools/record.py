"""depthmaster-record: record topics of a live ROS 2 graph into a rosbag2 (no `ros2 bag record`).

Subscribes to the named topics (waiting up to --wait seconds for them to appear) and writes the received CDR bytes
as they come, with the receive time as log time. When none appears within the wait it stops with exit code 1 and
writes nothing; when some do, it records those, names the others (with the closest existing topic: a typo), and
takes them too if they appear later; the final line names any that never did (exit code 0). It stops after
--duration seconds, --max-messages per topic, or Ctrl-C / SIGTERM; the bag is written as
OUTPUT.partial/OUTPUT_0/OUTPUT_0.mcap and that folder is renamed to OUTPUT when closed (the file keeps its name,
rosbag2's), so a crash leaves no half bag under OUTPUT; what a crash left in OUTPUT.partial is read by
``depthmaster-bag --salvage``.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="depthmaster-record", description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="bag folder to create")
    parser.add_argument("--topics", nargs="+", required=True, help="topics to record")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--max-messages", type=int, help="stop once every topic has this many messages")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the topics to appear (default "
                        "30; if none has by then: exit code 1, nothing written)")
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = {"now": False}  # Ctrl-C / SIGTERM: close the bag properly, whatever the recorder is doing
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.update(now=True))
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions

    from ..rosbag.io import ConnectionMap, message_class, open_writer
    from ..rosbag.partial_output import partial_folder, split_name

    if args.output.exists():
        print(f"depthmaster-record: {args.output} already exists", file=sys.stderr)
        return 2
    if partial_folder(args.output).exists():
        print(f"depthmaster-record: {partial_folder(args.output)} holds what a recording that crashed left (read it "
              "with depthmaster-bag --salvage); move it away or choose another name", file=sys.stderr)
        return 2
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("depthmaster_record")
    partial = partial_folder(args.output) / split_name(args.output, 0)
    partial.parent.mkdir(parents=True)
    writer = open_writer(partial, args.storage)
    bag = ConnectionMap(writer)
    counts = Counter()
    subscriptions = {}

    def subscribe_new() -> list[str]:
        """Subscribe to the named topics that exist now; the ones that appeared."""
        known = dict(node.get_topic_names_and_types())
        appeared = []
        for topic in args.topics:
            types = known.get(topic) or known.get(node.resolve_topic_name(topic))
            if topic in subscriptions or not types:
                continue
            appeared.append(topic)
            msgtype = types[0]
            if message_class(msgtype) is None:
                print(f"depthmaster-record: skipping {topic}: type {msgtype} is not installed", file=sys.stderr)
                subscriptions[topic] = None
                continue

            def store(raw, topic=topic, msgtype=msgtype):
                bag.write(topic, msgtype, node.get_clock().now().nanoseconds, raw)
                counts[topic] += 1

            subscriptions[topic] = node.create_subscription(
                message_class(msgtype), topic, store, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
                raw=True)
        return appeared

    def missing() -> list[str]:
        return [t for t in args.topics if t not in subscriptions]

    recorded = False
    deadline = time.monotonic() + args.wait
    try:
        while missing() and time.monotonic() < deadline and not stop["now"]:
            subscribe_new()
            rclpy.spin_once(node, timeout_sec=0.1)
        if not any(subscriptions.values()):
            when = "before any of the topics appeared" if stop["now"] else f"within {args.wait:g} s"
            print(f"depthmaster-record: none of the topics appeared {when}: "
                  f"{_with_suggestions(missing(), node, args.topics)}; nothing recorded", file=sys.stderr)
            return 1
        if missing():
            print(f"depthmaster-record: not seen within {args.wait:g} s: "
                  f"{_with_suggestions(missing(), node, args.topics)}; recording the others (and these if they "
                  "appear)", file=sys.stderr)
        end = time.monotonic() + args.duration if args.duration else float("inf")
        next_look = time.monotonic() + 1.0
        while not stop["now"] and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
            if missing() and time.monotonic() > next_look:  # a driver started late
                for topic in subscribe_new():
                    print(f"depthmaster-record: {topic} appeared; recording it", file=sys.stderr)
                next_look = time.monotonic() + 1.0
            if args.max_messages and all(counts[t] >= args.max_messages for t in subscriptions if subscriptions[t]):
                break
        recorded = True
    finally:
        writer.close()
        if recorded:
            partial.rename(args.output)
            partial.parent.rmdir()
        else:  # nothing to keep: no empty bag left behind
            shutil.rmtree(partial.parent)
        node.destroy_node()
        rclpy.try_shutdown()
    never = f"; never appeared: {', '.join(missing())}" if missing() else ""
    print(f"depthmaster-record: wrote {args.output}: " + ", ".join(f"{t} {n}" for t, n in sorted(counts.items()))
          + never)
    return 0


def _with_suggestions(topics: list[str], node, named: list[str]) -> str:
    """The topics, each with the closest existing topic name not ``named`` already, if any (a typo: /camera/depht)."""
    import difflib

    existing = [name for name, _ in node.get_topic_names_and_types() if name not in named]
    named = []
    for topic in topics:
        close = difflib.get_close_matches(topic, existing, n=1, cutoff=0.6)
        named.append(f"{topic} (did you mean {close[0]}?)" if close else topic)
    return ", ".join(named)


if __name__ == "__main__":
    sys.exit(main())
