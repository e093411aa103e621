"""TAE and metric TAE (eval/tae.py) on sequences whose answer is known by hand or by an independent formula: a
plane seen by a camera moving sideways by whole pixels, a still camera with known per-frame errors, one affine in
disparity per sequence undone by the alignment, the rounding (half to even) and the scatter (the last write stays)
of the reprojection, frames without a prediction; and the ScanNet layout written from the sample scene and read
back (eval/scannet_sequences.py)."""

import math

import numpy as np
import pytest
from PIL import Image

from depthmaster_ros.eval.datasets import DatasetError
from depthmaster_ros.eval.scannet_sequences import START_NS, read_scene, scene_folders, write_scene
from depthmaster_ros.eval.tae import MIN_DEPTH, SCANNET_TAE, SYNTHETIC_TAE, TaeProtocol, directed_error, \
    last_writes, metric_tae, sequence_tae, tae, to_truth_size
from depthmaster_ros.samples.drifting_sequence import drifting_sequence
from depthmaster_ros.samples.sample_scene import PinholeCamera, render, view_pose

K = np.array([[100.0, 0.0, 31.5], [0.0, 100.0, 23.5], [0.0, 0.0, 1.0]])


def pose(x=0.0, y=0.0, z=0.0):
    matrix = np.eye(4)
    matrix[:3, 3] = x, y, z
    return matrix


def test_a_plane_seen_by_a_camera_moving_sideways_by_whole_pixels():
    """A wall 2 m ahead, the camera 6 cm to the right in the second frame: every point moves exactly 3 pixels.
    Frame 1 predicts 10 % too far, frame 2 exactly: 1 -> 2 compares 2.2 m with 2 m (0.1 of frame 2's depth),
    2 -> 1 compares 2 m with 2.2 m (1/11 of frame 1's): TAE = 100 (0.1 + 1/11) / 2."""
    truth = np.full((48, 64), 2.0)
    poses = [pose(), pose(x=0.06)]  # fx * 0.06 / 2 = 3 pixels
    depths = [1.1 * truth, truth.copy()]
    expected = 100 * (0.1 + 1 / 11) / 2
    assert metric_tae(depths, [truth, truth], poses, K) == pytest.approx(expected, rel=1e-12)
    assert metric_tae([truth, truth], [truth, truth], poses, K) == pytest.approx(0.0, abs=1e-12)
    # one direction by hand: the points of frame 1 at 2.2 m land 3/1.1 = 2.7 pixels to the left, rounded to 3
    forward = np.linalg.inv(poses[1]) @ poses[0]
    assert directed_error(depths[0], depths[1], forward, K) == pytest.approx(0.1, rel=1e-12)
    assert directed_error(depths[1], depths[0], np.linalg.inv(forward), K) == pytest.approx(1 / 11, rel=1e-12)


def test_reprojected_positions_round_half_to_even():
    """A 2 m wall seen from 0.5 m further left, fx 2 and the principal point at 0: every point lands exactly half
    way between two pixels, and half to even puts all of them on even columns, where frame 2 agrees (0); rounding
    half up would put them on their own columns, half of them odd, where frame 2 is 4 m (0.25)."""
    matrix = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    depth_from = np.full((4, 8), 2.0)
    depth_to = np.where(np.arange(8) % 2 == 0, 2.0, 4.0) * np.ones((4, 1))
    for step in (-0.5, 0.5):
        assert directed_error(depth_from, depth_to, pose(x=step), matrix) == 0.0
    half_up = np.abs(depth_to - 2.0) / depth_to
    assert half_up.mean() == 0.25


def test_where_several_points_land_on_one_pixel_the_last_stays():
    targets, sources = last_writes(np.array([5, 2, 5, 7, 2, 5]), 10)
    assert targets.tolist() == [2, 5, 7] and sources.tolist() == [4, 5, 3]


def test_a_still_camera_with_known_scale_errors():
    """Identity motion: each pixel is compared with itself, so with D_k = s_k Z the pair's directions are
    |s_k+1 - s_k| / s_k+1 and |s_k - s_k+1| / s_k."""
    _, truth = render(PinholeCamera.with_size(64, 48), t=1.0)
    truth = np.where(np.isfinite(truth), truth, np.nan).astype(np.float64)  # unknown sky: no part in it
    scales = [1.0, 1.1, 0.9, 0.9]
    still = [pose()] * 4
    expected = np.mean([(abs(b - a) / b + abs(a - b) / a) / 2 for a, b in zip(scales, scales[1:])]) * 100
    assert metric_tae([s * truth for s in scales], [truth] * 4, still, K) == pytest.approx(expected, rel=1e-12)


