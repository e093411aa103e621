"""The shared processing path (no ROS): which outputs are made, and how they relate to each other."""

import warnings

import numpy as np
import pytest

from depthmaster_ros.colormap import colorize
from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.processing import DepthProcessor, ProcessingConfig
from depthmaster_ros.sample_scene import PinholeCamera, render


@pytest.fixture(scope="module")
def frame():
    camera = PinholeCamera.with_size(64, 48)
    rgb, _ = render(camera)
    return rgb, CameraIntrinsics.from_K(64, 48, camera.K)


@pytest.fixture
def processor(pipeline):
    return DepthProcessor(pipeline, ProcessingConfig(processing_res=64, scale_mode="fixed", scale=0.6, shift=0.15))


def test_all_outputs_are_consistent(processor, frame, pipeline):
    rgb, camera = frame
    products = processor.process(rgb, camera)
    assert np.array_equal(products.relative, pipeline(rgb, processing_res=64))
    assert np.array_equal(products.colored, colorize(products.relative, "turbo"))
    a = 0.6 * products.relative.astype(np.float64) + 0.15
    expected = 1 / (a * a)
    inside = (expected >= 0.1) & (expected <= 100.0)
    assert np.allclose(products.depth[inside], expected[inside], rtol=1e-5)
    assert products.points.shape == (48, 64) and np.allclose(products.points["z"][inside], products.depth[inside])
    assert products.scale.scale == 0.6 and products.scale.source == "fixed" and products.notes == []


def test_only_requested_outputs(processor, frame):
    rgb, camera = frame
    products = processor.process(rgb, camera, outputs={"relative"})
    assert products.colored is None and products.depth is None and products.points is None
    products = processor.process(rgb, camera, outputs={"depth"})
    assert products.depth is not None and products.points is None and products.colored is None
    with pytest.raises(ValueError, match="unknown outputs"):
        processor.process(rgb, camera, outputs={"mesh"})


def test_notes_when_metric_is_impossible(processor, frame):
    rgb, camera = frame
    products = processor.process(rgb, None)
    assert products.depth is None and products.points is None and "no camera info" in products.notes[0]
    products = processor.process(rgb, camera, config=processor.config.updated(scale_mode="none"))
    assert products.depth is None and "scale_mode none" in products.notes[0]


def test_output_scale_and_stride(processor, frame):
    rgb, camera = frame
    products = processor.process(rgb, camera, config=processor.config.updated(output_scale=0.5, cloud_stride=3))
    assert products.relative.shape == products.depth.shape == (24, 32)
    assert (products.camera.width, products.camera.height) == (32, 24)
    assert np.isclose(products.camera.fx, camera.fx / 2)
    assert products.points.shape == (8, 11)


def test_camera_size_mismatch_and_bad_config(processor, frame):
    rgb, camera = frame
    with pytest.raises(ValueError, match="camera info is 32x24 but the image is 64x48"):
        processor.process(rgb, camera.scaled(32, 24))
    with pytest.raises(ValueError, match="max_range"):
        ProcessingConfig(min_range=10.0, max_range=5.0)


# ---- metric modes through the processing path, with a test double for the model
from fake_pipeline import A, B, FakePipeline  # noqa: E402

from depthmaster_ros.processing import MetricHints  # noqa: E402
from depthmaster_ros.sample_scene import FLOOR_Y  # noqa: E402


def held_out_abs_rel(depth, truth, measured_mask):
    ok = np.isfinite(depth) & np.isfinite(truth) & ~measured_mask
    assert ok.sum() > 1000
    return float(np.mean(np.abs(depth[ok] - truth[ok]) / truth[ok]))


@pytest.fixture
def fake():
    return FakePipeline()


def test_sparse_depth_mode_recovers_meters_at_held_out_pixels(fake):
    pinhole = PinholeCamera.with_size(160, 120)
    camera = CameraIntrinsics.from_K(160, 120, pinhole.K)
    rgb, truth, _ = fake.frame(pinhole, 1.0)
    mask = np.random.default_rng(0).random(truth.shape) < 0.03
    processor = DepthProcessor(fake, ProcessingConfig(scale_mode="sparse_depth", max_range=1000.0))
    products = processor.process(rgb, camera, hints=MetricHints(sparse_depth=np.where(mask, truth, 0.0)))
    assert products.scale.source == "sparse_depth" and abs(products.scale.scale - 1 / A) < 1e-5
    assert held_out_abs_rel(products.depth, truth, mask) < 1e-4
    assert products.scale.pairs == int((mask & np.isfinite(truth)).sum())


