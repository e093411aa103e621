"""The scale-source seam: a source defined here, in the test, becomes a working scale_mode end to end (its
parameter in the table, the params file documentation and the node; its input topic subscribed and paired by
the node; its topic found in a bag and offered as a depthmaster-bag option) without editing any other module."""

import numpy as np
import pytest

from depthmaster_ros.messages.conversions import stamp_to_ns
from depthmaster_ros.parameters import check_values, parameters_yaml, spec
from depthmaster_ros.rosbag.bag_run import BagRun
from depthmaster_ros.rosbag.io import open_reader
from depthmaster_ros.rosbag.topics import choose_topics
from depthmaster_ros.samples.sample_bag import TOPICS, write_sample_bag
from depthmaster_ros.scale.source import scale_modes

from node_process import image_array
from bag_helpers import fake_for, params, read_all
from toy_scale_source import toy  # noqa: F401,F811 (a fixture)


def test_the_source_joins_the_parameter_table(toy):
    assert "toy_depth" in scale_modes() and spec("toy_gain").per_camera
    assert "# --- scale_mode toy_depth (live)" in parameters_yaml() and "    toy_gain: 1.0" in parameters_yaml()
    assert check_values({"scale_mode": "toy_depth", "toy_gain": 2}) == []
    assert any("toy_gain must be >= 0.0" in p for p in check_values({"toy_gain": -1.0}))


def test_depthmaster_bag_finds_its_topic_and_serves_it(toy, tmp_path):
    bag = write_sample_bag(tmp_path / "in", frames=4, width=64, height=48)
    reader = open_reader(bag)
    try:
        # found like the built-in sources' inputs: of the bag's two depth images, the one not named as ground truth
        assert choose_topics(reader, scale_mode="toy_depth")["toy/depth"] == TOPICS["lidar_depth"]
        topics = choose_topics(reader, scale_mode="toy_depth", inputs={"toy/depth": TOPICS["truth"]})
    finally:
        reader.close()
    assert topics["toy/depth"] == TOPICS["truth"]
    from depthmaster_ros.tools.bag import parse_args

    assert parse_args([str(bag), str(tmp_path / "x"), "--toy-depth-topic", "/t"]).inputs["toy/depth"] == "/t"

    # temporal_mode off: the bag's frames are exact (the test double), and this checks the source, not the
    # temporal stage (whose blend of consecutive moving frames is measured in test_temporal_stage.py)
    values = params(scale_mode="toy_depth", toy_gain=1.0, max_range=1000.0, temporal_mode="off")
    state = BagRun(fake_for(4), values, bag, tmp_path / "out", topics).run()
    assert state.written["/camera/depth"] == 4 and not state.notes
    out = read_all(tmp_path / "out")
    truth = {stamp_to_ns(m.header.stamp): image_array(m) for _, m in out[TOPICS["truth"]]}
    for _, message in out["/camera/depth"]:
        depth, expected = image_array(message), truth[stamp_to_ns(message.header.stamp)]
        ok = np.isfinite(depth) & np.isfinite(expected)
        assert np.allclose(depth[ok], expected[ok], rtol=1e-4)


def test_a_source_that_sets_the_scale_without_a_fit_is_followed_by_the_temporal_stage():
    """The temporal stage asks the source (known_scale), not the mode's name: a new calibration of any source that
    sets the scale without a fit makes the frame it applies to the new reference."""
    from depthmaster_ros.engine.engine import FrameEngine
    from depthmaster_ros.engine.job import FrameJob
    from depthmaster_ros.parameter_spec import ParameterSpec
    from depthmaster_ros.processing_config import ProcessingConfig
    from depthmaster_ros.scale.robust_fit import ScaleFit
    from depthmaster_ros.scale.source import ScaleSource, register_source, unregister_source

    from fake_backend import FakeBackend

    class Surveyed(ScaleSource):
        name = "surveyed"
        description = "surveyed (a test source: a scale measured once)"
        parameters = (ParameterSpec("surveyed_scale", 0.5, "The surveyed scale.", min_value=0.0),)

        def known_scale(self, config):
            return ScaleFit(config.surveyed_scale, 0.0, self.name)

    register_source(Surveyed)
    try:
        rgb = np.zeros((48, 64, 3), np.uint8)
        fake = FakeBackend()
        fake.register(rgb, np.linspace(0.1, 0.9, 48 * 64, dtype=np.float32).reshape(48, 64))
        engine = FrameEngine(fake)
        config = ProcessingConfig(scale_mode="surveyed", temporal_mode="align")
        reports = [engine.run([FrameJob("", stamp, rgb, cfg)])[0].stage_reports["temporal"] for stamp, cfg in
                   ((0, config), (100_000_000, config), (200_000_000, config.updated(surveyed_scale=0.6)))]
        assert [r.status for r in reports] == ["anchored", "aligned", "anchored"]
        assert reports[2].detail == "the surveyed scale changed: it applies to this frame"
        assert engine.run([FrameJob("", 300_000_000, rgb, config.updated(surveyed_scale=0.6))])[0].scale.scale == 0.6
    finally:
        unregister_source("surveyed")
