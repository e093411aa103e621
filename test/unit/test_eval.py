"""The evaluation protocol: dataset layouts, masks and crops, alignment, metrics, the evaluation through the model."""


import numpy as np
import pytest

from depthmaster_ros.eval.alignment import align
from depthmaster_ros.model.backends import PipelineBackend
from depthmaster_ros.eval.datasets import SPECS, DatasetError, EvalDataset, eval_crop_mask
from depthmaster_ros.eval.evaluation import evaluate, prediction_path
from depthmaster_ros.eval.metrics import depth_metrics, si_boundary_f1

from eval_fixtures import diode_mask, write_datasets

FRAMES = 2


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_data")
    return root, write_datasets(root, FRAMES)


def expected_valid(name, depth):
    spec = SPECS[name]
    valid = (depth > spec.min_depth) & (depth < spec.max_depth)
    if name == "kitti":  # Eigen crop on the 352x1216 frame: rows 117:321, columns 43:1172
        crop = np.zeros_like(valid)
        crop[117:321, 43:1172] = True
        valid &= crop
    if name == "nyu":
        crop = np.zeros_like(valid)
        crop[45:471, 41:601] = True
        valid &= crop
    return valid


@pytest.mark.parametrize("name", sorted(SPECS))
def test_layouts_decode_exact_depth_and_masks(data, name):
    root, truths = data
    dataset = EvalDataset(SPECS[name], root)
    assert len(dataset) == FRAMES  # KITTI's "None" line is skipped
    for index in range(FRAMES):
        sample = dataset.load(index)
        assert sample.rgb.dtype == np.uint8 and sample.rgb.shape[:2] == sample.depth.shape
        assert np.allclose(sample.depth, truths[name][index], atol=1e-6)
        if name == "diode":  # the mask file, not the range
            assert np.array_equal(sample.valid, diode_mask(truths[name][index]))
            assert not sample.valid[:, ::7].any()
        else:
            assert np.array_equal(sample.valid, expected_valid(name, truths[name][index]))
    if name == "kitti":
        assert dataset.load(0).depth.shape == (352, 1216)
    dataset.close()


def test_crop_masks_select_the_documented_pixels():
    kitti = eval_crop_mask("kitti_eigen", (352, 1216))
    rows, cols = np.nonzero(kitti)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (117, 321, 43, 1172)
    nyu = eval_crop_mask("nyu_eigen", (480, 640))
    rows, cols = np.nonzero(nyu)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (45, 471, 41, 601)
    assert kitti.sum() == (321 - 117) * (1172 - 43)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_affine_sqrt_disparity_prediction_scores_perfectly(data, name, tmp_path):
    """A prediction that is an exact affine map of the GT's sqrt-disparity: AbsRel 0 and delta1 1."""
    root, truths = data
    dataset = EvalDataset(SPECS[name], root)
    predictions = tmp_path / "pred"
    predictions.mkdir()
    for index in range(FRAMES):
        sample = dataset.load(index)
        gt = sample.depth
        p = np.where(gt > 0, 0.7 * np.sqrt(1.0 / np.where(gt > 0, gt, 1.0)) + 0.05, 0.5)
        np.save(prediction_path(predictions, sample.name), p.astype(np.float64))
    summary = evaluate(None, dataset, tmp_path / "out", predictions=predictions)
    dataset.close()
    assert summary["images"] == FRAMES and summary["predicted_now"] == 0
    assert summary["metrics"]["abs_rel"] < 1e-9 and summary["metrics"]["delta1"] == 1.0
    if name == "hypersim":
        assert summary["metrics"]["boundary_f1"] == pytest.approx(1.0)


def test_known_errors():
    gt = np.linspace(1.0, 20.0, 400).reshape(20, 20)
    valid = np.ones_like(gt, bool)
    valid[0, 0] = False
    scores = depth_metrics(1.1 * gt, gt, valid)
    g = gt[valid]
    assert scores["abs_rel"] == pytest.approx(0.1)
    assert scores["sq_rel"] == pytest.approx(np.mean(0.01 * g))
    assert scores["rmse"] == pytest.approx(0.1 * np.sqrt(np.mean(g**2)))
    assert scores["rmse_log"] == pytest.approx(np.log(1.1))
    assert scores["log10"] == pytest.approx(np.log10(1.1))
    assert scores["delta1"] == 1.0 and scores["silog"] == pytest.approx(0.0, abs=1e-6)
    assert scores["i_rmse"] == pytest.approx(np.sqrt(np.mean((1 / (1.1 * g) - 1 / g) ** 2)))
    # Half the pixels 1.6x too far: outside 1.25 and 1.25^2 = 1.5625, inside 1.25^3 = 1.953.
    half = depth_metrics(np.where(np.arange(400).reshape(20, 20) % 2 == 0, 1.6 * gt, gt), gt, np.ones_like(valid))
    assert half["delta1"] == 0.5 and half["delta2"] == 0.5 and half["delta3"] == 1.0
    assert half["abs_rel"] == pytest.approx(0.3)


