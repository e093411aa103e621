"""Camera intrinsics as plain data (the parts of sensor_msgs/CameraInfo that geometry needs), and resizing them.

Projection uses the P matrix like ``image_geometry::PinholeCameraModel`` (and so ``depth_image_proc``):
``fx = P[0,0], fy = P[1,1], cx = P[0,2], cy = P[1,2]``. Resizing scales K, P and the ROI exactly as
``image_proc``'s ResizeNode does (``fx, cx, Tx`` by the x factor, ``fy, cy, Ty`` by the y factor).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class CameraIntrinsics:
    width: int
    height: int
    K: np.ndarray  # 3x3 # noqa: N815
    P: np.ndarray  # 3x4 # noqa: N815
    D: tuple[float, ...] = ()  # noqa: N815
    distortion_model: str = ""
    R: np.ndarray = field(default_factory=lambda: np.eye(3))  # noqa: N815
    binning_x: int = 0
    binning_y: int = 0
    roi: tuple[int, int, int, int, bool] = (0, 0, 0, 0, False)  # x_offset, y_offset, height, width, do_rectify
    frame_id: str = ""  # the frame of the camera info it was read from ("" when not from a message)

    @classmethod
    def from_K(cls, width: int, height: int, K: np.ndarray) -> "CameraIntrinsics":  # noqa: N802, N803
        """Ideal pinhole camera (no distortion, P = [K | 0])."""
        K = np.asarray(K, dtype=np.float64).reshape(3, 3)
        return cls(width, height, K, np.hstack([K, np.zeros((3, 1))]))

    @property
    def fx(self) -> float:
        return float(self.P[0, 0])

    @property
    def fy(self) -> float:
        return float(self.P[1, 1])

    @property
    def cx(self) -> float:
        return float(self.P[0, 2])

    @property
    def cy(self) -> float:
        return float(self.P[1, 2])

    def problems(self) -> list[str]:
        """Why these intrinsics cannot be used for projection (empty list: fine)."""
        found = []
        if self.width <= 0 or self.height <= 0:
            found.append(f"size {self.width}x{self.height} is not positive")
        if not np.all(np.isfinite(self.K)) or not np.all(np.isfinite(self.P)):
            found.append("K or P contains NaN/Inf")
        elif not np.any(self.K):
            found.append("K is all zeros (uncalibrated camera)")
        elif self.fx <= 0 or self.fy <= 0:
            found.append(f"P has non-positive focal lengths fx={self.fx}, fy={self.fy}")
        return found

    def scaled(self, width: int, height: int) -> "CameraIntrinsics":
        """The intrinsics of the same camera with its image resized to ``width`` x ``height``."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0, 0] *= sx
        K[0, 2] *= sx
        K[1, 1] *= sy
        K[1, 2] *= sy
        P = self.P.copy()
        P[0, 0] *= sx
        P[0, 2] *= sx
        P[0, 3] *= sx
        P[1, 1] *= sy
        P[1, 2] *= sy
        P[1, 3] *= sy
        x, y, h, w, rectify = self.roi
        roi = (int(x * sx), int(y * sy), int(h * sy), int(w * sx), rectify)
        return replace(self, width=width, height=height, K=K, P=P, roi=roi)
