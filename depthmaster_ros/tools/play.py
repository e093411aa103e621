"""depthmaster-play: publish a rosbag2 into a live ROS 2 graph with its original timing (no `ros2 bag play`).

Messages go out as their recorded CDR bytes (no decoding), at their log times scaled by --rate. Every topic is
published reliable (as REP 2003 asks of drivers; `ros2 bag play` does the same by default): it reaches reliable
and best-effort subscribers, and Fast DDS does not drop large reliable messages the way it drops best-effort ones
over 0.5 MB (ros2/rmw_fastrtps#739). --sensor-qos publishes sensor topics (images, camera infos, clouds, scans,
IMU) with the sensor-data QoS instead, to reproduce a best-effort driver.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

LINGER_S = 1.0
SETTLE_S = 3.0  # --wait-for-subscribers: once some topics have subscribers, how long to wait for more
SENSOR_TYPES = {"sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/CameraInfo",
                "sensor_msgs/msg/PointCloud2", "sensor_msgs/msg/LaserScan", "sensor_msgs/msg/Imu"}


class BagClock:
    """Publishes the bag's time on /clock while playing: bag start + (wall time since start) x rate."""

    def __init__(self, node, start_ns: int, rate: float, hz: float):
        from rosgraph_msgs.msg import Clock
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self._publisher = node.create_publisher(Clock, "/clock", QoSProfile(depth=1,
                                                                            reliability=ReliabilityPolicy.BEST_EFFORT))
        self._message, self._start_ns, self._rate, self._period = Clock(), start_ns, rate, 1.0 / hz
        self._wall_start = time.monotonic()
        self._lock = threading.Lock()
        self._last: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def restart(self, wall_start: float) -> None:
        with self._lock:
            self._wall_start = wall_start
            self._last = None  # a loop starts over: time may go back once

    def advance_to(self, stamp_ns: int) -> None:
        """Publish ``stamp_ns`` now if the clock has not reached it (a message is about to go out with it)."""
        self._publish(stamp_ns)

    def _publish(self, now: int) -> None:
        with self._lock:
            if self._last is not None and now <= self._last:
                return
            self._last = now
            self._message.clock.sec, self._message.clock.nanosec = divmod(now, 1_000_000_000)
            self._publisher.publish(self._message)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self._publish(self._start_ns + int((time.monotonic() - self._wall_start) * self._rate * 1e9))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def wait_for_subscribers(publishers: dict, topics: dict, timeout: float, stop: threading.Event) -> list[str]:
    """Wait until every publisher has a subscriber, or some have and none was added for SETTLE_S seconds, or
    ``timeout`` (or ``stop``); the topics still without one."""
    deadline = time.monotonic() + timeout
    matched: set = set()
    settled_at = None
    while time.monotonic() < deadline and not stop.is_set():
        now_matched = {key for key, publisher in publishers.items() if publisher.get_subscription_count()}
        if len(now_matched) == len(publishers):
            return []
        if now_matched != matched:
            matched, settled_at = now_matched, time.monotonic() + SETTLE_S
        if matched and time.monotonic() >= settled_at:
            break
        stop.wait(0.05)
    return sorted(topics[key] for key, publisher in publishers.items() if not publisher.get_subscription_count())


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
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from rclpy.signals import SignalHandlerOptions

    from ..rosbag.io import BagError, message_class, open_reader

    try:
        reader = open_reader(args.bag)
    except BagError as exc:
        print(f"depthmaster-play: {exc}", file=sys.stderr)
        return 2
    connections = [c for c in reader.connections if not args.topics or c.topic in args.topics]
    if args.topics and (missing := set(args.topics) - {c.topic for c in connections}):
        print(f"depthmaster-play: not in the bag: {', '.join(sorted(missing))}", file=sys.stderr)
        return 2

    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("depthmaster_play")
    publishers = {}
    for connection in connections:
        msg_class = message_class(connection.msgtype)
        if msg_class is None:
            print(f"depthmaster-play: skipping {connection.topic}: type {connection.msgtype} is not installed",
                  file=sys.stderr)
            continue
        if not args.sensor_qos or connection.msgtype not in SENSOR_TYPES:
            qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        else:
            qos = qos_profile_sensor_data
        publishers[connection.id] = node.create_publisher(msg_class, connection.topic, qos)

    published = Counter()
    start_ns = reader.start_time + int(args.start_offset * 1e9)
    clock = None
    try:
        if args.wait_for_subscribers > 0:
            lonely = wait_for_subscribers(publishers, {c.id: c.topic for c in connections},
                                          args.wait_for_subscribers, stop)
            if len(lonely) == len(publishers) and not stop.is_set():
                print(f"depthmaster-play: no subscriber after {args.wait_for_subscribers:g} s on any of: "
                      f"{', '.join(lonely)}. Start the node (or the recorder) first, and check its topic names "
                      "(remappings) against these", file=sys.stderr)
                return 3
            if lonely:
                print(f"depthmaster-play: no subscriber on {', '.join(lonely)} (played anyway)", file=sys.stderr)
        clock = BagClock(node, start_ns, args.rate, args.clock) if args.clock else None
        stop.wait(args.delay)
        while not stop.is_set():
            wall_start = time.monotonic()
            if clock is not None:
                clock.restart(wall_start)
            for connection, log_time, raw in reader.messages(connections=connections, start=start_ns):
                publisher = publishers.get(connection.id)
                if publisher is None:
                    continue
                if stop.wait(max(wall_start + (log_time - start_ns) / 1e9 / args.rate - time.monotonic(), 0.0)):
                    break
                if clock is not None:
                    clock.advance_to(log_time)  # the clock is never behind the data it comes with
                publisher.publish(raw)
                published[connection.topic] += 1
            if not args.loop:
                break
        stop.wait(LINGER_S)  # destroying publishers at once can drop the last samples still in flight
    finally:
        if clock is not None:
            clock.stop()
        reader.close()
        node.destroy_node()
        rclpy.try_shutdown()
    print("depthmaster-play: published " + ", ".join(f"{t} {n}" for t, n in sorted(published.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
