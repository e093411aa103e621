"""scale/robust_line.py (the line of the metric scale fit and of the temporal stage): known lines recovered through
gross outliers, the residual definitions, and the degenerate inputs that give a reason instead of a line."""

import numpy as np
import pytest

from depthmaster_ros.scale.robust_line import robust_line


def line_with_outliers(rng, n=2000, slope=2.0, intercept=0.5, outliers=0.4, noise=0.0):
    x = rng.uniform(0.1, 1.0, n)
    y = slope * x + intercept + noise * rng.standard_normal(n)
    bad = rng.random(n) < outliers
    y[bad] = rng.uniform(0.0, 5.0, bad.sum())  # gross outliers, anywhere
    return x, y, bad


def test_an_exact_line_is_recovered_through_forty_percent_outliers(rng):
    x, y, bad = line_with_outliers(rng)
    outcome = robust_line(x, y, inlier_threshold=0.01, min_spread=0.05, relative=False)
    line = outcome.line
    assert outcome.reason == "" and line is not None
    assert line.slope == pytest.approx(2.0, abs=1e-9) and line.intercept == pytest.approx(0.5, abs=1e-9)
    assert np.all(line.residuals[~bad] < 1e-9)
    assert np.allclose(line.residuals[bad], np.abs(2.0 * x[bad] + 0.5 - y[bad]), atol=1e-9)


def test_relative_residuals_are_divided_by_y(rng):
    x, y, bad = line_with_outliers(rng, slope=0.8, intercept=0.1)
    y[bad] = np.abs(y[bad]) + 0.1  # relative residuals need y > 0
    line = robust_line(x, y, inlier_threshold=0.02, min_spread=0.05, relative=True).line
    assert line.slope == pytest.approx(0.8, abs=1e-9) and line.intercept == pytest.approx(0.1, abs=1e-9)
    assert np.allclose(line.residuals, np.abs(0.8 * x + 0.1 - y) / y, atol=1e-9)


def test_with_noise_the_fit_matches_least_squares_on_the_true_inliers(rng):
    """IRLS after RANSAC uses every good point: with noise sd 0.005 on 1000 inliers the line is within a few
    standard error of the least-squares line of the inliers alone (the estimate an oracle would make; a line
    through two of the noisy points, RANSAC's, is typically ten times further off)."""
    x, y, bad = line_with_outliers(rng, n=1700, noise=0.005, outliers=0.4)
    oracle_slope, oracle_intercept = np.polyfit(x[~bad], y[~bad], 1)
    line = robust_line(x, y, inlier_threshold=0.02, min_spread=0.05, relative=False).line
    # the oracle's standard errors: 0.005 / (sd(x) sqrt(1020)) = 6e-4 for the slope, 3.7e-4 for the intercept
    assert abs(line.slope - oracle_slope) < 6e-4 and abs(line.intercept - oracle_intercept) < 3.7e-4
    assert abs(line.slope - 2.0) < 3e-3 and abs(line.intercept - 0.5) < 2e-3


def test_deterministic_for_a_seed(rng):
    x, y, _ = line_with_outliers(rng, noise=0.01)
    first = robust_line(x, y, 0.02, 0.05, relative=False, seed=3).line
    again = robust_line(x, y, 0.02, 0.05, relative=False, seed=3).line
    assert (first.slope, first.intercept) == (again.slope, again.intercept)
    assert np.array_equal(first.residuals, again.residuals)


def test_points_at_one_x_give_no_line():
    x = np.full(100, 0.5)
    outcome = robust_line(x, np.linspace(1, 2, 100), 0.01, min_spread=0.05, relative=False)
    assert outcome.line is None and outcome.reason == "no two pairs far enough apart in p to define a line"


def test_a_falling_line_gives_no_line(rng):
    """Every user maps nearer to nearer: a negative slope is refused, whatever fits best."""
    x = rng.uniform(0.1, 1.0, 500)
    outcome = robust_line(x, 3.0 - 2.0 * x, 0.01, min_spread=0.05, relative=False)
    assert outcome.line is None
    assert outcome.reason == "every candidate line has a non-positive scale (depth would grow with p)"


def test_candidate_lines_need_points_min_spread_over_four_apart():
    """Two clusters 0.01 apart in x: with min_spread 0.05 (candidates need 0.0125) no line; with 0.02 (0.005)
    the line through the two clusters."""
    x = np.r_[np.full(50, 0.50), np.full(50, 0.51)]
    y = 4.0 * x + 1.0
    assert robust_line(x, y, 0.01, min_spread=0.05, relative=False).line is None
    line = robust_line(x, y, 0.01, min_spread=0.02, relative=False).line
    assert line.slope == pytest.approx(4.0, abs=1e-6) and line.intercept == pytest.approx(1.0, abs=1e-6)
