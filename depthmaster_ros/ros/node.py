"""The depthmaster lifecycle node: camera images in; depth, relative depth, a coloured view and point clouds out.

Lifecycle: configure loads the model (and fails with the reason if it cannot) and creates the publishers;
activate subscribes and starts the inference thread; deactivate unsubscribes and stops it; cleanup frees the
model and GPU memory. With ``autostart`` (default) the node configures and activates itself at start-up.

Threads: the executor runs the subscription, parameter, lifecycle and diagnostics callbacks, which only store
the newest frame; one inference thread takes it, runs the processing path and publishes. A frame arriving while
another waits replaces it (counted as dropped). An output nobody subscribes to is not computed, and with no
subscriber at all no inference runs.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from ..parameters import PARAMETERS, PARAMETERS_BY_NAME, check_values, normalize, warmup_size
from ..processing import DepthProcessor, ProcessingConfig
from ..model.device import dtype_name
from .conversions import InputError, decode_image, stamp_to_ns
from .frame_inputs import FrameInputs
from .outputs import OUTPUT_TOPICS, needed_outputs, output_messages
from .diagnostics import PROBLEMS, FrameStats, diagnostic_array
from .latest_frame import LatestFrameSlot

NODE_NAME = "depthmaster"
_PARAMETER_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
                    float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
                    list: ParameterType.PARAMETER_DOUBLE_ARRAY}


def descriptor(spec) -> ParameterDescriptor:
    desc = ParameterDescriptor(name=spec.name, type=_PARAMETER_TYPES[spec.type], description=spec.description,
                               read_only=spec.read_only)
    constraints = []
    if spec.choices:
        constraints.append("one of: " + ", ".join(spec.choices))
    if spec.min_value is not None and spec.max_value is not None:
        if spec.type is int:
            desc.integer_range = [IntegerRange(from_value=int(spec.min_value), to_value=int(spec.max_value), step=1)]
        else:
            desc.floating_point_range = [FloatingPointRange(from_value=float(spec.min_value),
                                                            to_value=float(spec.max_value), step=0.0)]
    elif spec.min_value is not None:
        constraints.append(f">= {spec.min_value}")
    desc.additional_constraints = "; ".join(constraints)
    return desc


@dataclass
class Frame:
    msg: Any
    compressed: bool


class DepthMasterNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        for spec in PARAMETERS:
            self.declare_parameter(spec.name, spec.default, descriptor(spec))
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._config = ProcessingConfig.from_parameters(self._values())

        self._processor: DepthProcessor | None = None
        self._output_pubs: dict[str, Any] = {}
        self._input_subs: list[Any] = []
        self._slot = LatestFrameSlot()
        self._inputs = FrameInputs()
        self._scale_status = ""
        self._last_fit = None
        self._stats = FrameStats()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._problem = ""  # why the node cannot serve (configure failure), for diagnostics
        self._metric_note = ""  # why metric outputs are missing, if they are
        self._idle = True

        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.get_parameter("diagnostics_period").value, self._publish_diagnostics)

    # ------------------------------------------------------------------ parameters
    def _values(self) -> dict[str, Any]:
        return {spec.name: normalize(spec.name, self.get_parameter(spec.name).value) for spec in PARAMETERS}

    def _validate_parameters(self, parameters) -> SetParametersResult:
        changes = {p.name: normalize(p.name, p.value) if PARAMETERS_BY_NAME[p.name].type is list else p.value
                   for p in parameters if p.name in PARAMETERS_BY_NAME}
        problems = check_values({**self._values(), **changes}) if changes else []
        return SetParametersResult(successful=not problems, reason="; ".join(problems))

    def _apply_parameters(self, parameters) -> None:
        self._config = ProcessingConfig.from_parameters(self._values())

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        import torch

        from ..model import CheckpointError, DepthMasterPipeline

        values = self._values()
        if values["cpu_threads"] > 0:
            torch.set_num_threads(values["cpu_threads"])
        try:
            pipeline = DepthMasterPipeline.from_pretrained(
                values["checkpoint"], device=values["device"], dtype=values["dtype"],
                allow_download=values["allow_download"], compile=values["compile"],
                cuda_graphs=values["cuda_graphs"],
            )
            size = warmup_size(values["warmup_size"])
            if size is not None:
                self.get_logger().info(f"warming up the model at {size[0]}x{size[1]} ...")
                pipeline.warmup(size[1], size[0], processing_res=values["processing_res"])
        except (CheckpointError, ValueError, RuntimeError, OSError) as exc:
            self._problem = f"configure failed: {exc}"
            self.get_logger().error(self._problem)
            return TransitionCallbackReturn.FAILURE
        self._processor = DepthProcessor(pipeline, self._config)
        self._problem = ""
        self.get_logger().info(f"loaded {pipeline.describe()}")
        if pipeline.random_weights:
            self.get_logger().warning("this checkpoint has RANDOM weights: outputs are meaningless (smoke test only)")
        qos = self._qos("output")
        for topic, (msg_type, _) in OUTPUT_TOPICS.items():
            self._output_pubs[topic] = self.create_lifecycle_publisher(msg_type, topic, qos)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        qos = self._qos("input")
        if self.get_parameter("input_transport").value == "compressed":
            self._input_subs.append(self.create_subscription(
                CompressedImage, "image/compressed", lambda m: self._on_image(m, True), qos))
        else:
            self._input_subs.append(self.create_subscription(Image, "image", lambda m: self._on_image(m, False), qos))
        self._camera_info_sub = self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos)
        self._sparse_depth_sub = self.create_subscription(Image, "sparse_depth", self._inputs.add_sparse_depth, qos)
        self._input_subs += [self._camera_info_sub, self._sparse_depth_sub]
        # The other metric sources: always subscribed (cheap when silent), so scale_mode can switch live.
        self._input_subs += [
            self.create_subscription(CameraInfo, "sparse_depth/camera_info",
                                     lambda m: self._on_camera_info(m, sparse=True), qos),
            self.create_subscription(PointCloud2, "lidar_points", self._inputs.add_lidar, qos),
        ]
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
        self._stop_serving()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_serving(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        for subscription in self._input_subs:
            self.destroy_subscription(subscription)
        self._input_subs.clear()
        self._slot.clear()
        self._inputs.clear()

    def _release(self) -> None:
        for publisher in self._output_pubs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._output_pubs.clear()
        if self._processor is not None:
            on_cuda = self._processor.pipeline.device.type == "cuda"
            self._processor = None
            if on_cuda:
                import torch

                torch.cuda.empty_cache()

    def autostart(self) -> bool:
        """configure + activate; False (with the reason logged and on /diagnostics) if configure fails."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    @property
    def lifecycle_state(self) -> str:
        return self._state_machine.current_state[1]

    def _qos(self, which: str) -> QoSProfile:
        reliability = self.get_parameter(f"{which}_reliability").value
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=self.get_parameter(f"{which}_depth").value,
            reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT,
        )

    # ------------------------------------------------------------------ callbacks (executor thread)
    def _wanted_topics(self) -> set[str]:
        return {topic for topic, pub in self._output_pubs.items() if pub.get_subscription_count() > 0}

    def _on_image(self, msg, compressed: bool) -> None:
        self._stats.received()
        self._idle = not self._wanted_topics()
        if not self._idle:
            self._slot.put(Frame(msg, compressed))

    def _on_camera_info(self, msg: CameraInfo, sparse: bool = False) -> None:
        rejection = self._inputs.add_camera_info(msg, sparse)
        if rejection:
            self._stats.problem("camera_info", rejection)
            self.get_logger().warning(rejection, throttle_duration_sec=5.0)

    # ------------------------------------------------------------------ inference thread
    def _run_worker(self) -> None:
        while not self._stop.is_set():
            frame = self._slot.take(timeout=0.1)
            if frame is None:
                continue
            try:
                self._serve(frame)
            except Exception as exc:  # never let one frame kill the thread; report it
                self._stats.problem("error", f"{type(exc).__name__}: {exc}")
                self.get_logger().error(f"frame failed: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0)

    def _serve(self, frame: Frame) -> None:
        msg, header = frame.msg, frame.msg.header
        try:
            rgb = decode_image(msg, frame.compressed)
        except InputError as exc:
            self._stats.problem("image", str(exc))
            self.get_logger().warning(f"image rejected: {exc}", throttle_duration_sec=5.0)
            return
        topics = self._wanted_topics()
        if not topics:
            return
        config = self._config
        stamp_ns = stamp_to_ns(header.stamp)
        camera_tolerance = self.get_parameter("camera_info_tolerance").value
        source_tolerance = self.get_parameter("metric_source_tolerance").value
        self._inputs.await_companions(stamp_ns, config.scale_mode, camera_tolerance, source_tolerance,
                                      self._camera_info_sub.get_publisher_count() > 0,
                                      self._sparse_depth_sub.get_publisher_count() > 0)
        camera, camera_note, rejection = self._inputs.camera_for(stamp_ns, rgb.shape, camera_tolerance)
        if rejection:
            self._stats.problem("camera_info", rejection)
        hints, rejection = self._inputs.hints_for(config.scale_mode, stamp_ns, source_tolerance)
        if rejection:
            self._stats.problem("metric_source", rejection)

        outputs = needed_outputs(topics)
        products = self._processor.process(rgb, camera, outputs, config, hints, stamp_ns / 1e9)
        if products.scale_status:
            self._scale_status, self._last_fit = products.scale_status, products.scale
        notes = products.notes
        if camera is None and camera_note and outputs & {"depth", "points"}:
            notes = [camera_note] + [n for n in notes if "camera info" not in n]
        self._metric_note = "; ".join(notes)
        for topic, message in output_messages(products, header, topics, stamp_ns):
            self._output_pubs[topic].publish(message)
        self._stats.published((self.get_clock().now().nanoseconds - stamp_ns) / 1e9)

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        try:
            self._diagnostics.publish(self._diagnostic_report())
        except Exception as exc:  # a report must never take the executor (and the node's services) down
            self.get_logger().error(f"diagnostics failed: {type(exc).__name__}: {exc}", throttle_duration_sec=10.0)

    def _diagnostic_report(self):
        stats = self._stats.snapshot()
        stats["frames_dropped"] = self._slot.dropped
        recent_problem = stats.pop("recent_problem")
        state = self.lifecycle_state
        config = self._config
        values = {"lifecycle_state": state, "checkpoint": self.get_parameter("checkpoint").value}
        pipeline = self._processor.pipeline if self._processor is not None else None
        if pipeline is not None:
            values.update(model=pipeline.describe(), device=str(pipeline.device), dtype=dtype_name(pipeline.dtype))
            if pipeline.device.type == "cuda":
                import torch

                values["gpu_memory_allocated_mb"] = torch.cuda.memory_allocated(pipeline.device) / 2**20
                values["gpu_memory_reserved_mb"] = torch.cuda.memory_reserved(pipeline.device) / 2**20
        values.update(processing_res=config.processing_res, scale_mode=config.scale_mode,
                      scale_state=self._scale_status or "-", metric_state=self._metric_note or "ok")
        fit = self._last_fit
        if fit is not None:
            values.update(scale=fit.scale, shift=fit.shift, scale_inlier_ratio=fit.inlier_ratio,
                          scale_residual_rms=fit.residual_rms, scale_pairs=fit.pairs, scale_age_s=fit.age)
        values.update(stats)

        if self._problem:
            level, message = DiagnosticStatus.ERROR, self._problem
        elif state != "active":
            level, message = DiagnosticStatus.WARN, f"node is {state}, not serving"
        elif recent_problem:
            level = DiagnosticStatus.WARN
            message = "; ".join(filter(None, (stats[last] for _, last in PROBLEMS.values())))
        elif self._idle and not stats["output_rate_hz"]:
            level, message = DiagnosticStatus.OK, "idle: no subscriber to any output"
        elif self._metric_note:
            level, message = DiagnosticStatus.WARN, self._metric_note
        else:
            level, message = DiagnosticStatus.OK, "serving"
        return diagnostic_array(self.get_clock().now().to_msg(), f"{self.get_name()}: depth",
                                values.get("device", "none"), level, message, values)


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args if args is not None else sys.argv)
    node = DepthMasterNode()
    try:
        if node.get_parameter("autostart").value and not node.autostart():
            node.get_logger().error("autostart failed; the node stays up (unconfigured) and reports why on "
                                    "/diagnostics. Fix the parameters and trigger configure again.")
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._stop_serving()
        node._release()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