def test_ground_plane_mode_and_missing_inputs(fake):
    pinhole = PinholeCamera.with_size(160, 120)
    camera = CameraIntrinsics.from_K(160, 120, pinhole.K)
    rgb, truth, _ = fake.frame(pinhole, 0.5)
    config = ProcessingConfig(scale_mode="ground_plane", camera_height=FLOOR_Y, max_range=1000.0)
    processor = DepthProcessor(fake, config)
    products = processor.process(rgb, camera, stamp=0.0)
    assert held_out_abs_rel(products.depth, truth, np.zeros(truth.shape, bool)) < 1e-4
    # No camera info: nothing to project the floor with; the fit is held, then stops.
    held = processor.process(rgb, None, stamp=0.5)
    assert held.depth is None and "no camera info" in held.notes[0]
    wrong = DepthProcessor(fake, config.updated(camera_height=0.6)).process(rgb, camera)
    assert wrong.scale is not None  # a wrong height still fits (the floor is flat) but halves every depth
    finite = np.isfinite(products.depth)
    assert np.allclose(wrong.depth[finite] / products.depth[finite], 0.5, rtol=1e-4)
    assert processor.process(rgb, camera, config=config.updated(scale_mode="sparse_depth"), stamp=0.7).depth is None


def test_pointcloud_mode_hold_then_stop(fake):
    pinhole = PinholeCamera.with_size(160, 120)
    camera = CameraIntrinsics.from_K(160, 120, pinhole.K)
    rgb, truth, _ = fake.frame(pinhole, 2.0)
    v, u = np.mgrid[5:120:10, 0:160].reshape(2, -1)
    z = truth[v, u]
    ok = np.isfinite(z)
    points = np.stack([(u[ok] - camera.cx) * z[ok] / camera.fx, (v[ok] - camera.cy) * z[ok] / camera.fy, z[ok]], 1)
    config = ProcessingConfig(scale_mode="pointcloud", scale_hold_s=1.0, max_range=1000.0)
    processor = DepthProcessor(fake, config)
    first = processor.process(rgb, camera, hints=MetricHints(lidar_points=points), stamp=10.0)
    assert held_out_abs_rel(first.depth, truth, np.zeros(truth.shape, bool)) < 1e-4
    held = processor.process(rgb, camera, hints=MetricHints(note="no LiDAR scan within tolerance"), stamp=10.6)
    assert held.depth is not None and abs(held.scale.age - 0.6) < 1e-9 and "holding" in held.scale_status
    stopped = processor.process(rgb, camera, hints=MetricHints(note="no LiDAR scan within tolerance"), stamp=11.2)
    assert stopped.depth is None and stopped.points is None and stopped.relative is not None
    assert "scale_hold_s" in stopped.notes[0] and "no LiDAR scan within tolerance" in stopped.notes[0]


def test_sky_threshold_and_flying_pixels(fake):
    pinhole = PinholeCamera.with_size(160, 120)
    camera = CameraIntrinsics.from_K(160, 120, pinhole.K)
    rgb, truth, relative = fake.frame(pinhole, 0.0)
    config = ProcessingConfig(scale_mode="fixed", scale=1 / A, shift=-B / A, max_range=1000.0)
    plain = DepthProcessor(fake, config).process(rgb, camera)
    # The sky is already +Inf (p = B there, i.e. zero disparity); a threshold of 0.45 also masks the far wall.
    sky = DepthProcessor(fake, config.updated(sky_threshold=0.45)).process(rgb, camera)
    masked = relative < 0.45
    assert np.array_equal(np.isposinf(sky.depth), masked | np.isposinf(plain.depth))
    assert masked.sum() > np.isposinf(plain.depth).sum() > 0
    flying = DepthProcessor(fake, config.updated(flying_pixel_threshold=0.05)).process(rgb, camera)
    removed = np.isnan(flying.depth) & ~np.isnan(plain.depth)
    assert 0 < removed.mean() < 0.1  # object edges only
    assert np.isnan(flying.points["z"][removed]).all()
    # removed pixels have a neighbour more than 5 % away; kept ones do not
    d = np.where(np.isfinite(plain.depth), plain.depth, np.nan)
    jump = np.zeros_like(d)
    with warnings.catch_warnings():  # all-NaN neighbourhoods in the sky
        warnings.simplefilter("ignore", RuntimeWarning)
        jump[1:-1, 1:-1] = np.nanmax(np.abs(np.stack([d[:-2, 1:-1], d[2:, 1:-1], d[1:-1, :-2], d[1:-1, 2:]])
                                            - d[1:-1, 1:-1]), axis=0) / d[1:-1, 1:-1]
    inner = np.zeros_like(removed)
    inner[1:-1, 1:-1] = True
    finite = np.isfinite(d) & inner
    assert (jump[removed & inner] > 0.05).all() and not (jump[finite & ~removed] > 0.05).any()
