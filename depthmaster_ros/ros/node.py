"""The depthmaster lifecycle node: camera images in; depth, relative depth, a coloured view and point clouds out.

Glue between ROS and the frame engine (``engine/``): messages become frame jobs (``messages/pairing.py``), the
engine's products become messages (``messages/outputs.py``). Parameters: ``node_parameters.py``; per-camera
state: ``camera_stream.py``; /diagnostics: ``diagnostics.py``.

Lifecycle: configure loads the model backend (and fails with the reason if it cannot) and creates the publishers;
activate subscribes and starts the inference thread; deactivate unsubscribes and stops it; cleanup frees the
model and GPU memory; shutdown (or SIGINT / SIGTERM) ends the process cleanly. With ``autostart`` (default) the
node configures and activates itself at start-up.

Threads: the executor (single-threaded, :func:`node_executor`) runs the subscription, parameter, diagnostics and
lifecycle-query callbacks, which only store the newest frame of each camera and its companions; the lifecycle
transitions (configure loads the model for seconds to minutes) run on a thread of their own while the executor
goes on answering parameter calls, ``get_state`` and /diagnostics, and taking messages (a second transition
meanwhile is refused by the lifecycle state machine). One inference thread takes the waiting frames (after
``batch_wait`` for the other cameras' frames) and runs them through the engine as one batch, then publishes. A
frame arriving while another of its camera waits replaces it (counted as dropped while busy). A frame is paired
with its camera info and measurements after its model pass, so those that come late had the pass's time to arrive.
An output nobody subscribes to is not computed, and with no subscriber at all no inference runs.

Transitions and a running model pass: deactivate and cleanup return at once (the pass ends in the background and
its outputs are dropped); activate and configure wait for such a pass to end before starting another or loading a
second model (they log that they wait); shutdown waits a few seconds, then the process ends without it.

Memory: each frame is planned against ``max_frame_memory`` before it is decoded (``messages/frame_decoding.py``):
processed as it is, at a smaller size, or refused; after a large frame the freed memory is given back to the
system (``host_memory.release_freed_memory``). Configure checks that the model fits the memory the process may
still use (``engine/limits.startup_problem``) before loading it.
"""

from __future__ import annotations

import functools
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle.node import LifecycleNodeMixin
from rclpy.node import Node
from rclpy.task import Future
from std_msgs.msg import String

from ..processing_config import ProcessingConfig
from ..engine.engine import FrameEngine
from ..engine.job import METRIC_OUTPUTS, FrameJob
from ..engine.limits import memory_problem, startup_problem, worst_case_pixels
from ..host_memory import headroom, release_freed_memory
from ..messages.conversions import InputError, stamp_to_ns
from ..messages.frame_decoding import decode_frame
from ..messages.outputs import each_output_message
from ..messages.topics import COMPRESSED_IMAGE, CAMERA_INFO, IMAGE, MEASUREMENT_TYPES, OUTPUT_TOPICS, \
    message_class, needed_outputs
from ..parameters import camera_values, warmup_size
from ..scale.source import get_source, measurement_inputs
from .camera_stream import CameraStream
from .diagnostics import CameraFacts, NodeSummary, camera_status, diagnostic_array
from .frame_timing import TOPIC as FRAME_TIMING_TOPIC, FrameTiming
from .input_subscription import InputSubscription, input_silence, qos_profile, starvation_hint
from .latest_frame import LatestFrames
from .node_parameters import NodeParameters
from .tf_extrinsics import TfExtrinsics
from .wiring_parameters import CAMERA_INFO_DEPTH, MEASUREMENT_DEPTH

NODE_NAME = "depthmaster"
TRIM_AFTER_BYTES = 64 * 2**20  # give freed memory back after a frame whose estimate exceeds this and twice the
# recent frames' median (a frame larger than usual): see host_memory.release_freed_memory
SLOW_PASS_LOG_S = 10.0  # log a model pass that runs this long, then every LOG_PERIOD_S
LOG_PERIOD_S = 30.0


