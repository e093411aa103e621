import numpy as np

from depthmaster_ros.geometry.depth_conversion import apply_range_limits, sqrt_disparity_to_depth


def test_formula_and_infinity():
    p = np.array([[0.0, 0.5, 1.0, 0.25]], np.float32)
    depth = sqrt_disparity_to_depth(p, scale=2.0, shift=-0.5)
    # a = 2p - 0.5 -> [-0.5 (clamped to 0: infinitely far), 0.5, 1.5, 0.0]
    assert np.isposinf(depth[0, 0]) and np.isposinf(depth[0, 3])
    assert np.allclose(depth[0, 1:3], [1 / 0.25, 1 / 2.25])
    assert depth.dtype == np.float32


def test_range_codes_rep117():
    depth = np.array([0.05, 0.5, 50.0, np.nan, np.inf], np.float32)
    out = apply_range_limits(depth.copy(), 0.1, 10.0)
    assert np.isneginf(out[0]) and out[1] == 0.5 and np.isposinf(out[2]) and np.isnan(out[3]) and np.isposinf(out[4])
