"""The frame engine (no ROS): outputs and how they relate, typed reasons for missing ones, batching by size,
padding for static-shape backends, per-stream state that saves and restores, one job's failure isolated, and the
scale modes end to end with the test double injected through the backend factory."""

import warnings

import numpy as np
import pytest

from depthmaster_ros.colormap import colorize
from depthmaster_ros.processing_config import ProcessingConfig
from depthmaster_ros.engine.engine import FrameEngine
from depthmaster_ros.engine.job import FrameJob, Why
from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.model.backends import ModelConfig, PipelineBackend, create_backend
from depthmaster_ros.samples.sample_scene import FLOOR_Y, PinholeCamera, render

from fake_backend import A, B, FakeBackend, injected


@pytest.fixture(scope="module")
def frame():
    camera = PinholeCamera.with_size(64, 48)
    rgb, _ = render(camera)
    return rgb, CameraIntrinsics.from_K(64, 48, camera.K)


CONFIG = ProcessingConfig(processing_res=64, scale_mode="fixed", scale=0.6, shift=0.15)


def job(rgb, camera=None, config=CONFIG, stamp=0.0, stream="", **kwargs):
    return FrameJob(stream, int(round(stamp * 1e9)), rgb, config, camera=camera, **kwargs)


@pytest.fixture
def engine(pipeline):
    return FrameEngine(PipelineBackend(pipeline))


def test_all_outputs_are_consistent(engine, frame, pipeline):
    rgb, camera = frame
    products, = engine.run([job(rgb, camera)])
    assert np.array_equal(products.relative, pipeline(rgb, processing_res=64))  # the numpy API, the same path
    assert np.array_equal(products.colored, colorize(products.relative, "turbo"))
    a = 0.6 * products.relative.astype(np.float64) + 0.15
    expected = 1 / (a * a)
    inside = (expected >= 0.1) & (expected <= 100.0)
    assert np.allclose(products.depth[inside], expected[inside], rtol=1e-5)
    assert products.points.shape == (48, 64) and np.allclose(products.points["z"][inside], products.depth[inside])
    assert products.scale.scale == 0.6 and products.scale.source == "fixed" and products.missing == {}


def test_only_requested_outputs(engine, frame):
    rgb, camera = frame
    products, = engine.run([job(rgb, camera, outputs={"relative"})])
    assert products.colored is None and products.depth is None and products.points is None
    products, = engine.run([job(rgb, camera, outputs={"depth"})])
    assert products.depth is not None and products.points is None and products.colored is None
    with pytest.raises(ValueError, match="unknown outputs"):
        job(rgb, camera, outputs={"mesh"})


def test_typed_reasons_when_metric_is_impossible(engine, frame):
    rgb, camera = frame
    products, = engine.run([job(rgb, None, camera_missing="no camera_info received yet")])
    assert products.depth is None and products.points is None and products.relative is not None
    assert products.missing["depth"].why is Why.NO_CAMERA_INFO
    assert products.missing["depth"].detail == "no camera_info received yet"
    products, = engine.run([job(rgb, camera, config=CONFIG.updated(scale_mode="none"))])
    reason = products.missing["depth"]
    assert reason.why is Why.SCALE_MODE_NONE and "set scale_mode to one of fixed, sparse_depth" in reason.detail
    assert products.missing["points"] is reason and products.metric_missing() is reason


def test_output_scale_and_stride(engine, frame):
    rgb, camera = frame
    products, = engine.run([job(rgb, camera, config=CONFIG.updated(output_scale=0.5, cloud_stride=3))])
    assert products.relative.shape == products.depth.shape == (24, 32)
    assert (products.camera.width, products.camera.height) == (32, 24)
    assert np.isclose(products.camera.fx, camera.fx / 2)
    assert products.points.shape == (8, 11)


def test_camera_size_mismatch_fails_that_job_only(engine, frame):
    rgb, camera = frame
    bad, good = engine.run([job(rgb, camera.scaled(32, 24)), job(rgb, camera)])
    assert bad.failed.why is Why.FAILED and "camera info is 32x24 but the image is 64x48" in bad.failed.detail
    assert good.failed is None and good.depth is not None
    with pytest.raises(ValueError, match="max_range"):
        ProcessingConfig(min_range=10.0, max_range=5.0)
    with pytest.raises(ValueError, match="read-only"):
        ProcessingConfig(checkpoint="elsewhere")


# ---- batching, padding, state, with the test double injected through the backend factory
@pytest.fixture
def fake():
    fake = FakeBackend()
    with injected(fake):
        yield fake