def test_alignments_invert_their_own_model():
    rng = np.random.default_rng(0)
    gt = rng.uniform(1.0, 10.0, (30, 40))
    valid = rng.random(gt.shape) < 0.7
    for method, prediction in [("least_square", (gt - 1.0) / 5.0), ("least_square_disparity", 2.0 / gt + 0.1),
                               ("least_square_sqrt_disp", 0.8 / np.sqrt(gt) - 0.02)]:
        depth, _, _ = align(prediction, gt, valid, method)
        assert np.allclose(depth[valid], gt[valid]), method
    # The paper's alignment squares before flooring: a negative line value becomes a positive disparity.
    p = np.array([[0.0, 0.5, 1.0]])
    gt = 1 / (np.array([[0.2, 0.45, 0.7]]) ** 2)
    depth, scale, shift = align(p, gt, np.array([[True, True, True]]))
    assert scale == pytest.approx(0.5) and shift == pytest.approx(0.2)  # p = 0 excluded from the fit only
    with pytest.raises(ValueError, match="unknown alignment"):
        align(p, gt, np.ones_like(p, bool), "median")


def test_boundary_f1_properties():
    gt = np.full((40, 40), 10.0)
    gt[10:30, 10:30] = 2.0  # a near square in front of a wall
    valid = np.ones_like(gt, bool)
    assert si_boundary_f1(gt, gt, valid) == pytest.approx(1.0)
    assert si_boundary_f1(3.0 * gt, gt, valid) == pytest.approx(1.0)  # scale-invariant
    assert si_boundary_f1(np.full_like(gt, 5.0), gt, valid) == 0.0  # no edges found
    shifted = np.roll(gt, 3, axis=1)
    assert 0.0 < si_boundary_f1(shifted, gt, valid) < 1.0
    # Hand count at one threshold. GT edges (pixels whose neighbour is nearer): 20 on each side of the square.
    # A predicted near band from column 10 to the border: its left side matches (20/20), it has no right side,
    # and its top and bottom sides are 30 long with 20 matching. Recall (1 + 0 + 1 + 1) / 4 = 0.75, precision
    # (1 + 0 + 2/3 + 2/3) / 4 = 7/12, F1 = 2 * 0.75 * 7/12 / (0.75 + 7/12) = 0.65625.
    from depthmaster_ros.eval.metrics import boundary_f1

    band = np.full_like(gt, 10.0)
    band[10:30, 10:] = 2.0
    assert boundary_f1(band, gt, valid, 1.1) == pytest.approx(0.65625)


def test_kitti_from_the_tar_with_the_model(data, pipeline, tmp_path):
    root, _ = data
    dataset = EvalDataset(SPECS["kitti"], root)
    summary = evaluate(PipelineBackend(pipeline), dataset, tmp_path / "out", processing_res=128, limit=1)
    dataset.close()
    assert summary["images"] == 1 and summary["predicted_now"] == 1
    assert 0 < summary["metrics"]["abs_rel"] < 10 and 0 <= summary["metrics"]["delta1"] <= 1


def test_missing_and_malformed_files(data, tmp_path):
    root, _ = data
    with pytest.raises(DatasetError, match="Marigold repository"):
        EvalDataset(SPECS["nyu"], tmp_path)
    bad_list = tmp_path / "list.txt"
    bad_list.write_text("only_one_column.png\n")
    with pytest.raises(DatasetError, match="line 1: expected at least 2 paths"):
        EvalDataset(SPECS["nyu"], root, bad_list)
    bad_list.write_text("test/kitchen_0004/rgb_0000.png test/nowhere/depth.png\n")
    dataset = EvalDataset(SPECS["nyu"], root, bad_list)
    with pytest.raises(DatasetError, match="missing file .*test/nowhere/depth.png"):
        dataset.load(0)
    bad_list.write_text("nowhere/rgb.png nowhere/depth.png\n")
    with pytest.raises(DatasetError, match="no archive holding nowhere/rgb.png"):
        EvalDataset(SPECS["nyu"], root, bad_list)


def test_temporal_evaluation_with_the_model(pipeline):
    """The same evaluation with a model backend: every frame is predicted once, and a setup that cannot run
    (random weights: the fixed mode's calibration fails) is reported, not fatal."""
    from depthmaster_ros.eval.sequence_evaluation import evaluate_sequence, rows_table
    from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
    from depthmaster_ros.samples.drifting_sequence import drifting_sequence, sample_setups
    from depthmaster_ros.samples.sample_scene import PinholeCamera

    pinhole = PinholeCamera.with_size(64, 48)
    sequence = drifting_sequence(pinhole, 3)
    backend = PipelineBackend(pipeline)
    calls = []
    infer = backend.infer
    backend.infer = lambda images, res: calls.append(len(images)) or infer(images, res)
    rows = evaluate_sequence(sequence, CameraIntrinsics.from_K(64, 48, pinhole.K), sample_setups(sequence),
                             base={"processing_res": 64}, backend=backend)
    assert calls == [1, 1, 1]
    assert {row["setup"] for row in rows} == {"fixed", "sparse_depth", "ground_plane"}
    skipped = [row for row in rows if "skipped" in row]
    assert all("cannot calibrate the fixed mode" in row["skipped"] for row in skipped)
    assert len(rows) == 6 + (1 if skipped else 3)
    assert "| sparse_depth | align_smooth |" in rows_table(rows, "model")
