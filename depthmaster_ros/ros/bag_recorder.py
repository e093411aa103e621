"""Recording topics of a live ROS 2 graph (``depthmaster-record``; no `ros2 bag record`): subscribes to the named
topics (waiting for them to appear) and hands over the received CDR bytes as they come, with the receive time, to
a writer (the tool's bag, ``rosbag/io.py``).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable


@dataclass
class RecordOptions:
    duration: float | None = None  # stop after this many seconds
    max_messages: int | None = None  # stop once every topic has this many messages
    wait: float = 30.0  # seconds to wait for the topics to appear


def record(topics: list[str], write: Callable[[str, str, int, bytes], None], options: RecordOptions, stop,
           log) -> Counter:
    """Record ``topics`` until the duration, the message count or ``stop()`` is true; the messages written, by
    topic. ``write(topic, ROS type name, receive time ns, CDR bytes)`` stores one message; ``log(line)`` gets the
    notes for the user (a type that is not installed, topics that never appeared). Initialises and shuts down
    rclpy."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions

    from ..messages.topics import message_class

    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("depthmaster_record")
    counts = Counter()
    subscriptions = {}
    deadline = time.monotonic() + options.wait
    try:
        while len(subscriptions) < len(topics) and time.monotonic() < deadline and not stop():
            known = dict(node.get_topic_names_and_types())
            for topic in topics:
                types = known.get(topic) or known.get(node.resolve_topic_name(topic))
                if topic in subscriptions or not types:
                    continue
                msgtype = types[0]
                if message_class(msgtype) is None:
                    log(f"skipping {topic}: type {msgtype} is not installed")
                    subscriptions[topic] = None
                    continue

                def store(raw, topic=topic, msgtype=msgtype):
                    write(topic, msgtype, node.get_clock().now().nanoseconds, raw)
                    counts[topic] += 1

                subscriptions[topic] = node.create_subscription(
                    message_class(msgtype), topic, store, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
                    raw=True)
            rclpy.spin_once(node, timeout_sec=0.1)
        missing = [t for t in topics if t not in subscriptions]
        if missing:
            log(f"never appeared: {', '.join(missing)}")
        end = time.monotonic() + options.duration if options.duration else float("inf")
        while not stop() and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
            if options.max_messages and all(counts[t] >= options.max_messages for t in subscriptions
                                            if subscriptions[t]):
                break
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return counts
