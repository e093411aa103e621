"""Everything that accompanies camera frames (camera info, sparse depth, LiDAR scans), kept by stamp and
paired with each frame. Shared by the node (live messages) and the bag tool (messages read from a bag), so both
pair, validate and reject the same way."""

from __future__ import annotations

from ..processing import MetricHints
from .conversions import InputError, camera_info_to_intrinsics, cloud_to_xyz, depth_image_to_meters, stamp_to_ns
from .stamp_cache import StampCache


class FrameInputs:
    def __init__(self):
        self.camera_infos = StampCache("camera_info", "camera_info_tolerance")
        self.sparse_depths = StampCache("sparse depth image", "metric_source_tolerance")
        self.sparse_infos = StampCache("sparse_depth/camera_info", "metric_source_tolerance")
        self.lidar_scans = StampCache("LiDAR scan", "metric_source_tolerance")

    def clear(self) -> None:
        for cache in (self.camera_infos, self.sparse_depths, self.sparse_infos, self.lidar_scans):
            cache.clear()

    def add_camera_info(self, msg, sparse: bool = False) -> str | None:
        """Validate and keep a CameraInfo (of the camera, or of the sparse depth sensor); the reason if rejected."""
        try:
            camera = camera_info_to_intrinsics(msg)
        except InputError as exc:
            return str(exc)
        (self.sparse_infos if sparse else self.camera_infos).add(stamp_to_ns(msg.header.stamp), camera)
        return None

    def add_sparse_depth(self, msg) -> None:
        self.sparse_depths.add(stamp_to_ns(msg.header.stamp), msg)  # decoded only if a frame uses it

    def add_lidar(self, msg) -> None:
        self.lidar_scans.add(stamp_to_ns(msg.header.stamp), msg)

    def await_companions(self, stamp_ns: int, mode: str, camera_tolerance_s: float, source_tolerance_s: float,
                         camera_info_published: bool = False, sparse_depth_published: bool = False):
        """Live streams: give the camera info (and a registered sparse depth image) with this frame's exact stamp
        up to the pairing tolerance to arrive, since they are often published just after the image. The
        ``*_published`` flags say a publisher exists, so the very first one is waited for too. LiDAR scans are
        not waited for: they are not stamped like the frames."""
        self.camera_infos.wait_for(stamp_ns, camera_tolerance_s, camera_info_published)
        if mode == "sparse_depth":
            self.sparse_depths.wait_for(stamp_ns, source_tolerance_s, sparse_depth_published)

    def camera_for(self, stamp_ns: int, image_shape, tolerance_s: float):
        """(intrinsics or None, why none, rejection reason if the matching camera info does not fit the image)."""
        camera, note = self.camera_infos.lookup(stamp_ns, int(tolerance_s * 1e9))
        if camera is not None and (camera.width, camera.height) != (image_shape[1], image_shape[0]):
            reason = (f"camera_info is {camera.width}x{camera.height} but the image is {image_shape[1]}x"
                      f"{image_shape[0]}; metric depth and points need matching sizes")
            return None, reason, reason
        return camera, note, None

    def hints_for(self, mode: str, stamp_ns: int, tolerance_s: float) -> tuple[MetricHints, str | None]:
        """The decoded sparse depth image or LiDAR scan for this frame (for modes that need one), and the
        rejection reason if the matching message is unusable."""
        cache = {"sparse_depth": self.sparse_depths, "pointcloud": self.lidar_scans}.get(mode)
        if cache is None:
            return MetricHints(), None
        tolerance_ns = int(tolerance_s * 1e9)
        msg, note = cache.lookup(stamp_ns, tolerance_ns)
        if msg is None:
            return MetricHints(note=note), None
        try:
            if mode == "pointcloud":
                return MetricHints(lidar_points=cloud_to_xyz(msg)), None
            sparse_camera = self.sparse_infos.lookup(stamp_to_ns(msg.header.stamp), tolerance_ns)[0]
            return MetricHints(sparse_depth=depth_image_to_meters(msg), sparse_camera=sparse_camera), None
        except InputError as exc:
            return MetricHints(note=str(exc)), str(exc)