def test_the_factory_creates_the_injected_backend(fake):
    assert create_backend(ModelConfig(backend="test_double")) is fake
    with pytest.raises(ValueError, match="unknown backend 'nope'; expected one of eager, compile, cuda_graphs"):
        create_backend(ModelConfig(backend="nope"))


def frames(fake, count, size=(96, 72), start=0.0):
    pinhole = PinholeCamera.with_size(*size)
    camera = CameraIntrinsics.from_K(size[0], size[1], pinhole.K)
    return [(*fake.frame(pinhole, start + 0.1 * i), camera) for i in range(count)]


def test_batches_by_size_and_pads_static_shapes(fake):
    small, large = frames(fake, 2, (64, 48)), frames(fake, 1, (96, 72))
    config = ProcessingConfig(scale_mode="none")
    jobs = [job(small[0][0], config=config), job(large[0][0], config=config), job(small[1][0], config=config)]
    engine = FrameEngine(fake)
    results = engine.run(jobs)
    assert fake.batch_sizes == [2, 1] and engine.passes == 2 and engine.frames_passed == 3
    assert [r.relative.shape for r in results] == [(48, 64), (72, 96), (48, 64)]  # job order kept
    assert np.array_equal(results[2].relative, small[1][2])
    fake.batch_sizes.clear()
    FrameEngine(fake, max_batch=1).run(jobs)
    assert fake.batch_sizes == [1, 1, 1]
    fake.batch_sizes.clear()
    fake.static_shapes = True
    padded = FrameEngine(fake, max_batch=3).run(jobs)
    assert fake.batch_sizes == [3, 3] and len(padded) == 3  # padded passes, only the real frames come back
    assert np.array_equal(padded[1].relative, large[0][2])


def test_a_failed_pass_fails_its_jobs_only(fake):
    (rgb, _, relative, _), = frames(fake, 1)
    unknown = np.zeros((10, 12, 3), np.uint8)  # the double has no map for it: its pass raises
    config = ProcessingConfig(scale_mode="none")
    served, failed = FrameEngine(fake).run([job(rgb, config=config), job(unknown, config=config)])
    assert np.array_equal(served.relative, relative) and served.failed is None
    assert failed.failed.why is Why.FAILED and "KeyError" in failed.failed.detail


def test_stream_state_saves_and_restores(fake):
    sequence = frames(fake, 5)
    config = ProcessingConfig(scale_mode="sparse_depth", scale_time_constant=0.3, max_range=1000.0)
    rng = np.random.default_rng(3)

    def jobs(items, start):
        out = []
        for i, (rgb, truth, _, camera) in enumerate(items):
            noisy = truth * (1 + 0.05 * rng.standard_normal(truth.shape))
            sparse = np.where(rng.random(truth.shape) < 0.1, noisy, np.nan)
            out.append(job(rgb, camera, config=config, stamp=start + 0.1 * i, stream="cam",
                           measurements={"sparse_depth": sparse}))
        return out

    all_jobs = jobs(sequence, 0.0)
    whole = FrameEngine(fake)
    expected = [p.scale for p in whole.run(all_jobs)]
    first = FrameEngine(fake)
    first.run(all_jobs[:3])
    second = FrameEngine(fake)
    second.restore(first.state())
    resumed = [p.scale for p in second.run(all_jobs[3:])]
    assert resumed == expected[3:]
    fresh = [p.scale for p in FrameEngine(fake).run(all_jobs[3:])]
    assert fresh != expected[3:]  # the smoothing state mattered
    other = FrameEngine(fake)
    other.run([job(*sequence[0][:1], sequence[0][3], config=config, stream="other",
                   measurements={"sparse_depth": sequence[0][1]})])
    assert set(other.state()) == {"other"} and "scale" in other.state()["other"]


# ---- metric modes through the engine, with the test double
def held_out_abs_rel(depth, truth, measured_mask):
    ok = np.isfinite(depth) & np.isfinite(truth) & ~measured_mask
    assert ok.sum() > 1000
    return float(np.mean(np.abs(depth[ok] - truth[ok]) / truth[ok]))


