"""The temporal stage (engine/temporal_stage.py) through the frame engine, on maps with known answers: the drifting
sequence flickers at least 5x less with AbsRel no worse, a known per-frame affine is undone exactly, a scene cut
resets at once (and the scale follows), dropped frames weaken the blend by their gap, clipped pixels keep a
consistent earlier value, the state saves and restores exactly, and off leaves the map alone."""

import json
import math

import numpy as np
import pytest
import torch

from depthmaster_ros.processing_config import ProcessingConfig
from depthmaster_ros.engine.engine import FrameEngine
from depthmaster_ros.engine.job import FrameJob
from depthmaster_ros.eval.sequence_evaluation import evaluate_sequence
from depthmaster_ros.eval.temporal import frame_abs_rel
from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.parameters import spec
from depthmaster_ros.samples.drifting_sequence import NO_DRIFT, START_NS, drifting_sequence, sample_setups, \
    simulated_prediction
from depthmaster_ros.samples.sample_scene import PinholeCamera, render

PINHOLE = PinholeCamera.with_size(128, 96)
CAMERA = CameraIntrinsics.from_K(128, 96, PINHOLE.K)
SECOND = 1_000_000_000


def finish(engine, prediction, stamp_s, config, stream="cam", **kwargs):
    job = FrameJob(stream, START_NS + int(round(stamp_s * SECOND)), np.zeros((*prediction.shape, 3), np.uint8),
                   config, **kwargs)
    products = engine.finish(job, torch.from_numpy(np.asarray(prediction, dtype=np.float32)))
    assert products.failed is None, products.failed
    return products


def test_the_default_is_align_smooth():
    assert spec("temporal_mode").default == "align_smooth" and ProcessingConfig().temporal_mode == "align_smooth"


@pytest.fixture(scope="module")
def drifting():
    """4 s of the moving camera at 10 Hz, 96 x 72, in every scale mode of the sample scene."""
    pinhole = PinholeCamera.with_size(96, 72)
    sequence = drifting_sequence(pinhole, 40)
    camera = CameraIntrinsics.from_K(96, 72, pinhole.K)
    rows = evaluate_sequence(sequence, camera, sample_setups(sequence))
    return {(row["setup"], row["temporal_mode"]): row for row in rows}


@pytest.mark.parametrize("setup", ["fixed", "sparse_depth", "ground_plane"])
def test_the_drifting_sequence_flickers_5x_less_and_is_no_less_accurate(drifting, setup):
    """The default (align_smooth) at least 5x; align alone removes the drift but not the pixel noise (its floor
    here), at least 3x."""
    off, smooth, align = (drifting[setup, mode] for mode in ("off", "align_smooth", "align"))
    assert off["flicker"] > 0.03  # the simulated drift is there without the stage
    assert smooth["flicker"] * 5 <= off["flicker"], (smooth["flicker"], off["flicker"])
    assert align["flicker"] * 3 <= off["flicker"], (align["flicker"], off["flicker"])
    for on in (smooth, align):
        assert on["abs_rel"] <= off["abs_rel"]
        assert on["resets"] == 0 and on["frames_without_depth"] == 0


def test_a_known_affine_is_undone_exactly():
    """A still camera whose every frame is the first one under a known gain and offset (nothing clipped): the
    stabilised maps are the first map, and the reported gain and offset are the inverse affine."""
    _, truth = render(PINHOLE, t=1.0)
    first = 0.1 + 0.8 * simulated_prediction(truth)  # inside (0, 1): no pixel clipped
    for mode in ("align", "align_smooth"):
        engine = FrameEngine(None)
        config = ProcessingConfig(temporal_mode=mode)
        assert np.array_equal(finish(engine, first, 0.0, config).relative, first)
        for k, (gain, offset) in enumerate([(1.08, -0.03), (0.93, 0.04), (1.02, 0.0)], start=1):
            products = finish(engine, gain * first + offset, 0.1 * k, config)
            report = products.stage_reports["temporal"]
            assert report.status == "aligned" and report.inlier_ratio == 1.0 and report.frames == k
            assert abs(report.gain - 1 / gain) < 1e-5 and abs(report.offset + offset / gain) < 1e-5
            assert np.abs(products.relative - first).max() < 2e-5


