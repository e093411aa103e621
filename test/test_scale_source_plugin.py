"""The scale-source seam: a source defined here, in the test, becomes a working scale_mode end to end (its
parameter in the table, the params file documentation and the node; its input topic subscribed and paired by
the node; its topic found in a bag and offered as a depthmaster-bag option) without editing any other module."""

import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.messages.conversions import array_to_image, make_header, stamp_to_ns
from depthmaster_ros.parameter_spec import ParameterSpec
from depthmaster_ros.parameters import check_values, parameters_yaml, spec
from depthmaster_ros.ros.client import DepthMasterClient
from depthmaster_ros.rosbag.bag_run import BagRun
from depthmaster_ros.rosbag.io import BagError, open_reader
from depthmaster_ros.rosbag.topics import choose_topics
from depthmaster_ros.samples.sample_bag import TOPICS, write_sample_bag
from depthmaster_ros.samples.sample_scene import PinholeCamera
from depthmaster_ros.scale.source import MeasurementInput, ScaleSource, register_source, scale_modes, \
    unregister_source

from fake_backend import node_with_fake_model
from node_process import image_array
from test_bag import fake_for, params, read_all

PINHOLE = PinholeCamera.with_size(96, 72)
CAMERA = CameraIntrinsics.from_K(96, 72, PINHOLE.K)


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


def test_the_source_joins_the_parameter_table(toy):
    assert "toy_depth" in scale_modes() and spec("toy_gain").per_camera
    assert "# --- scale_mode toy_depth (live)" in parameters_yaml() and "    toy_gain: 1.0" in parameters_yaml()
    assert check_values({"scale_mode": "toy_depth", "toy_gain": 2}) == []
    assert any("toy_gain must be >= 0.0" in p for p in check_values({"toy_gain": -1.0}))


def test_the_node_subscribes_pairs_and_fits_it(ros, toy):
    overrides = [Parameter("scale_mode", value="toy_depth"), Parameter("toy_gain", value=2.0),
                 Parameter("max_range", value=1000.0), Parameter("scale_time_constant", value=0.0)]
    with node_with_fake_model("/toy", overrides) as node:
        client = DepthMasterClient(namespace="/toy", name="toy_client")
        toy_pub = client.create_publisher(Image, "toy/depth", QoSProfile(depth=5,
                                                                         reliability=ReliabilityPolicy.RELIABLE))
        try:
            assert client.wait_for_node(30)
            assert client.spin_until(lambda: toy_pub.get_subscription_count() > 0, 10.0)
            rgb, truth, _ = node.fake.frame(PINHOLE, 1.0)
            stamp = 50 * 10**9
            half = np.where(np.isfinite(truth), truth / 2.0, np.nan).astype(np.float32)  # gain 2 makes meters
            toy_pub.publish(array_to_image(half, "32FC1", make_header(stamp, "toy")))
            client.spin_until(lambda: False, 0.3)
            client.publish_frame(rgb, CAMERA, stamp)
            assert client.spin_until(lambda: any(stamp_to_ns(m.header.stamp) == stamp
                                                 for m in client.received["depth"]), 10.0)
            depth = next(image_array(m) for m in client.received["depth"] if stamp_to_ns(m.header.stamp) == stamp)
            ok = np.isfinite(depth) & np.isfinite(truth)
            assert ok.sum() > 1000 and np.allclose(depth[ok], truth[ok], rtol=1e-4)
            scale = next(m.data for m in client.received["depth/scale"] if abs(m.data[0] - stamp / 1e9) < 1e-9)
            assert scale[5] == np.isfinite(truth).sum()  # every toy pixel paired
        finally:
            client.destroy_node()


def test_depthmaster_bag_finds_its_topic_and_serves_it(toy, tmp_path):
    bag = write_sample_bag(tmp_path / "in", frames=4, width=64, height=48)
    reader = open_reader(bag)
    try:
        with pytest.raises(BagError, match="several toy depth image .* topics: /camera/depth_truth, /lidar/depth; "
                                           "choose one with --toy-depth-topic"):
            choose_topics(reader, scale_mode="toy_depth")
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
