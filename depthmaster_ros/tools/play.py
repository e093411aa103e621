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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def restart(self, wall_start: float) -> None:
        self._wall_start = wall_start

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            now = self._start_ns + int((time.monotonic() - self._wall_start) * self._rate * 1e9)
            self._message.clock.sec, self._message.clock.nanosec = divmod(now, 1_000_000_000)
            self._publisher.publish(self._message)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="depthmaster-play", description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", type=Path, help="rosbag2 folder (mcap or sqlite3)")
    parser.add_argument("--rate", type=float, default=1.0, help="speed factor (default 1.0)")
    parser.add_argument("--loop", action="store_true", help="start over at the end")
    parser.add_argument("--topics", nargs="+", help="only these topics (default all)")
    parser.add_argument("--start-offset", type=float, default=0.0, help="skip this many seconds of the bag")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before playing (discovery)")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long until every played topic has a subscriber (exit 3 if not)")
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
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

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

    rclpy.init(args=[])
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

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    published = Counter()
    start_ns = reader.start_time + int(args.start_offset * 1e9)
    if args.wait_for_subscribers > 0:
        deadline = time.monotonic() + args.wait_for_subscribers
        while time.monotonic() < deadline and not all(p.get_subscription_count() for p in publishers.values()):
            time.sleep(0.05)
        lonely = [c.topic for c in connections if c.id in publishers and not publishers[c.id].get_subscription_count()]
        if lonely:
            print(f"depthmaster-play: no subscriber after {args.wait_for_subscribers:g} s on: {', '.join(lonely)}",
                  file=sys.stderr)
            reader.close()
            node.destroy_node()
            rclpy.try_shutdown()
            return 3
    clock = BagClock(node, start_ns, args.rate, args.clock) if args.clock else None
    time.sleep(args.delay)
    try:
        while not stop["now"]:
            wall_start = time.monotonic()
            if clock is not None:
                clock.restart(wall_start)
            for connection, log_time, raw in reader.messages(connections=connections, start=start_ns):
                if stop["now"]:
                    break
                publisher = publishers.get(connection.id)
                if publisher is None:
                    continue
                wait = wall_start + (log_time - start_ns) / 1e9 / args.rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                publisher.publish(raw)
                published[connection.topic] += 1
            if not args.loop:
                break
        time.sleep(LINGER_S)  # destroying publishers at once can drop the last samples still in flight
    except KeyboardInterrupt:
        pass
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
