"""One camera of the node: its topics (under NAME/ when the node serves several), the pairing of its companions,
its configuration, publishers, subscriptions, statistics and what its last frame said about metric output."""

from __future__ import annotations

from typing import Any

from ..engine.job import METRIC_OUTPUTS, Missing
from ..engine.scale_stage import scale_mode_none
from ..messages.pairing import FramePairing
from ..scale.source import NONE
from .diagnostics import FrameStats


class CameraStream:
    def __init__(self, name: str):
        self.name = name
        self.prefix = f"{name}/" if name else ""
        self.pairing = FramePairing()
        self.stats = FrameStats()
        self.config = None  # ProcessingConfig
        self.publishers: dict[str, Any] = {}  # output topic (without the prefix) -> lifecycle publisher
        self.image_sub = None  # InputSubscriptions while active
        self.subscriptions: dict[str, Any] = {}  # input topic (without the prefix) -> InputSubscription
        self.scale_status = ""
        self.last_fit = None
        self.last_missing: Missing | None = None  # why the last frame had no metric output (if it had none)
        self.reports: dict = {}  # the stages' reports on the last frame, by stage name
        self.wants_metric = False  # someone subscribes to depth, points or depth/scale
        self.nonfinite_fraction = 0.0  # share of the last frame's model output that was NaN/Inf
        self.idle = True

    def wanted_topics(self) -> set[str]:
        return {topic for topic, pub in self.publishers.items() if pub.get_subscription_count() > 0}

    def publisher_count(self, topic: str) -> int:
        """Publishers of one of this camera's input topics (0 when not subscribed)."""
        subscription = self.subscriptions.get(topic)
        return subscription.publisher_count() if subscription is not None else 0

    def record(self, products, outputs) -> None:
        """Keep what a served frame says about the scale and the metric outputs."""
        if products.scale_status:
            self.scale_status, self.last_fit = products.scale_status, products.scale
        self.reports = dict(products.stage_reports)
        self.wants_metric = bool(set(outputs) & METRIC_OUTPUTS)
        self.last_missing = products.metric_missing()
        self.nonfinite_fraction = products.nonfinite_fraction

    def metric_state(self) -> Missing | None:
        """Why there is no metric output now: scale_mode none says so even when nobody asks for depth."""
        if self.config is not None and self.config.scale_mode == NONE:
            return scale_mode_none()
        return self.last_missing if self.wants_metric else None
