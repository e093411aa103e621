"""A frame's products as the node's output messages in an output bag, for every offline runner (depthmaster-bag,
the fleet runner), with the counts of what was written, skipped and served without metric outputs."""

from __future__ import annotations

from ..messages.outputs import output_messages
from .io import cdr_bytes, msgtype_of
from .run_state import RunState


class FrameWriter:
    """Writes under ``namespace`` (``""`` or ``/name``) the wanted ``topics`` (names of ``OUTPUT_TOPICS``)."""

    def __init__(self, namespace: str, topics, scale_mode: str):
        self.namespace, self.topics, self.scale_mode = namespace, set(topics), scale_mode

    def skip(self, entry, state: RunState) -> None:
        state.count("skipped", entry.skipped)

    def write(self, entry, products, out, state: RunState) -> None:
        """The frame's messages (its image's header and log time) to ``out`` (``write(topic, msgtype, log_time,
        data)``), with reproducible bytes (:func:`~depthmaster_ros.rosbag.io.cdr_bytes`)."""
        for kind, reason in entry.problems:
            if kind == "reduced":  # processed at a smaller size to fit max_frame_memory
                state.count("notes", reason)
                continue
            state.count("skipped", f"{'camera_info' if kind == 'camera_info' else 'metric source'} rejected: "
                                   f"{reason}")
        if products.failed is not None:
            kind = "image rejected" if products.rejected else "frame failed"
            state.count("skipped", f"{kind}: {products.failed.detail}")
            return
        frame, header = products.context
        missing = products.metric_missing()
        if missing is not None and self.scale_mode != "none":
            state.count("notes", f"no metric outputs: {missing.detail}")
        for topic, message in output_messages(products, header, self.topics, products.stamp_ns):
            name = f"{self.namespace}/{topic}"
            out.write(name, msgtype_of(message), frame.log_time, cdr_bytes(message))
            state.written[name] = state.written.get(name, 0) + 1
        state.served(products.stamp_ns, products.scale)
