"""The scale package (robust fit, tracker, least squares, the built-in sources' pairs) on synthetic scenes with
exact metric depth (sample_scene): the model output is simulated as an unknown affine map of the true
sqrt-disparity, with and without noise, and every mode must recover meters."""

import math

import numpy as np
import pytest

from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.geometry.projection import quaternion_matrix, transform_points
from depthmaster_ros.geometry.projection import project_points as project
from depthmaster_ros.samples.sample_scene import FLOOR_Y, SPHERES, PinholeCamera, render
from depthmaster_ros.scale.line_fit import sqrt_disparity_line
from depthmaster_ros.scale.robust_fit import FitOutcome, FitSettings, ScaleFit, robust_fit
from depthmaster_ros.scale.sources.ground_plane import pairs_from_ground_plane
from depthmaster_ros.scale.sources.pointcloud import pairs_from_points
from depthmaster_ros.scale.sources.sparse_depth import pairs_from_sparse_depth
from depthmaster_ros.scale.tracker import ScaleTracker


def project_points(points, camera):
    return project(points, camera.K, camera.width, camera.height)


A, B = 1.3, 0.05  # the "unknown" affine map: p = A sqrt(1/d) + B, so s = 1/A, t = -B/A
PINHOLE = PinholeCamera.with_size(160, 120)
CAMERA = CameraIntrinsics.from_K(160, 120, PINHOLE.K)
# LiDAR frame (x forward, y left, z up) -> camera optical frame (x right, y down, z forward), 10 cm above it.
LIDAR_R = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
LIDAR_T = np.array([0.0, 0.1, -0.05])
LIDAR_TO_CAMERA = [*LIDAR_T, 0.5, -0.5, 0.5, 0.5]


def simulate(depth, rng=None, noise=0.0):
    y = np.where(np.isfinite(depth), np.sqrt(1.0 / depth), 0.0)
    p = A * y + B + (rng.normal(0.0, noise, depth.shape) if noise else 0.0)
    return np.clip(p, 0.0, 1.0).astype(np.float32)


def abs_rel(fit: ScaleFit, p, depth):
    """Mean relative error of the recovered depth, over pixels with a true depth where the simulated model output
    is not clipped to 0 or 1 (a clipped prediction is wrong whatever the scale)."""
    a = np.maximum(fit.scale * p.astype(np.float64) + fit.shift, 1e-9)
    valid = np.isfinite(depth) & (p > 0) & (p < 1)
    return float(np.mean(np.abs(1.0 / a[valid] ** 2 - depth[valid]) / depth[valid]))


def corrupt(depth, rng):
    """2 % depth noise and 30 % gross outliers, as a real depth sensor or LiDAR might give."""
    noisy = depth * (1.0 + rng.normal(0.0, 0.02, depth.shape))
    outliers = rng.random(depth.shape) < 0.3
    noisy[outliers] = rng.uniform(0.3, 40.0, int(outliers.sum()))
    return noisy


@pytest.fixture(scope="module")
def scene():
    _, depth = render(PINHOLE, t=1.0)
    return depth


