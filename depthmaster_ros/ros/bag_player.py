"""Playing a rosbag2 into a live ROS 2 graph with its original timing (``depthmaster-play``; no `ros2 bag play`).

Messages go out as their recorded CDR bytes (no decoding), at their log times scaled by the rate. Every topic is
published reliable (as REP 2003 asks of drivers; `ros2 bag play` does the same by default): it reaches reliable
and best-effort subscribers, and Fast DDS does not drop large reliable messages the way it drops best-effort ones
over 0.5 MB (ros2/rmw_fastrtps#739). ``sensor_qos`` publishes sensor topics (images, camera infos, clouds, scans,
IMU) with the sensor-data QoS instead, to reproduce a best-effort driver. The bag is any reader with
``connections``, ``start_time`` and ``messages(connections=..., start=...)`` (``rosbag/io.py`` opens one).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

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


class NoSubscriber(RuntimeError):
    """No played topic got a subscriber in the time given: the reason names the topics."""


@dataclass
class PlayOptions:
    rate: float = 1.0  # speed factor
    loop: bool = False  # start over at the end
    start_offset: float = 0.0  # seconds of the bag skipped
    delay: float = 0.0  # seconds waited before playing (discovery)
    wait_for_subscribers: float = 0.0  # seconds to wait first for subscribers (0: none)
    sensor_qos: bool = False  # sensor topics best effort
    clock: float | None = None  # Hz of /clock with the bag's time (None: no /clock)


def play(reader, connections, options: PlayOptions, stop: threading.Event, log) -> Counter:
    """Publish ``connections`` of ``reader`` until the end (or ``stop``); the messages published, by topic.
    ``log(line)`` gets the notes for the user (a type that is not installed, topics nobody listens to). Raises
    :class:`NoSubscriber` when waiting for subscribers found none on any topic. Initialises and shuts down rclpy."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from rclpy.signals import SignalHandlerOptions

    from ..messages.topics import message_class

    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("depthmaster_play")
    publishers = {}
    for connection in connections:
        msg_class = message_class(connection.msgtype)
        if msg_class is None:
            log(f"skipping {connection.topic}: type {connection.msgtype} is not installed")
            continue
        if not options.sensor_qos or connection.msgtype not in SENSOR_TYPES:
            qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        else:
            qos = qos_profile_sensor_data
        publishers[connection.id] = node.create_publisher(msg_class, connection.topic, qos)

    published = Counter()
    start_ns = reader.start_time + int(options.start_offset * 1e9)
    clock = None
    try:
        if options.wait_for_subscribers > 0:
            lonely = wait_for_subscribers(publishers, {c.id: c.topic for c in connections},
                                          options.wait_for_subscribers, stop)
            if len(lonely) == len(publishers) and not stop.is_set():
                raise NoSubscriber(f"no subscriber after {options.wait_for_subscribers:g} s on any of: "
                                   f"{', '.join(lonely)}. Start the node (or the recorder) first, and check its topic "
                                   "names (remappings) against these")
            if lonely:
                log(f"no subscriber on {', '.join(lonely)} (played anyway)")
        clock = BagClock(node, start_ns, options.rate, options.clock) if options.clock else None
        stop.wait(options.delay)
        while not stop.is_set():
            wall_start = time.monotonic()
            if clock is not None:
                clock.restart(wall_start)
            for connection, log_time, raw in reader.messages(connections=connections, start=start_ns):
                publisher = publishers.get(connection.id)
                if publisher is None:
                    continue
                if stop.wait(max(wall_start + (log_time - start_ns) / 1e9 / options.rate - time.monotonic(), 0.0)):
                    break
                if clock is not None:
                    clock.advance_to(log_time)  # the clock is never behind the data it comes with
                publisher.publish(raw)
                published[connection.topic] += 1
            if not options.loop:
                break
        stop.wait(LINGER_S)  # destroying publishers at once can drop the last samples still in flight
    finally:
        if clock is not None:
            clock.stop()
        node.destroy_node()
        rclpy.try_shutdown()
    return published
