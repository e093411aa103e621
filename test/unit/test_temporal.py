"""The flicker metric (eval/temporal.py) on the sample scene's moving camera: known answers for a consistent
sequence, a known per-frame scale jitter and a prediction that does not follow the motion; the reprojection with
the known poses; scene cuts and frames without depth left out."""

import math

import numpy as np
import pytest

from depthmaster_ros.eval.temporal import frame_abs_rel, pair_flicker, sequence_scores, static_correspondences
from depthmaster_ros.geometry.projection import sample_bilinear
from depthmaster_ros.samples.sample_scene import PinholeCamera, render, view_pose

PINHOLE = PinholeCamera.with_size(96, 72)


@pytest.fixture(scope="module")
def walk():
    """Truth (float64) and poses of 6 frames of the moving camera at 10 Hz."""
    times = [0.5 + 0.1 * k for k in range(6)]
    return [render(PINHOLE, t=t)[1].astype(np.float64) for t in times], [view_pose(t) for t in times]


def test_a_consistent_sequence_has_no_flicker(walk):
    truths, poses = walk
    scores = sequence_scores([2.5 * z for z in truths], truths, poses, PINHOLE.K)
    assert scores["pairs"] == 5 and scores["points_per_pair"] > 3000
    assert scores["flicker"] < 1e-12
    assert math.isclose(scores["abs_rel"], 1.5, rel_tol=1e-6)  # every depth 2.5 times too far


def test_a_known_scale_jitter_gives_its_log_ratio(walk):
    truths, poses = walk
    jitter = [1.0, 1.1, 0.95, 0.95, 1.2, 1.0]
    scores = sequence_scores([s * z for s, z in zip(jitter, truths)], truths, poses, PINHOLE.K)
    expected = [abs(math.log(b / a)) for a, b in zip(jitter, jitter[1:])]
    assert np.allclose(scores["flicker_per_pair"], expected, atol=1e-9, rtol=0)
    assert np.allclose(scores["abs_rel_per_frame"], [abs(s - 1) for s in jitter], atol=1e-6)


def test_a_prediction_that_ignores_the_motion_scores_the_true_change(walk):
    """A map that stays put while the camera walks forward: its error is the truth's own change of log depth
    at the static points, which is not zero (the camera moves 2.5 cm per frame)."""
    truths, poses = walk
    pairs = static_correspondences(truths[2], truths[3], poses[2], poses[3], PINHOLE.K)
    frozen, used = pair_flicker(truths[3], truths[3], pairs)
    assert used == len(pairs)
    held = truths[3][pairs.rows, pairs.cols]
    previous = sample_bilinear(truths[3], pairs.u, pairs.v)
    change = np.abs(np.log(pairs.truth_current / pairs.truth_previous) - np.log(held / previous))
    assert math.isclose(frozen, change.mean(), rel_tol=1e-9) and frozen > 0.002


def test_static_points_follow_the_known_camera_motion():
    _, before = render(PINHOLE, t=1.0)
    _, after = render(PINHOLE, t=2.0)  # 25 cm forward, turned and shifted
    valid = int(np.isfinite(after).sum())
    right = static_correspondences(before, after, view_pose(1.0), view_pose(2.0), PINHOLE.K)
    assert len(right) > 0.8 * valid  # most of the scene is seen in both, at the reprojected depth
    # the reprojected depth agrees with the earlier frame's truth there (that is what kept them)
    assert np.all(np.abs(right.truth_previous - right.truth_current) < 0.2 * right.truth_current)
    wrong = static_correspondences(before, after, view_pose(2.0), view_pose(2.0), PINHOLE.K)
    assert len(wrong) < 0.6 * valid  # without the motion, far fewer points are found static
    with pytest.raises(ValueError, match="one size"):
        static_correspondences(before[:10], after, view_pose(1.0), view_pose(2.0), PINHOLE.K)


def test_cuts_and_frames_without_depth_are_left_out(walk):
    truths, poses = walk
    depths = [z * s for z, s in zip(truths, [1.0, 1.0, 1.0, 2.0, 2.0, 2.0])]
    assert sequence_scores(depths, truths, poses, PINHOLE.K, cuts=[3])["flicker"] < 1e-12
    assert math.isclose(sequence_scores(depths, truths, poses, PINHOLE.K)["flicker"], math.log(2) / 5)
    depths[1] = None
    scores = sequence_scores(depths, truths, poses, PINHOLE.K, cuts=[3])
    assert scores["pairs"] == 2 and scores["frames"] == 5
    with pytest.raises(ValueError, match="one each per frame"):
        sequence_scores(depths[:3], truths, poses, PINHOLE.K)


def test_abs_rel_skips_the_codes_of_rep_117():
    truth = np.array([[1.0, 2.0], [np.inf, 4.0]])
    depth = np.array([[1.1, np.inf], [5.0, np.nan]])
    assert math.isclose(frame_abs_rel(depth, truth), 0.1)
