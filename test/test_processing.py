"""The shared processing path (no ROS): which outputs are made, and how they relate to each other."""

import numpy as np
import pytest

from depthmaster_ros.colormap import colorize
from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.processing import DepthProcessor, ProcessingConfig
from depthmaster_ros.sample_scene import PinholeCamera, render


@pytest.fixture(scope="module")
def frame():
    camera = PinholeCamera.with_size(64, 48)
    rgb, _ = render(camera)
    return rgb, CameraIntrinsics.from_K(64, 48, camera.K)


@pytest.fixture
def processor(pipeline):
    return DepthProcessor(pipeline, ProcessingConfig(processing_res=64, scale_mode="fixed", scale=0.6, shift=0.15))


def test_all_outputs_are_consistent(processor, frame, pipeline):
    rgb, camera = frame
    products = processor.process(rgb, camera)
    assert np.array_equal(products.relative, pipeline(rgb, processing_res=64))
    assert np.array_equal(products.colored, colorize(products.relative, "turbo"))
    a = 0.6 * products.relative.astype(np.float64) + 0.15
    expected = 1 / (a * a)
    inside = (expected >= 0.1) & (expected <= 100.0)
    assert np.allclose(products.depth[inside], expected[inside], rtol=1e-5)
    assert products.points.shape == (48, 64) and np.allclose(products.points["z"][inside], products.depth[inside])
    assert products.scale.scale == 0.6 and products.scale.source == "fixed" and products.notes == []


def test_only_requested_outputs(processor, frame):
    rgb, camera = frame
    products = processor.process(rgb, camera, outputs={"relative"})
    assert products.colored is None and products.depth is None and products.points is None
    products = processor.process(rgb, camera, outputs={"depth"})
    assert products.depth is not None and products.points is None and products.colored is None
    with pytest.raises(ValueError, match="unknown outputs"):
        processor.process(rgb, camera, outputs={"mesh"})


def test_notes_when_metric_is_impossible(processor, frame):
    rgb, camera = frame
    products = processor.process(rgb, None)
    assert products.depth is None and products.points is None and "no camera info" in products.notes[0]
    products = processor.process(rgb, camera, config=processor.config.updated(scale_mode="none"))
    assert products.depth is None and "scale_mode 'none'" in products.notes[0]


def test_output_scale_and_stride(processor, frame):
    rgb, camera = frame
    products = processor.process(rgb, camera, config=processor.config.updated(output_scale=0.5, cloud_stride=3))
    assert products.relative.shape == products.depth.shape == (24, 32)
    assert (products.camera.width, products.camera.height) == (32, 24)
    assert np.isclose(products.camera.fx, camera.fx / 2)
    assert products.points.shape == (8, 11)


def test_camera_size_mismatch_and_bad_config(processor, frame):
    rgb, camera = frame
    with pytest.raises(ValueError, match="camera info is 32x24 but the image is 64x48"):
        processor.process(rgb, camera.scaled(32, 24))
    with pytest.raises(ValueError, match="max_range"):
        ProcessingConfig(min_range=10.0, max_range=5.0)