def lidar_scan(depth, rng, rows=12):
    """Points from a 12-beam LiDAR: scan rows through the image (back-projected exactly), plus returns behind
    the camera and beside the field of view, all in the LiDAR frame."""
    v, u = np.mgrid[10:120:120 // rows, 0:160].reshape(2, -1)
    z = depth[v, u]
    keep = np.isfinite(z)
    u, v, z = u[keep], v[keep], z[keep]
    cam = np.stack([(u - CAMERA.cx) * z / CAMERA.fx, (v - CAMERA.cy) * z / CAMERA.fy, z], axis=1)
    behind = rng.uniform(-5, 5, (500, 3)) * [1, 0.2, 1] - [0, 0, 6]
    beside = np.stack([rng.uniform(10, 20, 300), rng.uniform(-1, 0, 300), rng.uniform(1, 5, 300)], axis=1)
    cam = np.vstack([cam, behind, beside])
    return (cam - LIDAR_T) @ LIDAR_R  # inverse of X_cam = R X_lidar + t


def test_extrinsic_quaternion_matches_rotation():
    assert np.allclose(quaternion_matrix(*LIDAR_TO_CAMERA[3:]), LIDAR_R)
    points = np.array([[1.0, 2.0, 3.0]])
    assert np.allclose(transform_points(points, LIDAR_TO_CAMERA), points @ LIDAR_R.T + LIDAR_T)


def test_sparse_depth_registered(scene):
    rng = np.random.default_rng(1)
    sparse = np.where(rng.random(scene.shape) < 0.05, scene, np.nan)
    p = simulate(scene)
    fit = robust_fit(*pairs_from_sparse_depth(p, CAMERA, sparse, None), "sparse_depth").fit
    assert abs(fit.scale - 1 / A) < 1e-5 and abs(fit.shift + B / A) < 1e-5
    assert abs_rel(fit, p, scene) <= 1e-4 and fit.inlier_ratio == 1.0

    p_noisy = simulate(scene, rng, noise=0.002)
    sparse = np.where(rng.random(scene.shape) < 0.05, corrupt(scene, rng), 0.0)  # 0 = no measurement
    fit = robust_fit(*pairs_from_sparse_depth(p_noisy, CAMERA, sparse, None), "sparse_depth").fit
    assert abs_rel(fit, p_noisy, scene) <= 0.02
    assert 0.5 < fit.inlier_ratio < 0.8 and fit.residual_rms < 0.05


def test_sparse_depth_from_another_sensor_is_reprojected(scene):
    """A 80x60 depth sensor with its own intrinsics, 5 cm to the side and turned by 0.03 rad."""
    angle = 0.03
    rotation = np.array([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
    offset = np.array([0.05, -0.02, 0.01])
    sensor = PinholeCamera.with_size(80, 60, horizontal_fov_deg=70.0)
    _, sensor_depth = render(sensor, t=1.0, offset=(rotation, offset))
    extrinsic = [*offset, 0.0, math.sin(angle / 2), 0.0, math.cos(angle / 2)]
    sensor_camera = CameraIntrinsics.from_K(80, 60, sensor.K)
    p = simulate(scene)
    pairs = pairs_from_sparse_depth(p, CAMERA, sensor_depth, sensor_camera, extrinsic)
    fit = robust_fit(*pairs, "sparse_depth").fit
    assert abs_rel(fit, p, scene) <= 1e-4
    # Without the extrinsic, the same data gives a measurably worse fit.
    fit_wrong = robust_fit(*pairs_from_sparse_depth(p, CAMERA, sensor_depth, sensor_camera,
                                                    [0, 0, 0, 0, 0, 0, 1]), "sparse_depth").fit
    assert fit_wrong is None or abs_rel(fit_wrong, p, scene) > 10 * abs_rel(fit, p, scene)


def test_pointcloud(scene):
    rng = np.random.default_rng(2)
    scan = lidar_scan(scene, rng)
    points = transform_points(scan, LIDAR_TO_CAMERA)
    u, v, z = project_points(points, CAMERA)
    assert len(z) < len(scan) and (z > 0).all()  # behind / beside dropped
    assert (u >= -0.5).all() and (u < 159.5).all() and (v >= -0.5).all() and (v < 119.5).all()
    p = simulate(scene)
    fit = robust_fit(*pairs_from_points(p, CAMERA, points), "pointcloud").fit
    assert abs_rel(fit, p, scene) <= 1e-4

    noisy = scan * (1 + rng.normal(0, 0.02, (len(scan), 1)))
    outliers = rng.random(len(scan)) < 0.3
    noisy[outliers] *= rng.uniform(0.2, 3.0, (int(outliers.sum()), 1))
    p_noisy = simulate(scene, rng, noise=0.002)
    fit = robust_fit(*pairs_from_points(p_noisy, CAMERA, transform_points(noisy, LIDAR_TO_CAMERA)), "pointcloud").fit
    assert abs_rel(fit, p_noisy, scene) <= 0.02


def test_nearest_point_per_pixel_wins():
    points = np.array([[0.0, 0.0, 5.0], [0.0, 0.0, 2.0], [0.001, 0.0, 9.0]])  # all on the centre pixel
    u, v, z = project_points(points, CAMERA)
    assert z.tolist() == [2.0]


def boulders(radius, z, x, third=False):
    """Boulders lying on the floor in front of the camera, hiding most of it."""
    grey = (0.5, 0.5, 0.5)
    extra = [((-x, FLOOR_Y - radius, z), radius, grey), ((x, FLOOR_Y - radius, z + 0.3), radius, grey)]
    if third:
        extra.append(((0.0, FLOOR_Y - radius / 2, z - 0.6), radius / 2, grey))
    return SPHERES + tuple(extra)


@pytest.mark.parametrize("pitch, spheres", [(0.0, boulders(0.6, 3.5, 0.8)), (0.2, boulders(0.8, 2.5, 1.1, True))])
def test_ground_plane_with_floor_on_20_percent_of_the_image(pitch, spheres):
    _, depth = render(PINHOLE, t=0.0, pitch=pitch, spheres=spheres)
    # Floor pixels are those whose true depth is the floor plane's (independent formula: ray . down = h / Z).
    v, u = np.mgrid[0:120, 0:160]
    rays = np.stack([(u - CAMERA.cx) / CAMERA.fx, (v - CAMERA.cy) / CAMERA.fy, np.ones(u.shape)], axis=-1)
    down = rays @ np.array([0.0, math.cos(pitch), math.sin(pitch)])
    floor = np.isfinite(depth) & np.isclose(depth * down, FLOOR_Y, rtol=1e-5)
    assert 0.15 <= floor.mean() <= 0.25, floor.mean()

    rng = np.random.default_rng(3)
    for noise, bound in ((0.0, 1e-4), (0.002, 0.02)):
        p = simulate(depth, rng, noise)
        fit = robust_fit(*pairs_from_ground_plane(p, CAMERA, FLOOR_Y, pitch, 0.0), "ground_plane").fit
        assert fit is not None and abs_rel(fit, p, depth) <= bound


@pytest.mark.parametrize(
    "make_pairs, reason",
    [
        (lambda p, d: (p, np.full_like(d, np.nan)), "only 0 valid"),
        (lambda p, d: (p, np.where(np.isfinite(d), np.inf, np.nan)), "only 0 valid"),
        (lambda p, d: (np.full_like(p, 0.4), d), "all at about one depth"),
        (lambda p, d: (p[np.isfinite(d)][:10], d[np.isfinite(d)][:10]), "only 10 valid"),
        (lambda p, d: (np.full_like(p, np.nan), d), "only 0 valid"),
        (lambda p, d: (p, d[:5]), "predictions but"),
    ],
)
def test_degenerate_pairs_give_a_reason(scene, make_pairs, reason):
    outcome = robust_fit(*make_pairs(simulate(scene).ravel(), scene.ravel()), "sparse_depth")
    assert outcome.fit is None and reason in outcome.reason


def test_degenerate_geometry_gives_a_reason():
    p = np.full((120, 160), 0.5, np.float32)
    with pytest.raises(ValueError, match="camera_height must be a positive"):
        pairs_from_ground_plane(p, CAMERA, -1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="camera_height must be a positive"):
        pairs_from_ground_plane(p, CAMERA, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="looks down at the floor"):
        pairs_from_ground_plane(p, CAMERA, 1.0, -1.4, 0.0)  # looking at the sky
    with pytest.raises(ValueError, match="ground_region"):
        pairs_from_ground_plane(p, CAMERA, 1.0, 0.0, 0.0, (0.5, 0.5, 0.2, 1.0))
    p_behind, d_behind = pairs_from_points(p, CAMERA, np.array([[0.0, 0.0, -3.0], [1.0, 1.0, -0.5]]))
    assert len(d_behind) == 0
    assert "only 0 valid" in robust_fit(p_behind, d_behind, "pointcloud").reason


def test_wrong_sign_is_rejected(scene):
    p = 1.0 - simulate(scene)  # a map where far is bright: depth would grow with p
    outcome = robust_fit(p.ravel(), scene.ravel(), "sparse_depth")
    assert outcome.fit is None and "scale" in outcome.reason


def test_least_squares_calibration(scene):
    p = simulate(scene)
    scale, shift = sqrt_disparity_line(p, scene)
    assert abs(scale - 1 / A) < 1e-4 and abs(shift + B / A) < 1e-4
    with pytest.raises(ValueError, match="at least 2 valid pixels"):
        sqrt_disparity_line(p, np.full_like(scene, np.nan))


def fit(scale, shift, stamp):
    return FitOutcome(ScaleFit(scale, shift, "test", stamp=stamp))


def test_tracker_smooths_with_time_constant():
    tracker = ScaleTracker(time_constant=0.5, hold_s=1.0)
    assert tracker.update(fit(1.0, 0.2, 0.0), 0.0)[0].scale == 1.0
    current, status = tracker.update(fit(1.02, 0.21, 0.1), 0.1)  # depths change by 5-8 %: no jump
    alpha = 1 - math.exp(-0.1 / 0.5)
    assert status == "fitted" and math.isclose(current.scale, 1.0 + alpha * 0.02)
    assert math.isclose(current.shift, 0.2 + alpha * 0.01)


def test_tracker_resets_on_persistent_jump_only():
    tracker = ScaleTracker(time_constant=10.0, hold_s=5.0, jump_threshold=0.25, jump_frames=3)
    tracker.update(fit(1.0, 0.0, 0.0), 0.0)
    current, status = tracker.update(fit(2.0, 0.0, 0.1), 0.1)  # depths / 4: a jump
    assert current.scale == 1.0 and "ignoring a sudden jump" in status
    tracker.update(fit(2.0, 0.0, 0.2), 0.2)
    current, status = tracker.update(fit(2.0, 0.0, 0.3), 0.3)
    assert current.scale == 2.0 and "reset" in status


def test_tracker_holds_then_stops():
    tracker = ScaleTracker(time_constant=0.0, hold_s=1.0)
    assert tracker.update(FitOutcome(None, "no pairs"), 0.0) == (None, "no scale fit yet: no pairs")
    tracker.update(fit(1.0, 0.1, 1.0), 1.0)
    held, status = tracker.update(FitOutcome(None, "no pairs"), 1.6)
    assert held.scale == 1.0 and math.isclose(held.age, 0.6) and "holding" in status
    stopped, status = tracker.update(FitOutcome(None, "no pairs"), 2.1)
    assert stopped is None and "scale_hold_s" in status and "no pairs" in status


def test_settings_thresholds():
    rng = np.random.default_rng(4)
    p = rng.uniform(0.2, 0.8, 200)
    d = 1 / ((p / A - B / A) ** 2)
    d[:150] = rng.uniform(0.5, 30, 150)  # 75 % outliers
    outcome = robust_fit(p, d, "x", FitSettings(min_inlier_ratio=0.3))
    assert outcome.fit is None and "agree with the best line" in outcome.reason
    assert robust_fit(p, d, "x", FitSettings(min_inlier_ratio=0.2)).fit is not None
