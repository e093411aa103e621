"""Input subscriptions whose reliability can follow their publishers (``input_reliability: auto``).

Why: a best-effort subscription accepts every publisher, but Fast DDS (ROS 2's default middleware) drops
best-effort messages larger than its 0.5 MB shared-memory segment (ros2/rmw_fastrtps#739): a 640x480 rgb8 image
is 0.9 MB, and on one host almost none arrive. A reliable publisher (what REP 2003 asks of drivers) reaches a
reliable subscription without that loss, and a reliable subscription cannot match a best-effort publisher. So in
``auto`` the subscription is reliable exactly when every publisher of the topic offers reliable, and best-effort
otherwise (no publisher yet, or any best-effort one): the node is always visibly subscribed, and accepts any
camera. :meth:`InputSubscription.refresh` re-subscribes when that changes (rosbag2's recorder adapts to its
publishers' QoS the same way); samples in flight while it re-matches can be lost, a one-off when a camera starts
after the node.
"""

from __future__ import annotations

from typing import Any, Callable

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

RELIABILITY_POLICIES = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}


def qos_profile(reliability: str, depth: int) -> QoSProfile:
    """KEEP_LAST ``depth``, volatile, ``reliable`` or ``best_effort`` (the node's inputs and outputs)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=RELIABILITY_POLICIES[reliability])


class InputSubscription:
    def __init__(self, node, msg_type, topic: str, callback: Callable[[Any], None], depth: int, reliability: str,
                 raw: bool = False):
        """``raw``: the callback gets the serialized message (CDR bytes), as rclpy's raw subscriptions."""
        self._raw = raw
        if reliability not in ("auto", *RELIABILITY_POLICIES):
            raise ValueError(f"reliability must be auto, reliable or best_effort, got {reliability!r}")
        self._node, self._msg_type, self._topic, self._callback, self._depth = node, msg_type, topic, callback, depth
        self.mode = reliability
        self.topic_name = node.resolve_topic_name(topic)  # namespace and remapping applied
        self.current = "best_effort" if reliability == "auto" else reliability
        self._subscription = self._create(self.current)

    def _create(self, reliability: str):
        return self._node.create_subscription(self._msg_type, self._topic, self._callback,
                                              qos_profile(reliability, self._depth), raw=self._raw)

    def wanted(self) -> str:
        """The reliability to subscribe with now."""
        if self.mode != "auto":
            return self.mode
        publishers = self._node.get_publishers_info_by_topic(self.topic_name)
        if publishers and all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers):
            return "reliable"
        return "best_effort"

    def refresh(self) -> bool:
        """Re-subscribe if the wanted reliability changed; True if it did."""
        wanted = self.wanted()
        if wanted == self.current:
            return False
        self._node.destroy_subscription(self._subscription)
        self._subscription = self._create(wanted)
        self.current = wanted
        return True

    def publisher_count(self) -> int:
        """Publishers of the topic in the graph (matched or not); safe from any thread."""
        return self._node.count_publishers(self.topic_name)

    def describe(self) -> str:
        return f"{self.current} (auto)" if self.mode == "auto" else self.current

    def destroy(self) -> None:
        if self._subscription is not None:
            self._node.destroy_subscription(self._subscription)
            self._subscription = None


def starvation_hint(subscription: InputSubscription) -> str:
    """Why a topic with publishers may deliver nothing, as advice (or '')."""
    if subscription.current != "best_effort":
        return ""
    return ("subscribed best-effort: Fast DDS drops best-effort messages over 0.5 MB between processes "
            "(ros2/rmw_fastrtps#739): make the camera publish reliable, or start it with "
            "FASTDDS_DEFAULT_PROFILES_FILE=<share>/depthmaster_ros/config/fastdds_large_data.xml")
