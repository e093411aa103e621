"""depthmaster-play: publish a rosbag2 into a live ROS 2 graph with its original timing (no `ros2 bag play`).

Messages go out as their recorded CDR bytes (no decoding), at their log times scaled by --rate. Every topic is
published reliable (as REP 2003 asks of drivers; `ros2 bag play` does the same by default): it reaches reliable
and best-effort subscribers, and Fast DDS does not drop large reliable messages the way it drops best-effort ones
over 0.5 MB (ros2/rmw_fastrtps#739). --sensor-qos publishes sensor topics (images, camera infos, clouds, scans,
IMU) with the sensor-data QoS instead, to reproduce a best-effort driver. The player is ``ros/bag_player.py``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="depthmaster-play", description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", type=Path, help="rosbag2 folder (mcap or sqlite3)")
    parser.add_argument("--rate", type=float, default=1.0, help="speed factor (default 1.0)")
    parser.add_argument("--loop", action="store_true", help="start over at the end")
    parser.add_argument("--topics", nargs="+", help="only these topics (default all)")
    parser.add_argument("--start-offset", type=float, default=0.0, help="skip this many seconds of the bag")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before playing (discovery)")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for subscribers: until every played topic has one, or some "
                        "have and no new one appeared for 3 s (topics nobody listens to are played anyway); exit 3 "
                        "if no topic has a subscriber by then")
    parser.add_argument("--sensor-qos", action="store_true",
                        help="publish sensor topics best effort (the sensor-data QoS), like a best-effort driver")
    parser.add_argument("--clock", type=float, nargs="?", const=100.0, metavar="HZ",
                        help="publish the bag's time on /clock (default 100 Hz) for nodes with use_sim_time")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.start_offset < 0 or args.delay < 0 or (args.clock is not None and args.clock <= 0):
        parser.error("--rate and --clock must be > 0, --start-offset and --delay >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()  # Ctrl-C / SIGTERM: stop at once, cleanly, whatever the player is doing
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    from ..ros.bag_player import NoSubscriber, PlayOptions, play
    from ..rosbag.io import BagError, open_reader

    try:
        reader = open_reader(args.bag)
    except BagError as exc:
        print(f"depthmaster-play: {exc}", file=sys.stderr)
        return 2
    try:
        connections = [c for c in reader.connections if not args.topics or c.topic in args.topics]
        if args.topics and (missing := set(args.topics) - {c.topic for c in connections}):
            print(f"depthmaster-play: not in the bag: {', '.join(sorted(missing))}", file=sys.stderr)
            return 2
        options = PlayOptions(rate=args.rate, loop=args.loop, start_offset=args.start_offset, delay=args.delay,
                              wait_for_subscribers=args.wait_for_subscribers, sensor_qos=args.sensor_qos,
                              clock=args.clock)
        published = play(reader, connections, options, stop,
                         lambda line: print(f"depthmaster-play: {line}", file=sys.stderr))
    except NoSubscriber as exc:
        print(f"depthmaster-play: {exc}", file=sys.stderr)
        return 3
    finally:
        reader.close()
    print("depthmaster-play: published " + ", ".join(f"{t} {n}" for t, n in sorted(published.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
