"""Metric scale for DepthMaster's relative output: a scale ``s`` and shift ``t`` in sqrt-disparity space.

``metric depth = 1 / max((s * p + t)^2, eps)``: a straight line from the prediction ``p`` to the square-root
disparity ``y = sqrt(1 / d)``, the space of the paper's evaluation alignment. Every source of metric truth
becomes pairs ``(p_i, d_i)`` and one robust line fit:

* ``sparse_depth``: a depth image (depth camera, LiDAR rendered into an image), reprojected into the colour
  camera when its size, intrinsics or pose differ;
* ``pointcloud``: LiDAR points moved into the camera optical frame by a static extrinsic and projected with K,
  nearest point per pixel, the prediction sampled at each point's sub-pixel position;
* ``ground_plane``: the virtual depth of a flat floor, known from the camera height, pitch and roll, for the
  pixels of an image region where floor is expected;
* ``fixed``: no measurement, user-given (s, t).

The fit: RANSAC on 2-point lines, scored on the relative residual ``|s p + t - y| / y`` (scale-free: 0.05 is
about 10 % in depth anywhere), then IRLS with Tukey's biweight on the consensus. RANSAC needs no starting guess
and survives a majority of gross outliers (occlusion edges and reflections in LiDAR, objects standing in the
floor region), which is where IRLS alone fails when its least-squares start is already pulled away; IRLS then
uses every good pair with smooth weights, which is statistically more efficient than the hard RANSAC inlier set.
Degenerate input never raises: it gives no fit and a reason.

:class:`ScaleTracker` adds time: exponential smoothing of (s, t), a reset on a large persistent jump, and a hold
of the last good fit for ``scale_hold_s`` seconds when fits fail.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from .intrinsics import CameraIntrinsics

P_SATURATED = 1e-6  # p at 0 or 1 was clipped by the model: not on the line, never fitted


@dataclass(frozen=True)
class ScaleFit:
    """A scale and shift in sqrt-disparity space, and how good the fit that produced them was."""

    scale: float
    shift: float
    source: str  # the scale mode that produced it
    inlier_ratio: float = 1.0
    residual_rms: float = 0.0  # RMS of the relative sqrt-disparity residual over inliers (about half the depth error)
    pairs: int = 0
    stamp: float = math.nan  # seconds, the frame the fit came from
    age: float = 0.0  # seconds since that frame, when reused

    def __post_init__(self):
        if not (self.scale >= 0.0):  # also rejects NaN
            raise ValueError(f"scale must be >= 0, got {self.scale}")

    def depth_at(self, p: float) -> float:
        a = max(self.scale * p + self.shift, 0.0)
        return math.inf if a * a < 1e-6 else 1.0 / (a * a)


@dataclass(frozen=True)
class FitSettings:
    min_pairs: int = 50
    min_p_spread: float = 0.05  # 5th-95th percentile range of p among the pairs
    inlier_threshold: float = 0.05  # relative sqrt-disparity residual
    min_inlier_ratio: float = 0.3
    ransac_iterations: int = 256
    ransac_sample: int = 4000  # pairs used to score RANSAC hypotheses
    irls_iterations: int = 10


@dataclass(frozen=True)
class FitOutcome:
    fit: ScaleFit | None
    reason: str = ""  # why there is no fit


def fixed_scale(scale: float, shift: float) -> ScaleFit:
    return ScaleFit(float(scale), float(shift), "fixed")


# ---------------------------------------------------------------------------------------------- the fit
def _tukey(r: np.ndarray, c: float) -> np.ndarray:
    u = r / c
    return np.where(np.abs(u) < 1.0, (1.0 - u * u) ** 2, 0.0)


def _weighted_line(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float] | None:
    sw = w.sum()
    if sw <= 0:
        return None
    pm, ym = (w * p).sum() / sw, (w * y).sum() / sw
    var = (w * (p - pm) ** 2).sum()
    if var <= 1e-12 * sw:
        return None
    scale = (w * (p - pm) * (y - ym)).sum() / var
    return float(scale), float(ym - scale * pm)


def robust_fit(relative, depth, source: str, settings: FitSettings = FitSettings(), stamp: float = math.nan,
               seed: int = 0) -> FitOutcome:
    """Fit ``s * p + t ~ sqrt(1 / d)`` on pairs (p_i, d_i); invalid pairs (non-finite, d <= 0, saturated p) are
    ignored. Returns the fit with its quality, or no fit and the reason."""
    p = np.asarray(relative, dtype=np.float64).ravel()
    d = np.asarray(depth, dtype=np.float64).ravel()
    if p.shape != d.shape:
        return FitOutcome(None, f"{p.size} predictions but {d.size} depths")
    with np.errstate(invalid="ignore", divide="ignore"):
        valid = np.isfinite(p) & np.isfinite(d) & (d > 0) & (p > P_SATURATED) & (p < 1 - P_SATURATED)
    p, d = p[valid], d[valid]
    if p.size < settings.min_pairs:
        return FitOutcome(None, f"only {p.size} valid depth/prediction pairs (need {settings.min_pairs})")
    spread = float(np.percentile(p, 95) - np.percentile(p, 5))
    if spread < settings.min_p_spread:
        return FitOutcome(None, f"the pairs span too little of the prediction range (p spread {spread:.3f} < "
                                f"{settings.min_p_spread}): all at about one depth")
    y = np.sqrt(1.0 / d)

    # RANSAC over 2-point lines, scored (MSAC) on a subsample.
    rng = np.random.default_rng(seed)
    sample = rng.choice(p.size, min(p.size, settings.ransac_sample), replace=False)
    ps, ys = p[sample], y[sample]
    i, j = rng.integers(0, p.size, (2, settings.ransac_iterations))
    dp = p[i] - p[j]
    usable = np.abs(dp) > settings.min_p_spread / 4
    if not usable.any():
        return FitOutcome(None, "no two pairs far enough apart in p to define a line")
    scales = (y[i] - y[j])[usable] / dp[usable]
    shifts = y[i][usable] - scales * p[i][usable]
    residuals = np.abs(scales[:, None] * ps[None, :] + shifts[:, None] - ys[None, :]) / ys[None, :]
    cost = np.minimum(residuals, settings.inlier_threshold) ** 2
    cost[scales <= 0] = np.inf
    best = int(np.argmin(cost.sum(axis=1)))
    if not np.isfinite(cost[best].sum()):
        return FitOutcome(None, "every candidate line has a non-positive scale (depth would grow with p)")
    scale, shift = float(scales[best]), float(shifts[best])

    # IRLS with Tukey's biweight on the relative residual, starting from the RANSAC line.
    for _ in range(settings.irls_iterations):
        r = (scale * p + shift - y) / y
        core = np.abs(r) < settings.inlier_threshold
        sigma = max(1.4826 * float(np.median(np.abs(r[core]))) if core.any() else settings.inlier_threshold, 1e-6)
        line = _weighted_line(p, y, _tukey(r, max(4.685 * sigma, 1e-5)) / (y * y))
        if line is None:
            break
        if abs(line[0] - scale) < 1e-12 and abs(line[1] - shift) < 1e-12:
            scale, shift = line
            break
        scale, shift = line

    r = np.abs(scale * p + shift - y) / y
    inliers = r < settings.inlier_threshold
    ratio = float(inliers.mean())
    if not scale > 0:
        return FitOutcome(None, f"the fitted scale {scale:.4g} is not positive (depth would grow with p)")
    if ratio < settings.min_inlier_ratio:
        return FitOutcome(None, f"only {ratio:.0%} of {p.size} pairs agree with the best line "
                                f"(need {settings.min_inlier_ratio:.0%})")
    rms = float(np.sqrt(np.mean(r[inliers] ** 2))) if inliers.any() else math.inf
    return FitOutcome(ScaleFit(scale, shift, source, ratio, rms, int(p.size), stamp))


def fit_scale_shift(relative, depth, mask=None) -> ScaleFit:
    """Plain least squares over valid pixels (finite, positive depth, and ``mask`` if given), as the paper's
    evaluation alignment; for a one-off calibration of the fixed mode from a frame with measured depth."""
    p = np.asarray(relative, dtype=np.float64).ravel()
    d = np.asarray(depth, dtype=np.float64).ravel()
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(d) & (d > 0) & np.isfinite(p)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool).ravel()
    if valid.sum() < 2 or np.ptp(p[valid]) == 0:
        raise ValueError(f"a scale fit needs at least 2 valid pixels with distinct predictions; got {valid.sum()}")
    line = _weighted_line(p[valid], np.sqrt(1.0 / d[valid]), np.ones(int(valid.sum())))
    return ScaleFit(max(line[0], 0.0), line[1], "fit", pairs=int(valid.sum()))


# ---------------------------------------------------------------------------------------------- sources of pairs
def quaternion_matrix(qx: float, qy: float, qz: float, qw: float) -> np.ndarray:
    norm = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
    if not norm > 0:
        raise ValueError("the extrinsic's quaternion has zero length")
    x, y, z, w = qx / norm, qy / norm, qz / norm, qw / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def transform_points(points: np.ndarray, extrinsic) -> np.ndarray:
    """``extrinsic`` = [x, y, z, qx, qy, qz, qw]: X_target = R X_source + t."""
    values = [float(v) for v in extrinsic]
    if len(values) != 7:
        raise ValueError(f"an extrinsic is [x, y, z, qx, qy, qz, qw]; got {len(values)} values")
    rotation = quaternion_matrix(*values[3:])
    return points @ rotation.T + np.asarray(values[:3])


def project_points(points: np.ndarray, camera: CameraIntrinsics, min_depth: float = 1e-3):
    """Points in the camera optical frame -> (u, v, z) of those that land in the image, projected with K
    (distortion ignored) at sub-pixel precision, keeping per pixel only the nearest (an occluded LiDAR point
    behind a foreground object must not pair with the foreground's prediction). Points behind the camera or
    outside the image are dropped."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1) & (points[:, 2] > min_depth)]
    K = camera.K
    z = points[:, 2]
    u = (K[0, 0] * points[:, 0] + K[0, 1] * points[:, 1]) / z + K[0, 2]
    v = K[1, 1] * points[:, 1] / z + K[1, 2]
    iu, iv = np.round(u).astype(np.int64), np.round(v).astype(np.int64)
    inside = (iu >= 0) & (iu < camera.width) & (iv >= 0) & (iv < camera.height)
    u, v, z, pixel = u[inside], v[inside], z[inside], (iv * camera.width + iu)[inside]
    order = np.lexsort((z, pixel))  # by pixel, nearest first
    keep = order[np.unique(pixel[order], return_index=True)[1]]
    return u[keep], v[keep], z[keep]


def sample_bilinear(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``image`` at sub-pixel positions (pixel centres at integers), clamped at the border."""
    h, w = image.shape
    u = np.clip(u, 0, w - 1)
    v = np.clip(v, 0, h - 1)
    u0 = np.clip(np.floor(u).astype(np.int64), 0, max(w - 2, 0))
    v0 = np.clip(np.floor(v).astype(np.int64), 0, max(h - 2, 0))
    u1, v1 = np.minimum(u0 + 1, w - 1), np.minimum(v0 + 1, h - 1)
    fu, fv = u - u0, v - v0
    top = image[v0, u0] * (1 - fu) + image[v0, u1] * fu
    bottom = image[v1, u0] * (1 - fu) + image[v1, u1] * fu
    return top * (1 - fv) + bottom * fv


def pairs_from_points(relative: np.ndarray, camera: CameraIntrinsics, points: np.ndarray):
    """(p, d) pairs for 3-D points in the camera optical frame: p sampled where each point projects."""
    u, v, z = project_points(points, camera)
    return sample_bilinear(np.asarray(relative, dtype=np.float64), u, v), z


def depth_image_to_points(depth: np.ndarray, camera: CameraIntrinsics) -> np.ndarray:
    """Valid pixels of a depth image -> N x 3 points in that camera's optical frame (K, no distortion)."""
    v, u = np.nonzero(np.isfinite(depth) & (depth > 0))
    z = depth[v, u].astype(np.float64)
    K = camera.K
    y = (v - K[1, 2]) * z / K[1, 1]
    x = ((u - K[0, 2]) * z - K[0, 1] * y) / K[0, 0]
    return np.stack([x, y, z], axis=1)


IDENTITY_EXTRINSIC = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)


def pairs_from_sparse_depth(relative: np.ndarray, camera: CameraIntrinsics, sparse_depth: np.ndarray,
                            sparse_camera: CameraIntrinsics | None, extrinsic=IDENTITY_EXTRINSIC):
    """(p, d) pairs from a metric depth image (meters; 0, NaN, Inf invalid). Pixel to pixel when it is registered
    to the colour image (same size, same K or no camera info, identity extrinsic); otherwise back-projected with
    its own intrinsics, moved by ``extrinsic`` (sparse optical frame -> colour optical frame) and projected."""
    sparse_depth = np.asarray(sparse_depth, dtype=np.float64)
    registered = (sparse_depth.shape == (camera.height, camera.width)
                  and tuple(float(v) for v in extrinsic) == IDENTITY_EXTRINSIC
                  and (sparse_camera is None or np.allclose(sparse_camera.K, camera.K)))
    if registered:
        with np.errstate(invalid="ignore"):
            valid = np.isfinite(sparse_depth) & (sparse_depth > 0)
        return np.asarray(relative, dtype=np.float64)[valid], sparse_depth[valid]
    if sparse_camera is None:
        raise ValueError(f"the sparse depth image ({sparse_depth.shape[1]}x{sparse_depth.shape[0]}) is not "
                         "registered to the colour image and has no camera info to reproject it with")
    if sparse_depth.shape != (sparse_camera.height, sparse_camera.width):
        raise ValueError(f"sparse depth is {sparse_depth.shape[1]}x{sparse_depth.shape[0]} but its camera info is "
                         f"{sparse_camera.width}x{sparse_camera.height}")
    points = transform_points(depth_image_to_points(sparse_depth, sparse_camera), extrinsic)
    return pairs_from_points(relative, camera, points)


def gravity_in_camera(pitch: float, roll: float) -> np.ndarray:
    """Unit 'down' vector in the optical frame of a camera looking down by ``pitch`` and rolled by ``roll``
    (radians; roll right-handed about the optical axis, i.e. clockwise as seen from behind)."""
    return np.array([math.sin(roll) * math.cos(pitch), math.cos(roll) * math.cos(pitch), math.sin(pitch)])


def pairs_from_ground_plane(relative: np.ndarray, camera: CameraIntrinsics, height: float, pitch: float,
                            roll: float, region=(0.0, 0.6, 1.0, 1.0)):
    """(p, d) pairs from a flat floor ``height`` meters below the camera: the virtual floor depth of each pixel
    inside ``region`` ([x0, y0, x1, y1], fractions of the width and height) whose ray goes down. Pixels where
    something stands on the floor are outliers for the robust fit."""
    if not (height > 0 and math.isfinite(height)):
        raise ValueError(f"camera_height must be a positive number of meters, got {height}")
    x0, y0, x1, y1 = (float(v) for v in region)
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise ValueError(f"ground_region {list(region)} is not [x0, y0, x1, y1] with 0 <= x0 < x1 <= 1 and "
                         "0 <= y0 < y1 <= 1")
    c0, r0 = int(x0 * camera.width), int(y0 * camera.height)
    c1, r1 = max(math.ceil(x1 * camera.width), c0 + 1), max(math.ceil(y1 * camera.height), r0 + 1)
    v, u = np.mgrid[r0:r1, c0:c1].astype(np.float64)
    K = camera.K
    ray_y = (v - K[1, 2]) / K[1, 1]
    ray_x = (u - K[0, 2] - K[0, 1] * ray_y) / K[0, 0]
    g = gravity_in_camera(pitch, roll)
    down = g[0] * ray_x + g[1] * ray_y + g[2]  # how far the ray (x, y, 1) descends per meter of depth
    looks_down = down > 1e-6
    if not looks_down.any():
        raise ValueError("no pixel of ground_region looks down at the floor (check camera_pitch and camera_roll)")
    p = np.asarray(relative, dtype=np.float64)[r0:r1, c0:c1]
    return p[looks_down], height / down[looks_down]


# ---------------------------------------------------------------------------------------------- over time
class ScaleTracker:
    """Smooths per-frame fits over time and holds the last good one while fits fail.

    ``time_constant`` (s): exponential smoothing of (s, t) by frame stamps (0 = none). A fit whose depth differs
    from the smoothed one by more than ``jump_threshold`` (relative, at both ends of its p range) for
    ``jump_frames`` frames in a row replaces it outright. Without a new fit the smoothed one is reused for
    ``hold_s`` seconds, then there is no scale until the next fit.
    """

    def __init__(self, time_constant: float = 0.5, hold_s: float = 1.0, jump_threshold: float = 0.25,
                 jump_frames: int = 3):
        self.time_constant = time_constant
        self.hold_s = hold_s
        self.jump_threshold = jump_threshold
        self.jump_frames = jump_frames
        self.reset()

    def reset(self, mode: str | None = None) -> None:
        self.mode = mode  # the scale mode whose fits this tracker follows
        self.current: ScaleFit | None = None
        self._jumps = 0
        self.last_reason = ""

    def state(self) -> dict:
        """What a later run needs to continue exactly from here (JSON-serialisable)."""
        return {"mode": self.mode, "jumps": self._jumps,
                "current": None if self.current is None else asdict(self.current)}

    def restore(self, state: dict) -> None:
        self.reset(state["mode"])
        self._jumps = state["jumps"]
        self.current = None if state["current"] is None else ScaleFit(**state["current"])

    def _jump(self, fit: ScaleFit) -> bool:
        for p in (0.1, 0.9):
            old, new = self.current.depth_at(p), fit.depth_at(p)
            if math.isinf(old) != math.isinf(new):
                return True
            if math.isfinite(old) and abs(new - old) > self.jump_threshold * old:
                return True
        return False

    def update(self, outcome: FitOutcome, stamp: float) -> tuple[ScaleFit | None, str]:
        """Feed this frame's outcome; returns the fit to use now (or None) and a status for diagnostics."""
        fit = outcome.fit
        if fit is None:
            self.last_reason = outcome.reason
            if self.current is None:
                return None, f"no scale fit yet: {outcome.reason}"
            age = stamp - self.current.stamp
            if age > self.hold_s:
                return None, (f"no scale fit for {age:.1f} s (> scale_hold_s {self.hold_s} s): metric depth and "
                              f"points stopped; last reason: {outcome.reason}")
            return replace(self.current, age=age), f"holding the fit from {age:.2f} s ago: {outcome.reason}"
        if self.current is None or stamp - self.current.stamp > self.hold_s:
            self.current, self._jumps = fit, 0
            return fit, "fitted"
        if self._jump(fit):
            self._jumps += 1
            if self._jumps >= self.jump_frames:
                self.current, self._jumps = fit, 0
                return fit, "fitted (reset after a persistent jump)"
            return replace(self.current, age=stamp - self.current.stamp), "fitted (ignoring a sudden jump)"
        self._jumps = 0
        dt = max(stamp - self.current.stamp, 0.0)
        alpha = 1.0 if self.time_constant <= 0 else 1.0 - math.exp(-dt / self.time_constant)
        self.current = replace(fit, scale=self.current.scale + alpha * (fit.scale - self.current.scale),
                               shift=self.current.shift + alpha * (fit.shift - self.current.shift))
        return self.current, "fitted"
