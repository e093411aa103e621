import matplotlib
import numpy as np
import pytest

from depthmaster_ros.colormap import colorize, colormap_lut


def test_endpoints_and_midpoint_match_matplotlib():
    cmap = matplotlib.colormaps["viridis"]
    rgb = colorize(np.array([[0.0, 1.0, 128 / 255]]), "viridis")
    for value, got in zip([0.0, 1.0, 128 / 255], rgb[0]):
        expected = np.round(np.array(cmap(value)[:3]) * 255)
        assert np.abs(got.astype(int) - expected).max() <= 1


def test_clipping_range_and_invalid_values():
    rgb = colorize(np.array([[-5.0, 5.0, np.nan, np.inf]]), "Spectral")
    lut = colormap_lut("Spectral")
    assert np.array_equal(rgb[0, 0], lut[0]) and np.array_equal(rgb[0, 1], lut[255])
    assert np.array_equal(rgb[0, 2], [0, 0, 0]) and np.array_equal(rgb[0, 3], [0, 0, 0])
    assert np.array_equal(colorize(np.array([[2.0]]), "Spectral", vmin=1.0, vmax=3.0)[0, 0], lut[128])


def test_unknown_colormap():
    with pytest.raises(ValueError, match="unknown colormap 'nope'"):
        colormap_lut("nope")
