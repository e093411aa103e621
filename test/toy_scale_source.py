"""A scale source defined outside the package (the seam's test): a depth sensor reporting depth divided by a
known gain. Used by the scale-source plug-in tests of both tiers; the ``toy`` fixture registers it."""

import numpy as np
import pytest

from depthmaster_ros.parameter_spec import ParameterSpec
from depthmaster_ros.scale.source import MeasurementInput, ScaleSource, register_source, unregister_source


class ToyDepth(ScaleSource):
    """A depth sensor that reports depth divided by a known gain."""

    name = "toy_depth"
    description = "toy_depth (a test source: a depth image times toy_gain)"
    parameters = (ParameterSpec("toy_gain", 1.0, "toy_depth mode: the factor that turns the toy image into meters.",
                                min_value=0.0, per_camera=True),)
    inputs = (MeasurementInput("toy/depth", "depth_image", "toy depth image", published_with_image=True),)

    def pairs(self, relative, camera, measurements, config):
        depth = np.asarray(measurements["toy/depth"], dtype=np.float64) * config.toy_gain
        valid = np.isfinite(depth) & (depth > 0)
        return np.asarray(relative, dtype=np.float64)[valid], depth[valid]


@pytest.fixture(scope="module")
def toy():
    register_source(ToyDepth)
    yield
    unregister_source("toy_depth")