def test_the_alignment_undoes_one_affine_in_disparity_per_sequence():
    """Predicted disparity a / Z + b with one (a, b) for the whole moving sequence: the least-squares fit recovers
    it, and TAE is the truth's own (its floor, from the rounding of the reprojection)."""
    pinhole = PinholeCamera.with_size(64, 48)
    sequence = drifting_sequence(pinhole, 5)
    truths = [frame.truth.astype(np.float64) for frame in sequence]
    poses = [frame.pose for frame in sequence]
    depths = [1.0 / (0.7 / z + 0.05) for z in truths]  # the sky (+Inf truth): disparity 0.05
    floor = metric_tae(truths, truths, poses, pinhole.K, SYNTHETIC_TAE)
    assert 0.5 < floor < 2.0  # 64 x 48 and a floor receding to the horizon: the rounding is coarse
    # to 1e-7: the fit's target is 1 / (Z + 1e-8), the reference's, not exactly 1 / Z
    assert tae(depths, truths, poses, pinhole.K, SYNTHETIC_TAE) == pytest.approx(floor, rel=1e-7)


def test_two_still_frames_aligned_as_an_independent_computation_says():
    """Two frames of a still camera whose disparities are the truth's times 1 and 1.2: the sequence's fit (here
    by np.polyfit, not lstsq), the floor and clip, then each pixel against itself."""
    _, truth = render(PinholeCamera.with_size(64, 48), t=1.0)
    truth = truth.astype(np.float64)
    disparities = [np.where(np.isfinite(truth), 1.0 / truth, 0.0) * s for s in (1.0, 1.2)]
    valid = (truth > MIN_DEPTH) & (truth < 20.0)
    x = np.concatenate([np.maximum(d[valid], MIN_DEPTH) for d in disparities])
    y = np.concatenate([1.0 / (truth[valid] + 1e-8)] * 2)
    scale, shift = np.polyfit(x, y, 1)
    aligned = [np.clip(1.0 / np.maximum(scale * np.maximum(d, MIN_DEPTH) + shift, MIN_DEPTH), MIN_DEPTH, 20.0)
               for d in disparities]
    expected = 100 * (np.mean(np.abs(aligned[1] - aligned[0]) / aligned[1])
                      + np.mean(np.abs(aligned[0] - aligned[1]) / aligned[0])) / 2
    with np.errstate(divide="ignore"):
        depths = [1.0 / d for d in disparities]  # +Inf where the disparity is 0 (the sky)
    assert tae(depths, [truth] * 2, [pose()] * 2, K, SYNTHETIC_TAE) == pytest.approx(expected, rel=1e-9)


def test_frames_without_a_prediction_are_left_out_and_their_neighbours_pair():
    pinhole = PinholeCamera.with_size(64, 48)
    sequence = drifting_sequence(pinhole, 4)
    truths = [frame.truth for frame in sequence]
    poses = [frame.pose for frame in sequence]
    depths = [s * z for s, z in zip([1.0, 1.05, 0.95, 1.0], truths)]
    gapped = [depths[0], None, depths[2], depths[3]]
    assert metric_tae(gapped, truths, poses, pinhole.K) == pytest.approx(
        metric_tae([depths[0], depths[2], depths[3]], [truths[i] for i in (0, 2, 3)], [poses[i] for i in (0, 2, 3)],
                   pinhole.K), rel=1e-12)
    assert math.isnan(metric_tae([depths[0], None, None, None], truths, poses, pinhole.K))
    with pytest.raises(ValueError, match="one each per frame"):
        metric_tae(depths[:3], truths, poses, pinhole.K)
    with pytest.raises(ValueError, match="one each per frame"):
        sequence_tae(depths[:3], poses, pinhole.K)


def test_the_scannet_protocol_crops_and_resizes_the_prediction_to_the_truth():
    assert (SCANNET_TAE.crop, SCANNET_TAE.max_depth, SCANNET_TAE.first, SCANNET_TAE.end, SCANNET_TAE.scenes) == \
        ((8, 8, 11, 11), 10.0, 10, 180, 20)
    truth = np.ones((480, 640))
    assert SCANNET_TAE.cropped(truth).shape == (464, 618)
    prediction = np.tile(np.arange(1280, dtype=np.float32), (960, 1))  # twice the size: cropped, then resized
    resized = to_truth_size(prediction, (464, 618), SCANNET_TAE)
    assert resized.shape == (464, 618) and resized[0, 0] == pytest.approx(11 + 0.5 * (1258 / 618 - 1), abs=1e-3)
    assert np.array_equal(to_truth_size(truth, (480, 640), TaeProtocol("none")), truth)