def test_sparse_depth_mode_recovers_meters_at_held_out_pixels(fake):
    (rgb, truth, _, camera), = frames(fake, 1, (160, 120), 1.0)
    mask = np.random.default_rng(0).random(truth.shape) < 0.03
    config = ProcessingConfig(scale_mode="sparse_depth", max_range=1000.0)
    products, = FrameEngine(fake).run([job(rgb, camera, config, measurements={"sparse_depth": np.where(mask, truth,
                                                                                                       0.0)})])
    assert products.scale.source == "sparse_depth" and abs(products.scale.scale - 1 / A) < 1e-5
    assert held_out_abs_rel(products.depth, truth, mask) < 1e-4
    assert products.scale.pairs == int((mask & np.isfinite(truth)).sum())


def test_ground_plane_mode_and_missing_inputs(fake):
    (rgb, truth, _, camera), = frames(fake, 1, (160, 120), 0.5)
    config = ProcessingConfig(scale_mode="ground_plane", camera_height=FLOOR_Y, max_range=1000.0)
    engine = FrameEngine(fake)
    products, = engine.run([job(rgb, camera, config, stamp=0.0)])
    assert held_out_abs_rel(products.depth, truth, np.zeros(truth.shape, bool)) < 1e-4
    # No camera info: nothing to project the floor with; the fit is held, then stops.
    held, = engine.run([job(rgb, None, config, stamp=0.5, camera_missing="no camera_info received yet")])
    assert held.depth is None and held.missing["depth"].why is Why.NO_CAMERA_INFO
    wrong, = FrameEngine(fake).run([job(rgb, camera, config.updated(camera_height=0.6))])
    assert wrong.scale is not None  # a wrong height still fits (the floor is flat) but halves every depth
    finite = np.isfinite(products.depth)
    assert np.allclose(wrong.depth[finite] / products.depth[finite], 0.5, rtol=1e-4)
    no_sensor, = engine.run([job(rgb, camera, config.updated(scale_mode="sparse_depth"), stamp=0.7)])
    assert no_sensor.depth is None and no_sensor.missing["depth"].why is Why.NO_FIT
    assert "no sparse depth image for this frame" in no_sensor.missing["depth"].detail


def test_pointcloud_mode_hold_then_stop(fake):
    (rgb, truth, _, camera), = frames(fake, 1, (160, 120), 2.0)
    v, u = np.mgrid[5:120:10, 0:160].reshape(2, -1)
    z = truth[v, u]
    ok = np.isfinite(z)
    points = np.stack([(u[ok] - camera.cx) * z[ok] / camera.fx, (v[ok] - camera.cy) * z[ok] / camera.fy, z[ok]], 1)
    config = ProcessingConfig(scale_mode="pointcloud", scale_hold_s=1.0, max_range=1000.0)
    engine = FrameEngine(fake)
    first, = engine.run([job(rgb, camera, config, stamp=10.0, measurements={"lidar_points": points})])
    assert held_out_abs_rel(first.depth, truth, np.zeros(truth.shape, bool)) < 1e-4
    note = {"lidar_points": "no LiDAR scan within metric_source_tolerance"}
    held, = engine.run([job(rgb, camera, config, stamp=10.6, measurement_notes=note)])
    assert held.depth is not None and abs(held.scale.age - 0.6) < 1e-9 and "holding" in held.scale_status
    stopped, = engine.run([job(rgb, camera, config, stamp=11.2, measurement_notes=note)])
    assert stopped.depth is None and stopped.points is None and stopped.relative is not None
    reason = stopped.missing["depth"]
    assert reason.why is Why.SCALE_EXPIRED and "scale_hold_s" in reason.detail and note["lidar_points"] in reason.detail


def test_sky_threshold_and_flying_pixels(fake):
    (rgb, truth, relative, camera), = frames(fake, 1, (160, 120), 0.0)
    config = ProcessingConfig(scale_mode="fixed", scale=1 / A, shift=-B / A, max_range=1000.0)

    def run(config):
        return FrameEngine(fake).run([job(rgb, camera, config)])[0]

    plain = run(config)
    # The sky is already +Inf (p = B there, i.e. zero disparity); a threshold of 0.45 also masks the far wall.
    sky = run(config.updated(sky_threshold=0.45))
    masked = relative < 0.45
    assert np.array_equal(np.isposinf(sky.depth), masked | np.isposinf(plain.depth))
    assert masked.sum() > np.isposinf(plain.depth).sum() > 0
    flying = run(config.updated(flying_pixel_threshold=0.05))
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


def test_the_documented_import_of_the_configuration_still_works():
    """`from depthmaster_ros.engine import ProcessingConfig` was the documented import before it moved up a layer."""
    from depthmaster_ros.engine import ProcessingConfig as documented

    assert documented is ProcessingConfig
