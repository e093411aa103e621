"""The depthmaster lifecycle node: camera images in; depth, relative depth, a coloured view and point clouds out.

Lifecycle: configure loads the model (and fails with the reason if it cannot) and creates the publishers;
activate subscribes and starts the inference thread; deactivate unsubscribes and stops it; cleanup frees the
model and GPU memory. With ``autostart`` (default) the node configures and activates itself at start-up.

Threads: the executor runs the subscription, parameter, lifecycle and diagnostics callbacks, which only store
the newest frame of each camera; one inference thread takes the waiting frames, runs the processing path and
publishes. A frame arriving while another of its camera waits replaces it (counted as dropped). An output nobody
subscribes to is not computed, and with no subscriber at all no inference runs.

Several cameras (``cameras: [front, rear]``): each camera has its own topics under its name, its own pairing
caches, scale tracker, per-camera parameters and diagnostics status; frames of the same size taken together
run through the model as one batch.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from ..parameters import PARAMETERS, PARAMETERS_BY_NAME, PER_CAMERA, camera_values, check_values, normalize, \
    spec_for, warmup_size
from ..processing import DepthProcessor, ProcessingConfig, infer
from ..model.device import dtype_name
from .conversions import InputError, decode_image, stamp_to_ns
from .frame_inputs import FrameInputs
from .input_subscription import InputSubscription, qos_profile
from .outputs import OUTPUT_TOPICS, needed_outputs, output_messages
from .diagnostics import PROBLEMS, FrameStats, diagnostic_array, diagnostic_status
from .latest_frame import LatestFrames

NODE_NAME = "depthmaster"
_PARAMETER_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
                    float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
                    list: ParameterType.PARAMETER_DOUBLE_ARRAY}


def descriptor(spec, name: str | None = None) -> ParameterDescriptor:
    kind = ParameterType.PARAMETER_STRING_ARRAY if spec.item_type is str else _PARAMETER_TYPES[spec.type]
    desc = ParameterDescriptor(name=name or spec.name, type=kind, description=spec.description,
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


class CameraStream:
    """One camera: its topics (under ``name``/ when the node serves several), pairing caches, processor (with
    its own scale tracker), config, output publishers and statistics."""

    def __init__(self, name: str):
        self.name = name
        self.prefix = f"{name}/" if name else ""
        self.inputs = FrameInputs()
        self.stats = FrameStats()
        self.config: ProcessingConfig | None = None
        self.processor: DepthProcessor | None = None
        self.publishers: dict[str, Any] = {}  # output topic (without the prefix) -> lifecycle publisher
        self.image_sub = self.camera_info_sub = self.sparse_depth_sub = None  # InputSubscriptions while active
        self.scale_status = ""
        self.last_fit = None
        self.metric_note = ""  # why metric outputs are missing, if they are
        self.idle = True

    def wanted_topics(self) -> set[str]:
        return {topic for topic, pub in self.publishers.items() if pub.get_subscription_count() > 0}


@dataclass
class Job:
    """A decoded frame with everything paired to it, waiting for its model pass."""

    stream: CameraStream
    header: Any
    rgb: Any
    camera: Any
    camera_note: str
    hints: Any
    topics: set
    config: ProcessingConfig


class DepthMasterNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        for spec in PARAMETERS:
            if spec.item_type is str:  # an empty default would make rclpy guess a byte array
                self.declare_parameter(spec.name, Parameter.Type.STRING_ARRAY, descriptor(spec))
            else:
                self.declare_parameter(spec.name, spec.default, descriptor(spec))
        self._cameras = list(self.get_parameter_or("cameras", Parameter("cameras", value=[])).value or [])
        problems = check_values({"cameras": self._cameras})
        if problems:
            raise ValueError("; ".join(problems))
        for camera in self._cameras:
            for name in PER_CAMERA:
                spec = PARAMETERS_BY_NAME[name]
                self.declare_parameter(f"{camera}.{name}", self.get_parameter(name).value,
                                       descriptor(spec, f"{camera}.{name}"))
        self._streams = {name: CameraStream(name) for name in (self._cameras or [""])}
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._apply_parameters([])

        self._pipeline = None
        self._input_subs: list[InputSubscription] = []
        self._qos_timer = None
        self._activated_at = None
        self._slots = LatestFrames()
        self._passes = self._passed_frames = 0  # model passes and the frames they carried
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._problem = ""  # why the node cannot serve (configure failure), for diagnostics

        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.get_parameter("diagnostics_period").value, self._publish_diagnostics)

    # ------------------------------------------------------------------ parameters
    def _values(self) -> dict[str, Any]:
        values = {spec.name: normalize(spec.name, self.get_parameter(spec.name).value)
                  for spec in PARAMETERS if spec.item_type is not str}
        values["cameras"] = list(self._cameras)
        for camera in self._cameras:
            for name in PER_CAMERA:
                key = f"{camera}.{name}"
                values[key] = normalize(key, self.get_parameter(key).value)
        return values

    def _validate_parameters(self, parameters) -> SetParametersResult:
        changes = {}
        for p in parameters:
            spec = spec_for(p.name, self._cameras)
            if spec is not None:
                changes[p.name] = normalize(p.name, p.value) if spec.type is list else p.value
        problems = check_values({**self._values(), **changes}) if changes else []
        return SetParametersResult(successful=not problems, reason="; ".join(problems))

    def _apply_parameters(self, parameters) -> None:
        values = self._values()
        for stream in self._streams.values():
            stream.config = ProcessingConfig.from_parameters(camera_values(values, stream.name))

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
                batch = len(self._streams)
                self.get_logger().info(f"warming up the model at {size[0]}x{size[1]}, batch {batch} ...")
                pipeline.warmup(size[1], size[0], batch=batch, processing_res=values["processing_res"])
        except (CheckpointError, ValueError, RuntimeError, OSError) as exc:
            self._problem = f"configure failed: {exc}"
            self.get_logger().error(self._problem)
            return TransitionCallbackReturn.FAILURE
        self._pipeline = pipeline
        self._problem = ""
        self.get_logger().info(f"loaded {pipeline.describe()}"
                               + (f" for cameras {', '.join(self._cameras)}" if self._cameras else ""))
        if pipeline.random_weights:
            self.get_logger().warning("this checkpoint has RANDOM weights: outputs are meaningless (smoke test only)")
        qos = qos_profile(values["output_reliability"], values["output_depth"])
        for stream in self._streams.values():
            stream.processor = DepthProcessor(pipeline, stream.config)
            for topic, (msg_type, _) in OUTPUT_TOPICS.items():
                stream.publishers[topic] = self.create_lifecycle_publisher(msg_type, stream.prefix + topic, qos)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        depth = self.get_parameter("input_depth").value
        reliability = self.get_parameter("input_reliability").value

        def subscribe(msg_type, topic, callback):
            subscription = InputSubscription(self, msg_type, topic, callback, depth, reliability)
            self._input_subs.append(subscription)
            return subscription

        compressed = self.get_parameter("input_transport").value == "compressed"
        for stream in self._streams.values():
            prefix = stream.prefix
            if compressed:
                stream.image_sub = subscribe(CompressedImage, prefix + "image/compressed",
                                             lambda m, s=stream: self._on_image(s, m, True))
            else:
                stream.image_sub = subscribe(Image, prefix + "image", lambda m, s=stream: self._on_image(s, m, False))
            stream.camera_info_sub = subscribe(CameraInfo, prefix + "camera_info",
                                               lambda m, s=stream: self._on_camera_info(s, m))
            # The metric sources: always subscribed (cheap when silent), so scale_mode can switch live.
            stream.sparse_depth_sub = subscribe(Image, prefix + "sparse_depth", stream.inputs.add_sparse_depth)
            subscribe(CameraInfo, prefix + "sparse_depth/camera_info",
                      lambda m, s=stream: self._on_camera_info(s, m, sparse=True))
        # One LiDAR serves every camera (each projects it with its own lidar_to_camera).
        subscribe(PointCloud2, "lidar_points", self._on_lidar)
        self._refresh_inputs()
        self._activated_at = time.monotonic()
        if reliability == "auto":
            self._qos_timer = self.create_timer(0.5, self._refresh_inputs)
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
        if self._qos_timer is not None:
            self.destroy_timer(self._qos_timer)
            self._qos_timer = None
        for subscription in self._input_subs:
            subscription.destroy()
        self._input_subs.clear()
        self._slots.clear()
        for stream in self._streams.values():
            stream.inputs.clear()
            stream.image_sub = stream.camera_info_sub = stream.sparse_depth_sub = None

    def _release(self) -> None:
        for stream in self._streams.values():
            for publisher in stream.publishers.values():
                self.destroy_lifecycle_publisher(publisher)
            stream.publishers.clear()
            stream.processor = None
        if self._pipeline is not None:
            on_cuda = self._pipeline.device.type == "cuda"
            self._pipeline = None
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
        stream.stats.received()
        stream.idle = not stream.wanted_topics()
        if not stream.idle:
            self._slots.put(stream.name, Frame(msg, compressed))

    def _on_camera_info(self, stream: CameraStream, msg: CameraInfo, sparse: bool = False) -> None:
        rejection = stream.inputs.add_camera_info(msg, sparse)
        if rejection:
            stream.stats.problem("camera_info", rejection)
            self.get_logger().warning(f"{stream.prefix}{rejection}", throttle_duration_sec=5.0)

    def _on_lidar(self, msg: PointCloud2) -> None:
        for stream in self._streams.values():
            stream.inputs.add_lidar(msg)

    # ------------------------------------------------------------------ inference thread
    def _run_worker(self) -> None:
        several = len(self._streams) > 1
        while not self._stop.is_set():
            gather = self.get_parameter("batch_wait").value if several else 0.0
            frames = self._slots.take(0.1, self._streams, gather)
            if frames:
                self._serve({self._streams[name]: frame for name, frame in frames.items()})

    def _failed(self, stream: CameraStream, exc: Exception) -> None:
        """Never let one frame kill the thread (or the other cameras' frames); report it."""
        stream.stats.problem("error", f"{type(exc).__name__}: {exc}")
        self.get_logger().error(f"{stream.prefix}frame failed: {type(exc).__name__}: {exc}",
                                throttle_duration_sec=5.0)

    def _serve(self, frames: dict[CameraStream, Frame]) -> None:
        """The frames taken together: each paired with its companions, then one model pass per image size."""
        groups: dict[tuple, list[Job]] = defaultdict(list)
        for stream, frame in frames.items():
            try:
                job = self._prepare(stream, frame)
            except Exception as exc:
                self._failed(stream, exc)
                continue
            if job is not None:
                groups[job.rgb.shape].append(job)
        for jobs in groups.values():
            try:
                relatives = self._infer(jobs)
            except Exception as exc:
                for job in jobs:
                    self._failed(job.stream, exc)
                continue
            for job, relative in zip(jobs, relatives):
                try:
                    self._finish(job, relative)
                except Exception as exc:
                    self._failed(job.stream, exc)

    def _prepare(self, stream: CameraStream, frame: Frame) -> Job | None:
        msg, header = frame.msg, frame.msg.header
        try:
            rgb = decode_image(msg, frame.compressed)
        except InputError as exc:
            stream.stats.problem("image", str(exc))
            self.get_logger().warning(f"{stream.prefix}image rejected: {exc}", throttle_duration_sec=5.0)
            return None
        topics = stream.wanted_topics()
        if not topics:
            return None
        config = stream.config
        stamp_ns = stamp_to_ns(header.stamp)
        camera_tolerance = self.get_parameter("camera_info_tolerance").value
        source_tolerance = self.get_parameter("metric_source_tolerance").value
        stream.inputs.await_companions(stamp_ns, config.scale_mode, camera_tolerance, source_tolerance,
                                       stream.camera_info_sub.publisher_count() > 0,
                                       stream.sparse_depth_sub.publisher_count() > 0)
        camera, camera_note, rejection = stream.inputs.camera_for(stamp_ns, rgb.shape, camera_tolerance)
        if rejection:
            stream.stats.problem("camera_info", rejection)
        hints, rejection = stream.inputs.hints_for(config.scale_mode, stamp_ns, source_tolerance)
        if rejection:
            stream.stats.problem("metric_source", rejection)
        return Job(stream, header, rgb, camera, camera_note, hints, topics, config)

    def _infer(self, jobs: list[Job]) -> list:
        """One model pass over same-size frames (at the first frame's processing_res: the parameter is shared).
        A compiled model runs every pass at the camera count (padding with copies of the last frame), so one
        static shape serves every pass: no recompilation when fewer cameras deliver in time."""
        images = [job.rgb for job in jobs]
        count = len(images)
        if self._pipeline.compiled and len(self._streams) > count:
            images = images + [images[-1]] * (len(self._streams) - count)
        relatives = infer(self._pipeline, images, jobs[0].config.processing_res)[:count]
        self._passes += 1
        self._passed_frames += count
        return relatives

    def _finish(self, job: Job, relative) -> None:
        stream, header = job.stream, job.header
        stamp_ns = stamp_to_ns(header.stamp)
        outputs = needed_outputs(job.topics)
        products = stream.processor.postprocess(job.rgb, relative, job.camera, outputs, job.config, job.hints,
                                                stamp_ns / 1e9)
        if products.scale_status:
            stream.scale_status, stream.last_fit = products.scale_status, products.scale
        notes = products.notes
        if job.camera is None and job.camera_note and outputs & {"depth", "points"}:
            notes = [job.camera_note] + [n for n in notes if "camera info" not in n]
        stream.metric_note = "; ".join(notes)
        for topic, message in output_messages(products, header, job.topics, stamp_ns):
            stream.publishers[topic].publish(message)
        stream.stats.published((self.get_clock().now().nanoseconds - stamp_ns) / 1e9)

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        try:
            self._diagnostics.publish(self._diagnostic_report())
        except Exception as exc:  # a report must never take the executor (and the node's services) down
            self.get_logger().error(f"diagnostics failed: {type(exc).__name__}: {exc}", throttle_duration_sec=10.0)

    def _diagnostic_report(self):
        statuses = [self._camera_status(stream) for stream in self._streams.values()]
        return diagnostic_array(self.get_clock().now().to_msg(), statuses)

    def _starved(self, stream: CameraStream, stats: dict) -> str:
        """Why no image arrives although the topic has publishers (the usual 'no output' puzzle), or ''."""
        subscription = stream.image_sub
        if subscription is None or stats["input_rate_hz"] > 0:
            return ""
        window = stream.stats.window
        if time.monotonic() - self._activated_at < window:
            return ""
        publishers = subscription.publisher_count()
        if not publishers:
            return ""
        message = f"{publishers} publisher(s) on {subscription.topic_name} but no image for {window:.0f} s"
        if subscription.current == "best_effort":
            message += ("; subscribed best-effort: Fast DDS drops best-effort messages over 0.5 MB between "
                        "processes (ros2/rmw_fastrtps#739): make the camera publish reliable, or start it with "
                        "FASTDDS_DEFAULT_PROFILES_FILE=<share>/depthmaster_ros/config/fastdds_large_data.xml")
        return message

    def _camera_status(self, stream: CameraStream):
        stats = stream.stats.snapshot()
        stats["frames_dropped"] = self._slots.dropped[stream.name]
        recent_problem = stats.pop("recent_problem")
        state = self.lifecycle_state
        config = stream.config
        values = {"lifecycle_state": state, "checkpoint": self.get_parameter("checkpoint").value}
        if stream.name:
            values["camera"] = stream.name
        pipeline = self._pipeline
        if pipeline is not None:
            values.update(model=pipeline.describe(), device=str(pipeline.device), dtype=dtype_name(pipeline.dtype))
            if pipeline.device.type == "cuda":
                import torch

                values["gpu_memory_allocated_mb"] = torch.cuda.memory_allocated(pipeline.device) / 2**20
                values["gpu_memory_reserved_mb"] = torch.cuda.memory_reserved(pipeline.device) / 2**20
        if self._passes:
            values.update(model_passes=self._passes, frames_per_pass=self._passed_frames / self._passes)
        values.update(processing_res=config.processing_res, scale_mode=config.scale_mode,
                      scale_state=stream.scale_status or "-", metric_state=stream.metric_note or "ok")
        fit = stream.last_fit
        if fit is not None:
            values.update(scale=fit.scale, shift=fit.shift, scale_inlier_ratio=fit.inlier_ratio,
                          scale_residual_rms=fit.residual_rms, scale_pairs=fit.pairs, scale_age_s=fit.age)
        values.update(stats)
        starved = self._starved(stream, stats) if state == "active" else ""
        if stream.image_sub is not None:
            values["input_qos"] = stream.image_sub.describe()

        if self._problem:
            level, message = DiagnosticStatus.ERROR, self._problem
        elif state != "active":
            level, message = DiagnosticStatus.WARN, f"node is {state}, not serving"
        elif starved:
            level, message = DiagnosticStatus.WARN, starved
        elif recent_problem:
            level = DiagnosticStatus.WARN
            message = "; ".join(filter(None, (stats[last] for _, last in PROBLEMS.values())))
        elif stream.idle and not stats["output_rate_hz"]:
            level, message = DiagnosticStatus.OK, "idle: no subscriber to any output"
        elif stream.metric_note:
            level, message = DiagnosticStatus.WARN, stream.metric_note
        else:
            level, message = DiagnosticStatus.OK, "serving"
        name = f"{self.get_name()}: depth" + (f" {stream.name}" if stream.name else "")
        return diagnostic_status(name, values.get("device", "none"), level, message, values)


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args if args is not None else sys.argv)
    try:
        node = DepthMasterNode()
    except ValueError as exc:  # a structural parameter (cameras) that no later transition can fix
        print(f"depthmaster: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
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