def test_scannet_layout_round_trip(tmp_path):
    """The sample scene written as a ScanNet scene (colour twice the depth's size, as ScanNet's raw colour is
    larger) and read back: depth to the millimetre, poses, intrinsics, stamps at 30 Hz, the protocol's frames."""
    pinhole = PinholeCamera.with_size(64, 48)
    big = PinholeCamera.with_size(128, 96)
    times = [0.1 * k for k in range(6)]
    truths = [render(pinhole, t=t)[1] for t in times]
    scene = write_scene(tmp_path / "scene0001_00", [render(big, t=t)[0] for t in times], truths,
                        [view_pose(t) for t in times], pinhole.K)
    write_scene(tmp_path / "scene0000_00", [render(big, t=0.0)[0]] * 3, truths[:3], [view_pose(0.0)] * 3, pinhole.K)
    (tmp_path / "not_a_scene").mkdir()
    protocol = TaeProtocol("test", crop=(2, 2, 3, 3), first=1, end=5, scenes=2)
    assert [path.name for path in scene_folders(tmp_path, protocol)] == ["scene0000_00", "scene0001_00"]
    assert scene_folders(scene, protocol) == [scene]
    frames, matrix = read_scene(scene, protocol)
    assert [frame.number for frame in frames] == [1, 2, 3, 4] and np.allclose(matrix, pinhole.K, atol=1e-6)
    assert [frame.stamp_ns - START_NS for frame in frames] == [33_333_333, 66_666_667, 100_000_000, 133_333_333]
    for frame, t in zip(frames, times[1:5]):
        expected = truths[times.index(t)]
        known = np.isfinite(expected) & (expected < 65.535)
        assert np.abs(frame.truth[known] - expected[known]).max() <= 0.0005 + 1e-9  # millimetres
        assert np.isnan(frame.truth[~known]).all() and frame.rgb.shape == (48, 64, 3)
        rotation, position = view_pose(t)
        assert np.allclose(frame.pose[:3, :3], rotation, atol=1e-8) and np.allclose(frame.pose[:3, 3], position)
    # TAE of the read-back sequence is the original's to the millimetre rounding of its depth
    original = [truths[times.index(t)] for t in times[1:5]]
    depths = [np.where(np.isfinite(z), z, np.inf) for z in original]
    assert tae(depths, [f.truth for f in frames], [f.pose for f in frames], matrix, protocol) == pytest.approx(
        tae(depths, original, [view_pose(t) for t in times[1:5]], pinhole.K, protocol), abs=1e-3)


def test_scannet_layout_errors_name_what_is_wrong(tmp_path):
    pinhole = PinholeCamera.with_size(16, 12)
    rgb, truth = render(pinhole, t=0.0)
    scene = write_scene(tmp_path / "scene", [rgb] * 3, [truth] * 3, [view_pose(0.0)] * 3, pinhole.K)
    protocol = TaeProtocol("test")
    with pytest.raises(DatasetError, match="no such folder"):
        scene_folders(tmp_path / "nowhere", protocol)
    with pytest.raises(DatasetError, match="no scene folder in the ScanNet layout"):
        scene_folders(scene / "color", protocol)
    (scene / "depth" / "1.png").unlink()
    with pytest.raises(DatasetError, match="colour frame 1 has no depth"):
        read_scene(scene, protocol)
    Image.fromarray(np.zeros((12, 16), np.uint16)).save(scene / "depth" / "1.png")
    (scene / "pose" / "2.txt").write_text("1 0 0\n0 1 0\n")
    with pytest.raises(DatasetError, match="a 4x4 matrix expected"):
        read_scene(scene, protocol)
    with pytest.raises(DatasetError, match=r"no frames \[10:180\]"):
        read_scene(scene, SCANNET_TAE)
    (scene / "intrinsic" / "intrinsic_depth.txt").unlink()
    with pytest.raises(DatasetError, match="missing intrinsic/intrinsic_depth.txt"):
        read_scene(scene, protocol)
