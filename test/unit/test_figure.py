"""The README's picture (depthmaster_ros/samples/figure.py, depthmaster-make-figure): what each panel holds, the
cloud view's geometry, the PNG's layout, and that a model with random weights is said to be one."""

import numpy as np
import pytest
from PIL import Image

from depthmaster_ros.geometry.pointcloud import XYZRGB_DTYPE, pack_rgb
from depthmaster_ros.samples.drifting_sequence import simulated_prediction
from depthmaster_ros.samples.figure import BACKGROUND, EXACT_SOURCE, VIEW_EYE, VIEW_TARGET, figure_frame, look_at, \
    project_view, render_cloud, save_figure
from depthmaster_ros.samples.sample_scene import PinholeCamera, render
from depthmaster_ros.tools import make_figure

WIDTH, HEIGHT = 160, 120


@pytest.fixture(scope="module")
def exact():
    return figure_frame(WIDTH, HEIGHT)


def test_the_exact_path_gives_the_scenes_depth_and_says_what_it_is(exact):
    rgb, truth = render(PinholeCamera.with_size(WIDTH, HEIGHT))
    assert [panel.shape for panel in exact.panels] == [(HEIGHT, WIDTH, 3)] * 3
    assert np.array_equal(exact.panels[0], rgb) and np.array_equal(exact.truth, truth)
    assert EXACT_SOURCE in exact.title and "not a DepthMaster prediction" in exact.title
    assert exact.missing == "" and exact.points.shape == (HEIGHT, WIDTH)
    # Where the normalised map is not clipped (the nearest and farthest 2 % of the depth are), the LiDAR's 1 % noise is all that
    # separates the fitted depth from the truth.
    relative = simulated_prediction(truth)
    unclipped = np.isfinite(truth) & (relative > 0) & (relative < 1)
    assert unclipped.mean() > 0.4  # the wall and the sky are the farthest 2 %, at 0
    assert np.allclose(exact.depth[unclipped], truth[unclipped], rtol=0.01)
    assert exact.abs_rel < 0.005
    assert "AbsRel" in exact.title and "sparse_depth" in exact.title
    # the depth panel is drawn (not the background) and the cloud view shows points of the image's colours
    assert not np.all(exact.panels[1] == BACKGROUND)
    shown = exact.panels[2].reshape(-1, 3)
    shown = shown[~np.all(shown == BACKGROUND, axis=1)]
    assert len(shown) > WIDTH * HEIGHT // 10
    assert set(map(tuple, shown)) <= set(map(tuple, rgb.reshape(-1, 3)))


def test_look_at_is_an_upright_rotation_towards_the_target():
    rotation = look_at(VIEW_EYE, VIEW_TARGET)
    assert np.allclose(rotation.T @ rotation, np.eye(3)) and np.isclose(np.linalg.det(rotation), 1.0)
    forward = (VIEW_TARGET - VIEW_EYE) / np.linalg.norm(VIEW_TARGET - VIEW_EYE)
    assert np.allclose(rotation[:, 2], forward)
    assert rotation[1, 1] > 0 and abs(rotation[1, 0]) < 1e-12  # image down is world down; no roll


def test_the_cloud_view_projects_and_keeps_the_nearest_point():
    u, v, z = project_view(np.array([VIEW_TARGET]), 101, 51)
    assert np.allclose([u[0], v[0]], [50.0, 25.0]) and np.isclose(z[0], np.linalg.norm(VIEW_TARGET - VIEW_EYE))
    near = VIEW_EYE + 0.5 * (VIEW_TARGET - VIEW_EYE)  # on the same ray, nearer to the eye
    cloud = np.zeros((1, 3), XYZRGB_DTYPE)
    cloud["x"], cloud["y"], cloud["z"] = np.array([VIEW_TARGET, near, [np.nan] * 3]).T
    cloud["rgb"] = pack_rgb(np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8))
    for order in ([0, 1, 2], [1, 0, 2]):  # whichever comes first in the cloud
        image = render_cloud(cloud[:, order], 101, 51, splat=1)
        assert tuple(image[25, 50]) == (0, 255, 0)
        assert np.sum(~np.all(image == BACKGROUND, axis=2)) == 1  # the NaN point draws nothing


def test_the_png_holds_the_three_panels_side_by_side(exact, tmp_path):
    out = save_figure(exact, tmp_path / "sub" / "figure.png")
    picture = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert picture.shape == (round(1.2 * HEIGHT), 3 * WIDTH, 3)
    scale = min(0.326 * 3 * WIDTH / WIDTH, 0.83 * 1.2 * HEIGHT / HEIGHT)  # panel pixels -> picture pixels
    for index, panel in enumerate(exact.panels):  # the middle of each third shows the middle of its panel
        x, y = (index + 0.5) * WIDTH, (1 - 0.005 - 0.83 / 2) * 1.2 * HEIGHT  # axes from the bottom
        half_w, half_h = 20, 15
        shown = picture[round(y - half_h * scale):round(y + half_h * scale),
                        round(x - half_w * scale):round(x + half_w * scale)].reshape(-1, 3).mean(axis=0)
        source = panel[HEIGHT // 2 - half_h:HEIGHT // 2 + half_h,
                       WIDTH // 2 - half_w:WIDTH // 2 + half_w].reshape(-1, 3).mean(axis=0)
        others = [other[HEIGHT // 2 - half_h:HEIGHT // 2 + half_h, WIDTH // 2 - half_w:WIDTH // 2 + half_w]
                  .reshape(-1, 3).mean(axis=0) for number, other in enumerate(exact.panels) if number != index]
        assert np.abs(shown - source).max() < 6, (index, shown, source)
        assert all(np.abs(shown - other).max() > 12 for other in others), (index, shown, others)


def test_the_command_with_random_weights_says_so(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "figure.png"
    assert make_figure.main([str(out), "--size", "64x48", "--model", "--checkpoint", str(tiny_checkpoint)]) == 0
    captured = capsys.readouterr()
    assert "RANDOM weights" in captured.err and "RANDOM WEIGHTS" in captured.out
    assert Image.open(out).size == (192, round(1.2 * 48))


def test_the_command_refuses_a_missing_checkpoint_in_one_line(tmp_path, capsys):
    assert make_figure.main([str(tmp_path / "f.png"), "--model", "--checkpoint", str(tmp_path / "nope")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("depthmaster-make-figure: ") and error.count("\n") == 1
    assert not (tmp_path / "f.png").exists()