def test_a_scene_cut_resets_at_once_and_the_scale_follows():
    """After the cut the stage starts from the new frame, and the scale tracker (a long time constant here) takes
    that frame's fit outright instead of smoothing it with fits made in the old reference."""
    sequence = drifting_sequence(PINHOLE, 10, cut_at=5)
    lidar = sample_setups(sequence)[1]
    config = ProcessingConfig(scale_mode="sparse_depth", scale_time_constant=5.0, max_range=1000.0)
    engine = FrameEngine(None)
    results = [finish(engine, frame.prediction, (frame.stamp_ns - START_NS) / SECOND, config, camera=CAMERA,
                      measurements=measurements) for frame, measurements in zip(sequence, lidar.measurements)]
    reports = [products.stage_reports["temporal"] for products in results]
    assert [report.status for report in reports] == ["anchored"] + ["aligned"] * 4 + ["anchored"] + ["aligned"] * 4
    cut = reports[5]  # too little agrees, or no positive gain maps one view onto the other
    assert "agrees with the previous frame" in cut.detail and cut.inlier_ratio < 0.5 or "not positive" in cut.detail
    assert reports[5].resets == 1 and reports[9].frames == 4
    assert min(report.inlier_ratio for report in reports[6:]) > 0.8
    for index in (5, 6, 9):  # right after the cut the depth is as good as before it
        assert frame_abs_rel(results[index].depth, sequence[index].truth) < 0.03
    assert results[5].scale.scale != pytest.approx(results[4].scale.scale, rel=0.05)  # a new fit, not smoothed


def test_dropped_frames_weaken_the_blend_by_their_gap():
    """Frames dt apart blend with the weight exp(-dt / tau) of the previous stabilised map, tapered by the
    difference; beyond temporal_max_gap, and when the stamp goes back, the frame resets."""
    _, truth = render(PINHOLE, t=1.0)
    first = 0.1 + 0.8 * simulated_prediction(truth)
    change = np.zeros_like(first)
    change[30:50, 40:70] = 0.008  # a small local change (inside temporal_inlier_threshold)
    config = ProcessingConfig(temporal_mode="align_smooth", temporal_time_constant=0.2, temporal_inlier_threshold=0.02,
                              temporal_max_gap=1.0)
    for gap in (0.1, 0.5):  # one frame apart at 10 Hz; four frames dropped
        engine = FrameEngine(None)
        finish(engine, first, 0.0, config)
        products = finish(engine, first + change, gap, config)
        report = products.stage_reports["temporal"]
        assert report.status == "aligned" and math.isclose(report.gap_s, gap)
        aligned = (report.gain * torch.from_numpy(first + change) + report.offset).numpy()
        u = np.clip((aligned - first) / config.temporal_inlier_threshold, -1, 1)
        blend = math.exp(-gap / 0.2) * (1 - u * u) ** 2
        assert np.abs(products.relative - (aligned + blend * (first - aligned))).max() < 1e-6
        kept = (products.relative[30:50, 40:70] - first[30:50, 40:70]).mean() / 0.008  # of the change
        assert (0.55 < kept < 0.6) if gap == 0.1 else (0.93 < kept < 0.96)  # 1 - exp(-gap / 0.2) * (1 - 0.4^2)^2
    engine = FrameEngine(None)
    finish(engine, first, 0.0, config)
    late = finish(engine, 0.5 * first + 0.2, 1.5, config)
    assert late.stage_reports["temporal"].status == "anchored" and np.array_equal(late.relative, 0.5 * first + 0.2)
    assert "temporal_max_gap" in late.stage_reports["temporal"].detail
    back = finish(engine, first, 1.2, config).stage_reports["temporal"]
    assert back.status == "anchored" and "went back by 0.300 s" in back.detail and back.resets == 2