@dataclass
class Frame:
    msg: Any
    compressed: bool
    stamp_ns: int
    timing: FrameTiming  # where its time goes (frame_timing.py)


@dataclass
class Decoded:
    """A frame decoded for its model pass, before its companions are paired with it."""

    stream: Any  # CameraStream
    job: Any  # FrameJob without camera info or measurements
    header: Any
    topics: set
    declared: tuple[int, int]
    memory: int  # its plan's estimate, bytes
    timing: FrameTiming
    paired: bool = False


@dataclass
class ModelPass:
    """The engine run in progress: since when, and each camera's frame in it (size, for the messages)."""

    started: float
    frames: dict[str, str]


def node_executor(node: "DepthMasterNode") -> SingleThreadedExecutor:
    """The executor the node is spun with, the node added. Single-threaded: it takes each message at once (a
    multi-threaded executor hands every callback to another thread, and under load a camera's next image replaced
    the waiting one in the middleware before it was taken); the node runs its long work on threads of its own."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    return executor


class DepthMasterNode(LifecycleNode):
    def __init__(self, **kwargs):
        # LifecycleNode.__init__ would put the lifecycle services in the default callback group, with the parameter
        # services. Here they have a reentrant group of their own, and a transition runs on a thread while its
        # service call waits (see _transition_off_executor): get_state, parameter calls and /diagnostics go on.
        Node.__init__(self, NODE_NAME, **kwargs)
        LifecycleNodeMixin.__init__(self, enable_communication_interface=True,
                                    callback_group=ReentrantCallbackGroup())
        self._transition_off_executor()
        self.parameters = NodeParameters(self, self._apply_parameters, self._check_resources)
        self._streams = {name: CameraStream(name) for name in (self.parameters.cameras or [""])}
        self._apply_parameters()
        self._engine: FrameEngine | None = None
        self._input_subs: list[InputSubscription] = []
        self._qos_timer = None
        self._activated_at = None
        self._slots = LatestFrames(self._dropped)
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._publishing = threading.Lock()  # publishers are not destroyed while a frame is being published
        self._pass: ModelPass | None = None
        self._frame_bytes: deque[int] = deque(maxlen=16)  # memory estimates of the recent frames
        self._configuring_since: float | None = None
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
        self._configuring_since = time.monotonic()
        try:
            return self._configure()
        except Exception as exc:  # rclpy would swallow it without a word
            return self._configure_failed(f"{type(exc).__name__}: {exc}")
        finally:
            self._configuring_since = None

    def _configure(self) -> TransitionCallbackReturn:
        from ..model.backends import ModelConfig, backend_from_parameters, load_estimate
        from ..model.checkpoint import CheckpointError
        from ..model.checkpoint_layout import RANDOM_WEIGHTS_WARNING

        refused = self.parameters.refused_reason()
        if refused:  # never run with a default in place of what was asked for
            self._problem = f"configure failed: {refused}"
            self.get_logger().error(self._problem)
            return TransitionCallbackReturn.FAILURE
        self._wait_for_pass("configure")  # one model in memory at a time
        values = self.parameters.values()
        try:
            problem = self._startup_problem(load_estimate(ModelConfig.from_parameters(values)), values)
            if problem:
                raise ValueError(problem)
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
            return self._configure_failed(str(exc))
        except MemoryError as exc:  # the estimate was short: say so rather than die
            return self._configure_failed(f"out of memory while loading the model ({exc or 'MemoryError'}); "
                                          f"{self._headroom_line()}")
        except Exception as exc:  # an import or a library failing (often for lack of memory): never silent
            return self._configure_failed(f"{type(exc).__name__}: {exc}; {self._headroom_line()}")
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

    def _configure_failed(self, reason: str) -> TransitionCallbackReturn:
        self._problem = f"configure failed: {reason}"
        self.get_logger().error(self._problem)
        return TransitionCallbackReturn.FAILURE

    @staticmethod
    def _headroom_line() -> str:
        rooms = [room.describe() for room in headroom() if room is not None]
        return "memory: " + ("; ".join(rooms) if rooms else "no limit known")

    def _startup_problem(self, estimate, values: dict[str, Any]) -> str | None:
        """Why the model of ``estimate`` cannot be loaded and run in the memory this process may still use."""
        if estimate is None:
            return None
        config = ProcessingConfig.from_parameters(values)
        pixels = worst_case_pixels(config, warmup_size(values["warmup_size"]))
        device_free = None
        if getattr(estimate.device, "type", "") == "cuda":
            import torch

            device_free = int(torch.cuda.mem_get_info(estimate.device)[0])
        resident, address_space = headroom()
        return startup_problem(estimate, pixels, len(self._streams), resident, address_space, device_free)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            return self._activate(state)
        except Exception as exc:  # rclpy would swallow it and go to unconfigured without a word
            self._stop_serving()
            self._problem = f"activate failed: {type(exc).__name__}: {exc}"
            self.get_logger().error(self._problem)
            return TransitionCallbackReturn.FAILURE

    def _activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._wait_for_pass("activate")  # one model pass at a time
        depth = self.get_parameter("input_depth").value
        reliability = self.get_parameter("input_reliability").value

        def subscribe(msgtype, topic, callback, history=depth):
            subscription = InputSubscription(self, message_class(msgtype), topic, callback, history, reliability)
            self._input_subs.append(subscription)
            return subscription

        # The image keeps input_depth (1: newest frame only); its companions keep more, so that a camera info sent
        # just before its image is still there when the executor gets to it on a busy machine.
        companions = max(depth, CAMERA_INFO_DEPTH)
        compressed = self.get_parameter("input_transport").value == "compressed"
        for stream in self._streams.values():
            image_topic = "image/compressed" if compressed else "image"
            stream.image_sub = subscribe(COMPRESSED_IMAGE if compressed else IMAGE, stream.prefix + image_topic,
                                         lambda m, s=stream: self._on_image(s, m, compressed))
            stream.subscriptions = {image_topic: stream.image_sub, "camera_info": subscribe(
                CAMERA_INFO, stream.prefix + "camera_info", lambda m, s=stream: self._on_camera_info(s, m),
                companions)}
        # The scale sources' inputs: always subscribed (cheap when silent), so scale_mode can switch live.
        measurements = max(depth, MEASUREMENT_DEPTH)
        for name, item in measurement_inputs().items():
            msgtype = MEASUREMENT_TYPES[item.kind]
            history = companions if item.kind == "camera_info" else measurements
            if item.shared:  # one topic (a LiDAR) serves every camera, each pairing it with its own frames
                shared = subscribe(msgtype, name, lambda m, n=name: self._on_measurement(list(self._streams.values()),
                                                                                         n, m), history)
                for stream in self._streams.values():
                    stream.subscriptions[name] = shared
            else:
                for stream in self._streams.values():
                    stream.subscriptions[name] = subscribe(msgtype, stream.prefix + name,
                                                           lambda m, s=stream, n=name: self._on_measurement([s], n, m),
                                                           history)
        self._refresh_inputs()
        self._activated_at = time.monotonic()
        if reliability == "auto":
            self._qos_timer = self.create_timer(0.5, self._refresh_inputs, clock=self._steady)
        self._stop.clear()
        worker = threading.Thread(target=self._run_worker, name="depthmaster-inference", daemon=True)
        try:
            worker.start()
        except RuntimeError as exc:  # "can't start new thread": out of memory or of threads
            self._stop_serving()
            self._problem = f"activate failed: cannot start the inference thread ({exc}); {self._headroom_line()}"
            self.get_logger().error(self._problem)
            return TransitionCallbackReturn.FAILURE
        self._worker = worker
        self._problem = ""
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_serving()
        running = self._pass
        if running is not None:
            self.get_logger().info(f"deactivated during a model pass ({time.monotonic() - running.started:.0f} s so "
                                   "far): it ends in the background and its outputs are dropped")
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
        a large processing_res), or a configure still loading the model, is not waited for beyond a few seconds:
        False then, and the process must end without tearing down what that thread still uses (``os._exit``)."""
        if not self._stop_serving(join_timeout=3.0) or self._configuring_since is not None:
            return False
        self._release()
        return True

    def _stop_serving(self, join_timeout: float | None = 0.0) -> bool:
        """Unsubscribe and tell the inference thread to stop; False if it is still in a model pass after
        ``join_timeout`` seconds (0: do not wait; None: wait for it)."""
        self._stop.set()
        worker = self._worker
        if worker is not None and join_timeout != 0.0:
            worker.join(join_timeout)
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
        return worker is None or not worker.is_alive()

    def _wait_for_pass(self, transition: str) -> None:
        """Wait for the inference thread of an earlier activation to end (it finishes a model pass that was
        running when the node was deactivated), saying so."""
        worker = self._worker
        if worker is None or not worker.is_alive():
            return
        running = self._pass
        since = f", running for {time.monotonic() - running.started:.0f} s" if running is not None else ""
        self.get_logger().info(f"{transition} waits for the model pass started before the deactivation to end{since}")
        worker.join()
        self.get_logger().info(f"{transition}: that model pass has ended")

    def _release(self) -> None:
        with self._publishing:
            for stream in self._streams.values():
                for publisher in stream.publishers.values():
                    self.destroy_lifecycle_publisher(publisher)
                stream.publishers.clear()
        if self._engine is not None:
            on_cuda = getattr(self._engine.backend.device, "type", "") == "cuda"
            self._engine = None  # a pass still running keeps it until it ends
            if on_cuda:
                import torch

                torch.cuda.empty_cache()

    def autostart(self) -> bool:
        """configure + activate; False (with the reason logged and on /diagnostics) if configure fails."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def schedule_autostart(self, then: Callable[[], None] | None = None) -> None:
        """Run :meth:`autostart` (when the ``autostart`` parameter is set) on a thread of its own, so that the
        node's services answer while the model loads (once the executor spins); a failure is logged with what to
        do. ``then``: called on that thread afterwards (the start's second look for a node of the same name)."""
        def run():
            if self.get_parameter("autostart").value and not self.autostart():
                from .user_commands import lifecycle_command

                self.get_logger().error(
                    "autostart failed; the node stays up (unconfigured) and reports why on /diagnostics. Fix the "
                    "cause (the model parameters such as checkpoint can be set while unconfigured) and configure "
                    "again: " + lifecycle_command(self.get_fully_qualified_name(), "configure"))
            if then is not None:
                then()

        threading.Thread(target=run, name="depthmaster-autostart", daemon=True).start()

    def _transition_off_executor(self) -> None:
        """Make the change_state service run each transition on a thread and wait for it without holding the
        executor: the executor goes on with every other callback meanwhile."""
        service = self._service_change_state
        transition = service.callback

        async def change_state(request, response):
            done = Future()

            def run():
                try:
                    done.set_result(transition(request, response))
                except BaseException as exc:  # handed to the service call's task
                    done.set_exception(exc)
                executor = self.executor
                if executor is not None:
                    executor.wake()  # resume the waiting call now, not at the next message

            threading.Thread(target=run, name="depthmaster-transition", daemon=True).start()
            return await done

        service.callback = change_state

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

    # ------------------------------------------------------------------ callbacks (executor threads)
    def _on_image(self, stream: CameraStream, msg, compressed: bool) -> None:
        timing = FrameTiming.starting_now(stream.name)
        stream.stats.received()
        if not stream.wanted_topics():
            stream.stats.ignored()
            return
        stamp = stamp_to_ns(msg.header.stamp)
        timing.stamp_ns = stamp
        stream.pairing.hold(stamp)  # its camera info and measurements stay until it is paired or dropped
        self._slots.put(stream.name, Frame(msg, compressed, stamp, timing))

    def _dropped(self, name: str, frame: Frame) -> None:
        """A waiting frame replaced by a newer one: the node was busy (called by the slots, under their lock)."""
        stream = self._streams[name]
        stream.stats.dropped()
        stream.pairing.release(frame.stamp_ns)

    def _on_camera_info(self, stream: CameraStream, msg) -> None:
        self._reject(stream, "camera_info", stream.pairing.add_camera_info(msg))

    def _on_measurement(self, streams: list[CameraStream], name: str, msg) -> None:
        for stream in streams:
            self._reject(stream, "metric_source", stream.pairing.add(name, msg))

    def _reject(self, stream: CameraStream, kind: str, reason: str | None) -> None:
        if reason:
            stream.stats.problem(kind, reason)
            self._log_throttled(stream, kind, reason)

    def _log_throttled(self, stream: CameraStream, kind: str, reason: str, level: str = "warning",
                       period: float = 5.0) -> None:
        """At most one line per camera and kind of problem every ``period`` s, saying how many were not shown.
        ``level``: info, warning or error."""
        now = time.monotonic()
        last, skipped = self._logged.get((stream.name, kind), (-float("inf"), 0))
        if now - last < period:
            self._logged[(stream.name, kind)] = (last, skipped + 1)
            return
        self._logged[(stream.name, kind)] = (now, 0)
        line = f"{stream.prefix}{reason}" + (f" ({skipped} more like it since the last report)" if skipped else "")
        logger = self.get_logger()
        if level == "info":  # one call per severity: rclpy's logger refuses two severities from one line
            logger.info(line)
        elif level == "error":
            logger.error(line)
        else:
            logger.warning(line)

    # ------------------------------------------------------------------ inference thread
    def _run_worker(self) -> None:
        several = len(self._streams) > 1
        while not self._stop.is_set():
            gather = self.get_parameter("batch_wait").value if several else 0.0
            frames = self._slots.take(0.1, self._streams, gather)
            if frames:
                self._serve(frames)
                frames = None

    def _failed(self, stream: CameraStream, reason: str) -> None:
        """Never let one frame kill the thread (or the other cameras' frames); report it."""
        stream.stats.problem("error", reason)
        self._log_throttled(stream, "error", f"frame failed: {reason}", "error")

    def _serve(self, frames: dict[str, Frame]) -> None:
        """The frames taken together: decoded within their memory plans, the engine's model passes (one per image
        size), then each frame paired with its companions (which had the pass's time to arrive), finished by its
        stream's stages and published, each camera as soon as its outputs are made."""
        decoded = []
        taken = time.monotonic_ns()
        for name, frame in frames.items():
            frame.timing.mark("taken", taken)
            stream = self._streams[name]
            try:
                item = self._decode(stream, frame)
            except Exception as exc:
                self._failed(stream, f"{type(exc).__name__}: {exc}")
                item = None
            if item is None:
                stream.pairing.release(frame.stamp_ns)
            else:
                decoded.append(item)
        frames.clear()  # the messages (a raw image can be large) are not needed past decoding
        largest = max((item.memory for item in decoded), default=0)
        engine = self._engine
        try:
            if not decoded or engine is None:
                return
            self._pass = ModelPass(time.monotonic(), {item.stream.name: f"{item.job.rgb.shape[1]}x"
                                                      f"{item.job.rgb.shape[0]}" for item in decoded})
            model_start = time.monotonic_ns()
            try:
                relatives = engine.infer([item.job for item in decoded])
            finally:
                self._pass = None
            model_done = time.monotonic_ns()
            for item, relative in zip(decoded, relatives):
                if self._stop.is_set():  # deactivated or shutting down during the model pass
                    return
                stream, timing = item.stream, item.timing
                timing.mark("model_start", model_start)
                timing.mark("model_done", model_done)
                timing.mark("finishing")
                try:
                    job = self._pair(item, wait=not isinstance(relative, BaseException))
                    timing.mark("paired")
                    products = engine.finish(job, relative)
                    timing.mark("finished")
                except Exception as exc:
                    self._failed(stream, f"{type(exc).__name__}: {exc}")
                    continue
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
            relatives = products = None
        finally:
            for item in decoded:
                if not item.paired:
                    item.stream.pairing.release(item.job.stamp_ns)
            decoded.clear()
            usual = statistics.median(self._frame_bytes) if self._frame_bytes else 0
            if largest:
                self._frame_bytes.append(largest)
            if largest > max(TRIM_AFTER_BYTES, 2 * usual):
                release_freed_memory()  # see host_memory.release_freed_memory: why

    def _decode(self, stream: CameraStream, frame: Frame) -> "Decoded | None":
        """The frame decoded within its memory plan, as a job for the model pass (its companions come after the
        pass); None if nobody wants it or it is refused."""
        msg, frame.msg = frame.msg, None
        topics = stream.wanted_topics()
        if not topics:
            stream.stats.ignored()
            return None
        config = stream.config
        outputs = needed_outputs(topics)
        activation = getattr(self._engine.backend, "activation_bytes", None) if self._engine else None
        try:
            rgb, plan = decode_frame(msg, frame.compressed, config, outputs, activation)
        except InputError as exc:
            self._reject(stream, "image", f"image rejected: {exc}")
            return None
        frame.timing.mark("decoded")
        if plan.reduced:
            reason = plan.describe(config.max_frame_memory)
            stream.stats.problem("reduced", reason)
            self._log_throttled(stream, "reduced", reason)
        job = FrameJob(stream=stream.name, stamp_ns=frame.stamp_ns, rgb=rgb, config=plan.applied_to(config),
                       outputs=outputs)
        return Decoded(stream, job, msg.header, topics, plan.declared, plan.memory.total, frame.timing)

    def _pair(self, item: "Decoded", wait: bool = True):
        """The frame's full job: its camera info and measurements, waited for (if ``wait``) when they are due with
        its exact stamp; the frame's hold on them ends here."""
        stream, job = item.stream, item.job
        try:
            if wait:
                stream.pairing.await_companions(job.stamp_ns, get_source(job.config.scale_mode),
                                                job.config.camera_info_tolerance, job.config.metric_source_tolerance,
                                                lambda name: stream.publisher_count(name) > 0)
            full, problems = stream.pairing.job(stream.name, job.stamp_ns, job.rgb, job.config, job.outputs,
                                                context=(item.header, item.topics, item.timing),
                                                frame_id=item.header.frame_id, declared=item.declared,
                                                extrinsics=functools.partial(self._extrinsics.apply,
                                                                             camera_frame=item.header.frame_id))
        finally:
            stream.pairing.release(job.stamp_ns)
            item.paired = True
        for kind, reason in problems:
            self._reject(stream, kind, reason)
        return full

    def _publish(self, stream: CameraStream, products) -> None:
        header, topics, timing = products.context
        stream.record(products, needed_outputs(topics))
        if products.nonfinite_fraction > 0:
            self._log_throttled(stream, "nonfinite", f"{products.nonfinite_fraction:.1%} of the model's output was "
                                "not finite (NaN/Inf): published as NaN (no measurement) in depth, no points there")
        missing = products.metric_missing()
        if missing is not None:  # someone subscribes to depth, points or depth/scale and gets none
            wanted = ", ".join(sorted(name for name in products.missing if name != "relative"))
            self._log_throttled(stream, "metric", f"no {wanted} for this frame: {missing.detail}")
        with self._publishing:
            if self._stop.is_set():
                return
            started = time.monotonic_ns()
            for topic, message in each_output_message(products, header, topics, products.stamp_ns):
                built = time.monotonic_ns()
                stream.publishers[topic].publish(message)  # each one as soon as it is built
                published = time.monotonic_ns()
                timing.output(topic, started, built, published)
                started = published
            message = None
        now = self.get_clock().now().nanoseconds  # 0 with use_sim_time before the first /clock message
        stream.stats.published((now - products.stamp_ns) / 1e9 if now else None, missing is not None)
        if self._frame_timing.get_subscription_count() > 0:
            self._frame_timing.publish(String(data=timing.to_json()))

    # ------------------------------------------------------------------ diagnostics (timer)
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
        stats["model_nonfinite_fraction"] = stream.nonfinite_fraction  # of the last frame served
        if not self.get_clock().now().nanoseconds:
            stats["latency"] = ("unknown: use_sim_time is true and no /clock message has arrived, so the node's "
                                "time is 0 (is the bag played with --clock?)")
        stats.update(self._extrinsics.report(stream.config))
        facts = CameraFacts()
        configuring = self._configuring_since
        if configuring is not None:
            facts.configuring_for = time.monotonic() - configuring
        if summary.lifecycle_state == "active":
            self._pass_facts(stream, facts)
            facts.no_input = self._input_silence(stream, stats)
            if facts.no_input:
                self._log_throttled(stream, "input", facts.no_input, period=LOG_PERIOD_S)
            wanted = stream.wanted_topics()
            facts.idle = not wanted
            metric = stream.metric_state()
            if metric is not None and needed_outputs(wanted) & METRIC_OUTPUTS:
                facts.metric_missing = metric.detail
            if stats["dropped_rate_hz"] > 0:
                self._log_throttled(stream, "busy", f"{stats['input_rate_hz']:.1f} frames/s in, "
                                    f"{stats['output_rate_hz']:.1f} processed, {stats['dropped_rate_hz']:.1f} dropped "
                                    "while the model was busy (newest frame wins)", "info", LOG_PERIOD_S * 2)
        return camera_status(self.get_name(), summary, stream, stats, facts)

    def _pass_facts(self, stream: CameraStream, facts: CameraFacts) -> None:
        """This camera's frame in the running model pass, and a log line while that pass is long."""
        running = self._pass
        if running is None or stream.name not in running.frames:
            return
        facts.busy_for = time.monotonic() - running.started
        engine = self._engine
        device = f" on {engine.backend.device}" if engine is not None else ""
        facts.busy_detail = (f"{running.frames[stream.name]} at processing_res {stream.config.processing_res}"
                             f"{device}")
        if facts.busy_for >= SLOW_PASS_LOG_S:
            self._log_throttled(stream, "slow", f"processing one frame for {facts.busy_for:.0f} s "
                                f"({facts.busy_detail})", "info", LOG_PERIOD_S)

    def _input_silence(self, stream: CameraStream, stats: dict) -> str:
        """Why no image arrives (no publisher, another type, QoS, a camera gone silent), or ''."""
        subscription = stream.image_sub
        if subscription is None or stats["input_rate_hz"] > 0 or self._activated_at is None:
            return ""
        last = stream.stats.last_received
        since = max(last or 0.0, self._activated_at)
        silent_for = time.monotonic() - since
        if silent_for < stream.stats.window:
            return ""
        types = subscription.publisher_types()
        elsewhere = []
        if not any(kind == subscription.type_name for kind in types):  # where may the camera be instead
            own = {publisher.topic_name for s in self._streams.values() for publisher in s.publishers.values()}
            elsewhere = subscription.topics_of_type(own)
        return input_silence(subscription.topic_name, subscription.type_name, types, elsewhere, stats, silent_for,
                             stream.stats.window, starvation_hint(subscription))
