"""ROS 2 topics to Foxglove, for the venv route (no RViz, no foxglove_bridge there): what foxglove_bridge serves,
in Python, for the topics asked for.

Each topic becomes a Foxglove channel with its ROS 2 message definition (schema encoding ``ros2msg``, messages as
their CDR bytes, ``cdr``), so Foxglove and Lichtblick show them with their ROS panels (Image for 32FC1 depth and
bgr8, 3D for PointCloud2, Plot for ``depth/scale``, Diagnostics) exactly as from a ROS install. The sinks are the
foxglove SDK's: a WebSocket server (live: the app connects to ``ws://HOST:PORT``) and an MCAP file. The ROS
subscriptions are made only while something wants the topic: a client subscribed to its channel, or the MCAP
file, which wants everything. The node computes only the outputs somebody subscribes to, so a viewer that
subscribed to all of them would make it compute all of them. Reliability follows the publishers (the node's
``input_reliability: auto``): reliable when every publisher is, so large images from a reliable publisher are not
lost (Fast DDS drops best-effort messages over 0.5 MB between processes).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Callable

from ..messages.topics import message_class
from .input_subscription import InputSubscription

DEPTH = 10


def ros2msg_schema(msgtype: str) -> bytes | None:
    """The full ROS 2 message definition of ``msgtype`` (pkg/msg/Name) with its dependencies, in the layout
    rosbag2 and foxglove_bridge use; None for a type the type store does not know."""
    from rosbags.typesys import Stores, get_typestore

    try:
        return get_typestore(Stores.ROS2_KILTED).generate_msgdef(msgtype, ros_version=2)[0].encode()
    except Exception:  # noqa: BLE001 - rosbags raises its own errors for unknown types
        return None


class FoxgloveBridge:
    """``topics`` (names resolved in ``node``'s namespace) as Foxglove channels in ``context`` (the SDK's global
    one by default). ``subscribe_all``: subscribe to every topic whether or not a client wants it (an MCAP file is
    being written). Call :meth:`update` regularly from the thread that spins ``node``; the server calls
    :meth:`on_subscribe` / :meth:`on_unsubscribe` (pass the bridge as its ``server_listener``)."""

    def __init__(self, node, topics: list[str], subscribe_all: bool = False, context=None,
                 log: Callable[[str], None] = print):
        self.node = node
        self.topics = list(dict.fromkeys(node.resolve_topic_name(topic) for topic in topics))
        self.subscribe_all = subscribe_all
        self.context = context
        self.log = log
        self.channels: dict[str, object] = {}  # topic -> foxglove.Channel
        self.subscriptions: dict[str, InputSubscription] = {}
        self.counts: Counter = Counter()  # messages forwarded per topic
        self._clients: Counter = Counter()  # topic -> clients subscribed to its channel
        self._lock = threading.Lock()
        self._unknown: set[str] = set()

    # ------------------------------------------------------------------ the server's callbacks (its threads)
    def on_subscribe(self, client, channel) -> None:
        with self._lock:
            self._clients[channel.topic] += 1

    def on_unsubscribe(self, client, channel) -> None:
        with self._lock:
            self._clients[channel.topic] = max(0, self._clients[channel.topic] - 1)

    # ------------------------------------------------------------------ the ROS side (the spinning thread)
    def update(self) -> None:
        """Advertise the topics that appeared; subscribe to those wanted, unsubscribe from the others; follow the
        publishers' reliability."""
        import foxglove

        types = dict(self.node.get_topic_names_and_types())
        for topic in self.topics:
            if topic in self.channels or topic not in types:
                continue
            msgtype = types[topic][0]
            schema = ros2msg_schema(msgtype)
            if schema is None or message_class(msgtype) is None:
                if topic not in self._unknown:
                    self._unknown.add(topic)
                    self.log(f"{topic}: type {msgtype} is not known here; not forwarded")
                continue
            self.channels[topic] = foxglove.Channel(
                topic, message_encoding="cdr", context=self.context,
                schema=foxglove.Schema(name=msgtype, encoding="ros2msg", data=schema))
        with self._lock:
            wanted = {topic for topic in self.channels if self.subscribe_all or self._clients[topic] > 0}
        for topic in list(self.subscriptions):
            if topic not in wanted:
                self.subscriptions.pop(topic).destroy()
        for topic in wanted:
            subscription = self.subscriptions.get(topic)
            if subscription is None:
                self.subscriptions[topic] = InputSubscription(
                    self.node, message_class(types[topic][0]), topic, self._forwarder(topic), DEPTH, "auto",
                    raw=True)
            else:
                subscription.refresh()

    def _forwarder(self, topic: str):
        channel = self.channels[topic]

        def forward(raw: bytes) -> None:
            channel.log(raw, log_time=time.time_ns())
            self.counts[topic] += 1

        return forward

    def close(self) -> None:
        for subscription in self.subscriptions.values():
            subscription.destroy()
        self.subscriptions.clear()
        for channel in self.channels.values():
            channel.close()
