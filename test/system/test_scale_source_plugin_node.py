"""The scale-source seam, in a running node: a source defined outside the package (toy_scale_source.py) has its
input topic subscribed and paired by the node, and its scale fitted."""

import numpy as np
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.messages.conversions import array_to_image, make_header, stamp_to_ns
from depthmaster_ros.ros.client import DepthMasterClient
from depthmaster_ros.samples.sample_scene import PinholeCamera

from fake_backend import node_with_fake_model
from node_process import image_array
from toy_scale_source import toy  # noqa: F401,F811 (a fixture)

PINHOLE = PinholeCamera.with_size(96, 72)
CAMERA = CameraIntrinsics.from_K(96, 72, PINHOLE.K)


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


