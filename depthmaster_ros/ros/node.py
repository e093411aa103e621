"""The depthmaster lifecycle node: camera images in; depth, relative depth, a coloured view and point clouds out.

Glue between ROS and the frame engine (``engine/``): messages become frame jobs (``messages/pairing.py``), the
engine's products become messages (``messages/outputs.py``). Parameters: ``node_parameters.py``; per-camera
state: ``camera_stream.py``; /diagnostics: ``diagnostics.py``.

Lifecycle: configure loads the model backend (and fails with the reason if it cannot) and creates the publishers;
activate subscribes and starts the inference thread; deactivate unsubscribes and stops it; cleanup frees the
model and GPU memory; shutdown (or SIGINT / SIGTERM) ends the process cleanly. With ``autostart`` (default) the
node configures and activates itself at start-up.

Threads: the executor runs the subscription, parameter, lifecycle and diagnostics callbacks, which only store
the newest frame of each camera; one inference thread takes the waiting frames (after ``batch_wait`` for the
other cameras' frames) and runs them through the engine as one batch, then publishes. A frame arriving while
another of its camera waits replaces it (counted as dropped). An output nobody subscribes to is not computed,
and with no subscriber at all no inference runs.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_msgs.msg import String

from ..processing_config import ProcessingConfig
from ..engine.engine import FrameEngine
from ..engine.limits import memory_problem
from ..messages.conversions import InputError, decode_image, stamp_to_ns
from ..messages.outputs import each_output_message
from ..messages.topics import COMPRESSED_IMAGE, CAMERA_INFO, IMAGE, MEASUREMENT_TYPES, OUTPUT_TOPICS, \
    message_class, needed_outputs
from ..parameters import camera_values, warmup_size
from ..scale.source import get_source, measurement_inputs
from .camera_stream import CameraStream
from .diagnostics import NodeSummary, camera_status, diagnostic_array
from .frame_timing import TOPIC as FRAME_TIMING_TOPIC, FrameTiming
from .input_subscription import InputSubscription, qos_profile, starvation_hint
from .latest_frame import LatestFrames
from .node_parameters import NodeParameters
from .tf_extrinsics import TfExtrinsics

NODE_NAME = "depthmaster"


@dataclass
class Frame:
    msg: Any
    compressed: bool
    timing: FrameTiming  # where its time goes (frame_timing.py)


class DepthMasterNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self.parameters = NodeParameters(self, self._apply_parameters, self._check_resources)
        self._streams = {name: CameraStream(name) for name in (self.parameters.cameras or [""])}
        self._apply_parameters()
        self._engine: FrameEngine | None = None
        self._input_subs: list[InputSubscription] = []
        self._qos_timer = None
        self._activated_at = None
        self._slots = LatestFrames()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._logged: dict[tuple[str, str], tuple[float, int]] = {}  # (camera, kind) -> (last logged, not logged)
        self.finished = threading.Event()
        self.stopped_cleanly = True  # the lifecycle reached its end (shutdown): the process should exit
        self._problem = ""  # why the node cannot serve (configure failure), for diagnostics
        self.start_warnings: list[str] = []  # conditions found at start-up that the node runs with
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._frame_timing = self.create_publisher(String, FRAME_TIMING_TOPIC, 10)  # a record per frame, when asked
        # wall-clock timers: with use_sim_time the node's clock stands still when a bag is paused or over, but
        # /diagnostics and the QoS follow-up must go on
        self._extrinsics = TfExtrinsics(self.get_parameter("extrinsics_source").value, node=self)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(self.get_parameter("diagnostics_period").value, self._publish_diagnostics,
                          clock=self._steady)

    def _memory_problem(self, backend, values: dict[str, Any]) -> str | None:
        config = ProcessingConfig.from_parameters(values)
        return memory_problem(backend, config, len(self._streams), warmup_size(values["warmup_size"]))

    def _check_resources(self, values: dict[str, Any], changed: set[str]) -> list[str]:
        """A processing size whose activations cannot fit is refused when it is set, with the estimate."""
        engine = self._engine
        if engine is None or not changed & {"processing_res", "max_processing_pixels"}:
            return []
        problem = self._memory_problem(engine.backend, values)
        return [problem] if problem else []

    def _apply_parameters(self) -> None:
        values = self.parameters.values()
        for stream in self._streams.values():
            stream.config = ProcessingConfig.from_parameters(camera_values(values, stream.name))

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from ..model.backends import backend_from_parameters
        from ..model.checkpoint import CheckpointError
        from ..model.checkpoint_layout import RANDOM_WEIGHTS_WARNING

        refused = self.parameters.refused_reason()
        if refused:  # never run with a default in place of what was asked for
            self._problem = f"configure failed: {refused}"
            self.get_logger().error(self._problem)
            return TransitionCallbackReturn.FAILURE
        values = self.parameters.values()
        try:
            backend = backend_from_parameters(values)
            problem = self._memory_problem(backend, values)
            if problem:
                raise ValueError(problem)
            size = warmup_size(values["warmup_size"])
            if size is not None:
                batch = len(self._streams)
                self.get_logger().info(f"warming up the model at {size[0]}x{size[1]}, batch {batch} ...")
                backend.warmup(size[0], size[1], batch=batch, processing_res=values["processing_res"])
        except (CheckpointError, ValueError, RuntimeError, OSError) as exc:
            self._problem = f"configure failed: {exc}"
            self.get_logger().error(self._problem)
            return TransitionCallbackReturn.FAILURE
        self._engine = FrameEngine(backend, max_batch=len(self._streams))
        self._problem = ""
        cameras = [name for name in self._streams if name]
        self.get_logger().info(f"loaded {backend.describe()}" + (f" for cameras {', '.join(cameras)}" if cameras
                                                                  else ""))
        if backend.random_weights:
            self.get_logger().warning(RANDOM_WEIGHTS_WARNING)
        qos = qos_profile(values["output_reliability"], values["output_depth"])
        for stream in self._streams.values():
            for topic, (msgtype, _) in OUTPUT_TOPICS.items():
                stream.publishers[topic] = self.create_lifecycle_publisher(message_class(msgtype),
                                                                           stream.prefix + topic, qos)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        depth = self.get_parameter("input_depth").value
        reliability = self.get_parameter("input_reliability").value

        def subscribe(msgtype, topic, callback):
            subscription = InputSubscription(self, message_class(msgtype), topic, callback, depth, reliability)
            self._input_subs.append(subscription)
            return subscription

        compressed = self.get_parameter("input_transport").value == "compressed"
        for stream in self._streams.values():
            image_topic = "image/compressed" if compressed else "image"
            stream.image_sub = subscribe(COMPRESSED_IMAGE if compressed else IMAGE, stream.prefix + image_topic,
                                         lambda m, s=stream: self._on_image(s, m, compressed))
            stream.subscriptions = {image_topic: stream.image_sub, "camera_info": subscribe(
                CAMERA_INFO, stream.prefix + "camera_info", lambda m, s=stream: self._on_camera_info(s, m))}
        # The scale sources' inputs: always subscribed (cheap when silent), so scale_mode can switch live.
        for name, item in measurement_inputs().items():
            msgtype = MEASUREMENT_TYPES[item.kind]
            if item.shared:  # one topic (a LiDAR) serves every camera, each pairing it with its own frames
                shared = subscribe(msgtype, name, lambda m, n=name: self._on_measurement(list(self._streams.values()),
                                                                                         n, m))
                for stream in self._streams.values():
                    stream.subscriptions[name] = shared
            else:
                for stream in self._streams.values():
                    stream.subscriptions[name] = subscribe(msgtype, stream.prefix + name,
                                                           lambda m, s=stream, n=name: self._on_measurement([s], n, m))
        self._refresh_inputs()
        self._activated_at = time.monotonic()
        if reliability == "auto":
            self._qos_timer = self.create_timer(0.5, self._refresh_inputs, clock=self._steady)
        self._stop.clear()
        self._worker = threading.Thread(target=self._run_worker, name="depthmaster-inference", daemon=True)
        self._worker.start()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_serving()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stopped_cleanly = self.stop()
        self.finished.set()
        return TransitionCallbackReturn.SUCCESS

    def stop(self) -> bool:
        """End serving and free the model, for the process's exit. A model pass still running (minutes on a CPU at
        a large processing_res) is not waited for beyond a few seconds: False then, and the process must end
        without tearing down what that thread still uses (``os._exit``)."""
        if not self._stop_serving(join_timeout=3.0):
            return False
        self._release()
        return True

    def _stop_serving(self, join_timeout: float | None = None) -> bool:
        """Unsubscribe and stop the inference thread; False if it is still in a model pass after the timeout."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(join_timeout)
            if self._worker.is_alive():
                return False
            self._worker = None
        if self._qos_timer is not None:
            self.destroy_timer(self._qos_timer)
            self._qos_timer = None
        for subscription in self._input_subs:
            subscription.destroy()
        self._input_subs.clear()
        self._slots.clear()
        for stream in self._streams.values():
            stream.pairing.clear()
            stream.image_sub = None
            stream.subscriptions = {}
        return True

    def _release(self) -> None:
        for stream in self._streams.values():
            for publisher in stream.publishers.values():
                self.destroy_lifecycle_publisher(publisher)
            stream.publishers.clear()
        if self._engine is not None:
            on_cuda = getattr(self._engine.backend.device, "type", "") == "cuda"
            self._engine = None
            if on_cuda:
                import torch

                torch.cuda.empty_cache()

    def autostart(self) -> bool:
        """configure + activate; False (with the reason logged and on /diagnostics) if configure fails."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def warn_at_start(self, message: str) -> None:
        """A condition found at start-up that the node runs with (a node of the same name, duplicate_name warn):
        logged, and on /diagnostics for as long as the node runs."""
        self.start_warnings.append(message)
        self.get_logger().warning(message)

    @property
    def lifecycle_state(self) -> str:
        return self._state_machine.current_state[1]

    def _refresh_inputs(self) -> None:
        """input_reliability auto: follow each input topic's publishers (see input_subscription.py)."""
        try:
            for subscription in self._input_subs:
                if subscription.refresh():
                    self.get_logger().info(f"{subscription.topic_name}: subscribed {subscription.current} to match "
                                           "its publishers")
        except Exception as exc:  # a graph query failing must not take the executor down
            self.get_logger().error(f"input QoS refresh failed: {type(exc).__name__}: {exc}",
                                    throttle_duration_sec=10.0)

    # ------------------------------------------------------------------ callbacks (executor thread)
    def _on_image(self, stream: CameraStream, msg, compressed: bool) -> None:
        timing = FrameTiming.starting_now(stream.name)
        stream.stats.received()
        stream.idle = not stream.wanted_topics()
        if stream.idle:
            stream.stats.ignored()
        else:
            self._slots.put(stream.name, Frame(msg, compressed, timing))

    def _on_camera_info(self, stream: CameraStream, msg) -> None:
        self._reject(stream, "camera_info", stream.pairing.add_camera_info(msg))

    def _on_measurement(self, streams: list[CameraStream], name: str, msg) -> None:
        for stream in streams:
            self._reject(stream, "metric_source", stream.pairing.add(name, msg))

    def _reject(self, stream: CameraStream, kind: str, reason: str | None) -> None:
        if reason:
            stream.stats.problem(kind, reason)
            self._log_throttled(stream, kind, reason, self.get_logger().warning)

    def _log_throttled(self, stream: CameraStream, kind: str, reason: str, log) -> None:
        """At most one line per camera and kind of problem every 5 s, saying how many were not shown."""
        now = time.monotonic()
        last, skipped = self._logged.get((stream.name, kind), (-float("inf"), 0))
        if now - last < 5.0:
            self._logged[(stream.name, kind)] = (last, skipped + 1)
            return
        self._logged[(stream.name, kind)] = (now, 0)
        log(f"{stream.prefix}{reason}" + (f" ({skipped} more like it since the last report)" if skipped else ""))

    # ------------------------------------------------------------------ inference thread
    def _run_worker(self) -> None:
        several = len(self._streams) > 1
        while not self._stop.is_set():
            gather = self.get_parameter("batch_wait").value if several else 0.0
            frames = self._slots.take(0.1, self._streams, gather)
            if frames:
                self._serve(frames)

    def _failed(self, stream: CameraStream, reason: str) -> None:
        """Never let one frame kill the thread (or the other cameras' frames); report it."""
        stream.stats.problem("error", reason)
        self._log_throttled(stream, "error", f"frame failed: {reason}", self.get_logger().error)

    def _serve(self, frames: dict[str, Frame]) -> None:
        """The frames taken together: each paired with its companions, then the engine (one model pass per
        image size), then each camera's messages as soon as its outputs are made."""
        jobs = []
        taken = time.monotonic_ns()
        for name, frame in frames.items():
            frame.timing.mark("taken", taken)
            stream = self._streams[name]
            try:
                job = self._job(stream, frame)
            except Exception as exc:
                self._failed(stream, f"{type(exc).__name__}: {exc}")
                continue
            if job is not None:
                jobs.append(job)
        if not jobs:
            return
        model_start = time.monotonic_ns()
        relatives = self._engine.infer(jobs)  # engine.run, in its two halves, to publish each camera when ready
        model_done = time.monotonic_ns()
        for job, relative in zip(jobs, relatives):
            if self._stop.is_set():  # deactivated or shutting down during the model pass
                return
            timing = job.context[2]
            timing.mark("model_start", model_start)
            timing.mark("model_done", model_done)
            timing.mark("finishing")
            products = self._engine.finish(job, relative)
            timing.mark("finished")
            stream = self._streams[products.stream]
            if products.rejected:
                self._reject(stream, "image", f"image rejected: {products.failed.detail}")
                continue
            if products.failed is not None:
                self._failed(stream, products.failed.detail)
                continue
            try:
                self._publish(stream, products)
            except Exception as exc:
                self._failed(stream, f"{type(exc).__name__}: {exc}")

    def _job(self, stream: CameraStream, frame: Frame):
        msg = frame.msg
        try:
            rgb = decode_image(msg, frame.compressed, stream.config.max_image_pixels)
        except InputError as exc:
            self._reject(stream, "image", f"image rejected: {exc}")
            return None
        frame.timing.mark("decoded")
        topics = stream.wanted_topics()
        if not topics:
            stream.stats.ignored()
            return None
        config = stream.config
        stamp_ns = frame.timing.stamp_ns = stamp_to_ns(msg.header.stamp)
        stream.pairing.await_companions(stamp_ns, get_source(config.scale_mode), config.camera_info_tolerance,
                                        config.metric_source_tolerance,
                                        lambda name: stream.publisher_count(name) > 0)
        job, problems = stream.pairing.job(stream.name, stamp_ns, rgb, config, needed_outputs(topics),
                                           context=(msg.header, topics, frame.timing), frame_id=msg.header.frame_id,
                                           extrinsics=functools.partial(self._extrinsics.apply,
                                                                        camera_frame=msg.header.frame_id))
        for kind, reason in problems:
            self._reject(stream, kind, reason)
        frame.timing.mark("paired")
        return job

    def _publish(self, stream: CameraStream, products) -> None:
        header, topics, timing = products.context
        stream.record(products, needed_outputs(topics))
        if products.nonfinite_fraction > 0:
            self._log_throttled(stream, "nonfinite", f"{products.nonfinite_fraction:.1%} of the model's output was "
                                "not finite (NaN/Inf): published as NaN (no measurement) in depth, no points there",
                                self.get_logger().warning)
        missing = products.metric_missing()
        if missing is not None:  # someone subscribes to depth, points or depth/scale and gets none
            wanted = ", ".join(sorted(name for name in products.missing if name != "relative"))
            self._log_throttled(stream, "metric", f"no {wanted} for this frame: {missing.detail}",
                                self.get_logger().warning)
        started = time.monotonic_ns()
        for topic, message in each_output_message(products, header, topics, products.stamp_ns):
            built = time.monotonic_ns()
            stream.publishers[topic].publish(message)  # each one as soon as it is built
            published = time.monotonic_ns()
            timing.output(topic, started, built, published)
            started = published
        now = self.get_clock().now().nanoseconds  # 0 with use_sim_time before the first /clock message
        stream.stats.published((now - products.stamp_ns) / 1e9 if now else None)
        if self._frame_timing.get_subscription_count() > 0:
            self._frame_timing.publish(String(data=timing.to_json()))

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        try:
            summary = self._summary()
            statuses = [self._camera_status(stream, summary) for stream in self._streams.values()]
            self._diagnostics.publish(diagnostic_array(self.get_clock().now().to_msg(), statuses))
        except Exception as exc:  # a report must never take the executor (and the node's services) down
            self.get_logger().error(f"diagnostics failed: {type(exc).__name__}: {exc}", throttle_duration_sec=10.0)

    def _summary(self) -> NodeSummary:
        from ..model.device import memory_report

        summary = NodeSummary(self.lifecycle_state, self.get_parameter("checkpoint").value, self._problem,
                              self.parameters.problems, warnings=list(self.start_warnings))
        engine = self._engine
        if engine is not None:
            backend = engine.backend
            summary.model = {"model": backend.describe(), "device": str(backend.device)}
            dtype = getattr(backend, "dtype", None)
            if dtype is not None:
                from ..model.device import dtype_name

                summary.model["dtype"] = dtype_name(dtype)
            summary.model.update(memory_report(backend.device))
            summary.passes, summary.frames_passed = engine.passes, engine.frames_passed
        return summary

    def _camera_status(self, stream: CameraStream, summary: NodeSummary):
        stats = stream.stats.snapshot()
        stats["frames_dropped"] = self._slots.dropped[stream.name]
        stats["model_nonfinite_fraction"] = stream.nonfinite_fraction  # of the last frame served
        if not self.get_clock().now().nanoseconds:
            stats["latency"] = ("unknown: use_sim_time is true and no /clock message has arrived, so the node's "
                                "time is 0 (is the bag played with --clock?)")
        stats.update(self._extrinsics.report(stream.config))
        starved = self._starved(stream, stats) if summary.lifecycle_state == "active" else ""
        return camera_status(self.get_name(), summary, stream, stats, starved)

    def _starved(self, stream: CameraStream, stats: dict) -> str:
        """Why no image arrives although the topic has publishers (the usual 'no output' puzzle), or ''."""
        subscription = stream.image_sub
        if subscription is None or stats["input_rate_hz"] > 0 or self._activated_at is None:
            return ""
        window = stream.stats.window
        if time.monotonic() - self._activated_at < window:
            return ""
        publishers = subscription.publisher_count()
        if not publishers:
            return ""
        hint = starvation_hint(subscription)
        return f"{publishers} publisher(s) on {subscription.topic_name} but no image for {window:.0f} s" + (
            f"; {hint}" if hint else "")
