"""The drifting sample sequence: its predictions are the model's training target (the normalised square-root
disparity of each frame) under a per-frame affine distortion, its poses are the rendered camera's, and its
static, cut and gapped variants are what they say."""

import numpy as np

from depthmaster_ros.samples.drifting_sequence import NO_DRIFT, START_NS, Drift, drifting_sequence, \
    simulated_prediction
from depthmaster_ros.samples.sample_scene import PinholeCamera, render, view_pose

PINHOLE = PinholeCamera.with_size(64, 48)


def unclipped(p):
    return (p > 0) & (p < 1)


def test_without_drift_the_prediction_is_the_normalised_sqrt_disparity():
    _, truth = render(PINHOLE, t=0.7)
    p = simulated_prediction(truth)
    y = np.sqrt(1.0 / truth[np.isfinite(truth)].astype(np.float64))
    low, high = np.quantile(y, [0.02, 0.98])
    inside = unclipped(p) & np.isfinite(truth)
    expected = (np.sqrt(1.0 / truth[inside].astype(np.float64)) - low) / (high - low)
    assert np.abs(p[inside] - expected).max() < 1e-4  # torch's float32 quantiles
    assert (p[~np.isfinite(truth)] == 0).all()  # the sky saturates at 0
    valid = np.isfinite(truth)  # about 2 % of the scene beyond each quantile saturates
    assert 0.01 < (p == 1)[valid].mean() < 0.05 and 0.01 < (p == 0)[valid].mean() < 0.05


def test_each_frame_gets_its_own_affine_distortion():
    still = drifting_sequence(PINHOLE, 3, drift=Drift(gain=0.1, offset=0.05, noise=0.0), static=True, start=1.0)
    assert all(np.array_equal(frame.truth, still[0].truth) for frame in still)
    ideal = simulated_prediction(still[0].truth)
    gains = []
    for frame in still:
        both = unclipped(frame.prediction) & unclipped(ideal)
        gain, offset = np.polyfit(ideal[both], frame.prediction[both], 1)
        assert np.abs(gain * ideal[both] + offset - frame.prediction[both]).max() < 1e-5  # exactly affine
        gains.append(gain)
    assert np.ptp(gains) > 0.02  # and a different one each frame


def test_poses_stamps_cuts_and_gaps():
    moving = drifting_sequence(PINHOLE, 4, drift=NO_DRIFT, cut_at=2)
    assert [frame.stamp_ns for frame in moving] == [START_NS + k * 100_000_000 for k in range(4)]
    assert [frame.cut for frame in moving] == [False, False, True, False]
    assert np.array_equal(moving[1].truth, render(PINHOLE, t=0.1)[1])
    assert np.allclose(moving[1].pose[1], view_pose(0.1)[1]) and not np.allclose(moving[3].pose[0],
                                                                                    view_pose(0.3)[0])
    gapped = drifting_sequence(PINHOLE, 3, stamps_s=[0.0, 0.1, 0.6], drift=NO_DRIFT)
    assert [frame.stamp_ns - START_NS for frame in gapped] == [0, 100_000_000, 600_000_000]
    assert np.array_equal(gapped[2].truth, render(PINHOLE, t=0.6)[1])
    again = drifting_sequence(PINHOLE, 4, cut_at=2)
    assert all(np.array_equal(a.prediction, b.prediction) for a, b in zip(again, drifting_sequence(PINHOLE, 4,
                                                                                                   cut_at=2)))


def test_the_long_loop_goes_out_and_back_to_where_it_started():
    """24 s at 10 Hz: 2.5 m forward along the walk by half-way, then back; the last view is the first; shorter
    loops go proportionally less far and have loop * 10 + 1 frames 0.1 s apart."""
    from depthmaster_ros.samples.drifting_sequence import LOOP_SECONDS, long_loop, loop_path_time

    assert loop_path_time(0.0, LOOP_SECONDS) == 0.0 and loop_path_time(12.0, LOOP_SECONDS) == 10.0
    assert abs(loop_path_time(24.0, LOOP_SECONDS)) < 1e-12 and loop_path_time(1.5, 3.0) == 1.25
    loop = drifting_sequence(PINHOLE, 5, stamps_s=[0.0, 6.0, 12.0, 18.0, 24.0], drift=NO_DRIFT, loop=LOOP_SECONDS)
    assert np.array_equal(loop[-1].truth, loop[0].truth) and np.allclose(loop[-1].pose[1], loop[0].pose[1])
    assert np.allclose(loop[2].pose[1], view_pose(10.0)[1]) and abs(loop[2].pose[1][2] - 2.5) < 1e-9
    assert np.array_equal(loop[1].truth, loop[3].truth)  # the way back passes the same views
    assert np.array_equal(loop[-1].prediction, loop[0].prediction)  # no drift: the same view, the same map
    short = long_loop(PINHOLE, seconds=2.0)
    assert len(short) == 21 and short[-1].stamp_ns - short[0].stamp_ns == 2 * 1_000_000_000
    assert np.array_equal(short[-1].truth, short[0].truth) and abs(short[10].pose[1][2] - 0.25 * 10.0 / 12) < 1e-9
    assert not np.array_equal(short[-1].prediction, short[0].prediction)  # another draw of the drift
