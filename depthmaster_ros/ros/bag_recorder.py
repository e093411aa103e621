"""Recording topics of a live ROS 2 graph (``depthmaster-record``; no `ros2 bag record`): subscribes to the named
topics (waiting for them to appear) and hands over the received CDR bytes as they come, with the receive time, to
a writer (the tool's bag, ``rosbag/io.py``). None of them within the wait: nothing is recorded; some: those are,
and the others too if they appear later.
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


@dataclass
class Recording:
    counts: Counter  # messages written, by topic
    never: list[str]  # topics that never appeared
    started: bool  # some topic appeared within the wait (else nothing was recorded)


def record(topics: list[str], write: Callable[[str, str, int, bytes], None], options: RecordOptions, stop,
           log) -> Recording:
    """Record ``topics`` until the duration, the message count or ``stop()`` is true. ``write(topic, ROS type
    name, receive time ns, CDR bytes)`` stores one message; ``log(line)`` gets the notes for the user (a type that
    is not installed, topics not there, with the closest existing name). When none of the topics appears within
    ``options.wait`` it records nothing (``started`` false); when some do, it records those and takes the others
    too if they appear later. Initialises and shuts down rclpy."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions

    from ..messages.topics import message_class

    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("depthmaster_record")
    counts = Counter()
    subscriptions = {}

    def subscribe_new() -> list[str]:
        """Subscribe to the named topics that exist now; the ones that appeared."""
        known = dict(node.get_topic_names_and_types())
        appeared = []
        for topic in topics:
            types = known.get(topic) or known.get(node.resolve_topic_name(topic))
            if topic in subscriptions or not types:
                continue
            appeared.append(topic)
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
        return appeared

    def missing() -> list[str]:
        return [t for t in topics if t not in subscriptions]

    deadline = time.monotonic() + options.wait
    try:
        while missing() and time.monotonic() < deadline and not stop():
            subscribe_new()
            rclpy.spin_once(node, timeout_sec=0.1)
        if not any(subscriptions.values()):
            when = "before any of the topics appeared" if stop() else f"within {options.wait:g} s"
            log(f"none of the topics appeared {when}: {_with_suggestions(missing(), node, topics)}; nothing "
                "recorded")
            return Recording(counts, missing(), started=False)
        if missing():
            log(f"not seen within {options.wait:g} s: {_with_suggestions(missing(), node, topics)}; recording the "
                "others (and these if they appear)")
        end = time.monotonic() + options.duration if options.duration else float("inf")
        next_look = time.monotonic() + 1.0
        while not stop() and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
            if missing() and time.monotonic() > next_look:  # a driver started late
                for topic in subscribe_new():
                    log(f"{topic} appeared; recording it")
                next_look = time.monotonic() + 1.0
            if options.max_messages and all(counts[t] >= options.max_messages for t in subscriptions
                                            if subscriptions[t]):
                break
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return Recording(counts, missing(), started=True)


def _with_suggestions(missing: list[str], node, named: list[str]) -> str:
    """The topics, each with the closest existing topic name not ``named`` already, if any (a typo: /camera/depht)."""
    import difflib

    existing = [name for name, _ in node.get_topic_names_and_types() if name not in named]
    described = []
    for topic in missing:
        close = difflib.get_close_matches(topic, existing, n=1, cutoff=0.6)
        described.append(f"{topic} (did you mean {close[0]}?)" if close else topic)
    return ", ".join(described)