def test_clipped_pixels_keep_a_consistent_earlier_value():
    """Where the model clipped p at 1 (0), the pixel is at least as near (far) as the clip: the earlier stabilised
    value stays if it satisfies that, the clip's value replaces it if not."""
    _, truth = render(PINHOLE, t=1.0)
    first = 0.1 + 0.8 * simulated_prediction(truth)
    first[10:14, 10:14] = 0.98  # near, will be clipped and stay near
    first[20:24, 20:24] = 0.50  # will be clipped too: something near appeared there
    first[40:44, 40:44] = 0.03  # far, will be clipped at 0
    second = np.clip(1.1 * first - 0.05, 0.0, 1.0)  # this frame's normalisation clips those
    second[20:24, 20:24] = 1.0
    config = ProcessingConfig(temporal_mode="align")
    engine = FrameEngine(None)
    finish(engine, first, 0.0, config)
    products = finish(engine, second, 0.1, config)
    report = products.stage_reports["temporal"]
    assert abs(report.gain - 1 / 1.1) < 1e-4 and abs(report.offset - 0.05 / 1.1) < 1e-4
    near_bound = report.gain * 1.0 + report.offset  # about 0.955
    assert np.allclose(products.relative[10:14, 10:14], 0.98)  # the earlier 0.98 satisfies ">= 0.955"
    assert np.allclose(products.relative[20:24, 20:24], near_bound)  # the earlier 0.50 does not
    assert np.allclose(products.relative[40:44, 40:44], 0.03)  # ">= far as 0.045": the earlier 0.03 stays


def test_state_saves_and_restores_exactly():
    sequence = drifting_sequence(PINHOLE, 8)
    lidar = sample_setups(sequence)[1].measurements
    config = ProcessingConfig(scale_mode="sparse_depth", max_range=1000.0)

    def run(engine, frames):
        return [finish(engine, sequence[k].prediction, 0.1 * k, config, camera=CAMERA, measurements=lidar[k])
                for k in frames]

    whole = run(FrameEngine(None), range(8))
    first = FrameEngine(None)
    run(first, range(4))
    saved = json.loads(json.dumps(first.state()))  # as the bag tool's progress.json holds it
    assert set(saved["cam"]) == {"temporal", "scale"} and saved["cam"]["temporal"]["frames"] == 3
    resumed_engine = FrameEngine(None)
    resumed_engine.restore(saved)
    resumed = run(resumed_engine, range(4, 8))
    for a, b in zip(whole[4:], resumed):
        assert np.array_equal(a.relative, b.relative) and np.array_equal(a.depth, b.depth, equal_nan=True)
        assert a.scale == b.scale and a.stage_reports == b.stage_reports
    fresh = run(FrameEngine(None), range(4, 8))
    assert not np.array_equal(fresh[1].relative, whole[5].relative)  # the state mattered


def test_off_leaves_the_map_alone_and_changes_re_anchor():
    sequence = drifting_sequence(PINHOLE, 4, drift=NO_DRIFT)
    engine = FrameEngine(None)
    off = ProcessingConfig(temporal_mode="off", scale_mode="fixed", scale=0.3, shift=0.3)
    products = finish(engine, sequence[0].prediction, 0.0, off)
    assert np.array_equal(products.relative, sequence[0].prediction) and products.stage_reports == {}
    on = off.updated(temporal_mode="align")
    report = finish(engine, sequence[1].prediction, 0.1, on).stage_reports["temporal"]
    assert report.status == "anchored" and "since temporal_mode was off" in report.detail and report.resets == 0
    assert finish(engine, sequence[2].prediction, 0.2, on).stage_reports["temporal"].status == "aligned"
    recalibrated = finish(engine, sequence[3].prediction, 0.3, on.updated(scale=0.31)).stage_reports["temporal"]
    assert recalibrated.status == "anchored" and "fixed scale changed" in recalibrated.detail
    small = finish(engine, sequence[3].prediction[::2, ::2], 0.4, on).stage_reports["temporal"]
    assert small.status == "anchored" and "image size changed to 64x48" in small.detail


def test_the_scale_is_not_smoothed_across_a_change_of_normalisation():
    """Frames in the reference's normalisation, then (the stage switched off) in their own: the scale tracker
    takes the first fit after the switch as it is (a long scale_time_constant would otherwise blend them)."""
    _, truth = render(PINHOLE, t=1.0)
    first = 0.1 + 0.8 * simulated_prediction(truth)
    measured = {"sparse_depth": np.where(np.random.default_rng(0).random(truth.shape) < 0.1, truth, np.nan)}
    config = ProcessingConfig(scale_mode="sparse_depth", scale_time_constant=10.0, max_range=1000.0,
                              temporal_mode="align")
    engine = FrameEngine(None)
    for k in range(3):
        products = finish(engine, first, 0.1 * k, config, camera=CAMERA, measurements=measured)
    assert products.stage_reports["temporal"].frames == 2
    switched = finish(engine, 0.5 * first + 0.3, 0.3, config.updated(temporal_mode="off"), camera=CAMERA,
                      measurements=measured)
    assert frame_abs_rel(switched.depth, truth) < 1e-3  # the new normalisation's own fit, not a blend
    assert abs(switched.scale.scale - 2 * products.scale.scale) < 1e-3 * products.scale.scale


def test_the_gpu_code_path_gives_the_cpu_results(monkeypatch):
    """On a GPU the stage works on the tensors (torch), on the CPU in numpy: the torch path, run here on CPU
    tensors, gives the numpy path's maps (to the grid's resampling: torch's and OpenCV's area averages differ at
    non-integer factors) and the same saved state layout."""
    from depthmaster_ros.engine import temporal_stage

    sequence = drifting_sequence(PinholeCamera.with_size(160, 120), 5, cut_at=3)  # a grid resampled to 128 x 96
    config = ProcessingConfig(temporal_mode="align_smooth")

    def run():
        engine = FrameEngine(None)
        return [finish(engine, frame.prediction, 0.1 * k, config) for k, frame in enumerate(sequence)], engine

    numpy_results, numpy_engine = run()
    monkeypatch.setattr(temporal_stage, "full_size", lambda relative: (torch.as_tensor(relative).float(), torch))
    torch_results, torch_engine = run()
    for a, b in zip(numpy_results, torch_results):
        assert a.stage_reports["temporal"].status == b.stage_reports["temporal"].status
        assert np.abs(a.relative - b.relative).max() < 2e-3
    state = torch_engine.state()["cam"]["temporal"]
    assert state["previous"]["shape"] == [120, 160] and json.loads(json.dumps(state)) == state
    assert numpy_engine.state()["cam"]["temporal"].keys() == state.keys()


def test_the_blend_moves_a_pixel_at_most_0_29_thresholds():
    """Whatever the previous map holds, the blend moves a pixel by at most max x (1 - x^2)^2 = 0.286 times
    temporal_inlier_threshold (at a difference of threshold / sqrt(5)), and not at all from the threshold on."""
    from depthmaster_ros.engine.temporal_stage import blend

    config = ProcessingConfig(temporal_inlier_threshold=0.03, temporal_time_constant=0.3)
    aligned = np.full(100001, 0.5, np.float32)
    previous = aligned + np.linspace(-0.1, 0.1, aligned.size, dtype=np.float32)
    moved = np.abs(blend(np, aligned, previous, 0.0, config) - aligned)  # gap 0: the full weight
    bound = 0.03 * (1 / math.sqrt(5)) * (4 / 5) ** 2
    assert bound * 0.999 < moved.max() <= bound * 1.0001
    assert np.all(moved[np.abs(previous - aligned) >= 0.03] == 0)
