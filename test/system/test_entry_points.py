"""One image, four ways in: the numpy API, depthmaster-infer, depthmaster-bag and the node all give the identical
relative map on the CPU (the model backend decides the memory layout, not the caller: a channels-last view takes
another float path through the CPU's convolutions, which the Fourier Enhancement amplifies on random weights)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rclpy.serialization import serialize_message

from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.model.device import apply_cpu_threads
from depthmaster_ros.messages.conversions import array_to_image, intrinsics_to_camera_info, make_header
from depthmaster_ros.rosbag.io import ConnectionMap, open_writer
from depthmaster_ros.samples.sample_scene import PinholeCamera, render

from node_process import image_array
from bag_helpers import read_all
from test_node import make_client, request, start_node

BIN = Path(sys.executable).parent
WIDTH, HEIGHT, RES = 200, 150, 160


def test_every_entry_point_gives_the_same_relative_map(ros, tiny_checkpoint, pipeline, tmp_path, tmp_path_factory):
    pinhole = PinholeCamera.with_size(WIDTH, HEIGHT)
    camera = CameraIntrinsics.from_K(WIDTH, HEIGHT, pinhole.K)
    rgb, _ = render(pinhole, t=0.3)
    # The tools and the node run the model on cpu_threads (auto); the CPU's float path depends on the thread
    # count, so the API runs on the same number here.
    threads = torch.get_num_threads()
    apply_cpu_threads(0)
    try:
        api = pipeline(rgb, processing_res=RES)
        official = pipeline.predict(torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous(), RES)[0].numpy()
    finally:
        torch.set_num_threads(threads)

    Image.fromarray(rgb).save(tmp_path / "frame.png")
    infer = subprocess.run([str(BIN / "depthmaster-infer"), "--checkpoint", str(tiny_checkpoint), "--processing-res",
                            str(RES), "--output", str(tmp_path / "cli"), str(tmp_path / "frame.png")],
                           capture_output=True, text=True, timeout=300)
    assert infer.returncode == 0, infer.stderr
    cli = np.load(tmp_path / "cli" / "frame_pred.npy")

    writer = open_writer(tmp_path / "bag", "mcap")
    bag = ConnectionMap(writer)
    header = make_header(10**9, "cam")
    bag.write("/cam/image", "sensor_msgs/msg/Image", 10**9, serialize_message(array_to_image(rgb, "rgb8", header)))
    bag.write("/cam/camera_info", "sensor_msgs/msg/CameraInfo", 10**9,
              serialize_message(intrinsics_to_camera_info(camera, header)))
    writer.close()
    params = tmp_path / "params.yaml"
    params.write_text(f"/**:\n  ros__parameters:\n    processing_res: {RES}\n")
    run = subprocess.run([str(BIN / "depthmaster-bag"), str(tmp_path / "bag"), str(tmp_path / "out"), "--checkpoint",
                          str(tiny_checkpoint), "--params", str(params), "--no-copy-input"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    offline = image_array(read_all(tmp_path / "out")["/cam/depth/relative"][0][1])

    node = start_node(tmp_path_factory, "/entry", checkpoint=tiny_checkpoint, processing_res=RES)
    client = make_client(node, outputs=("depth/relative",))
    try:
        _, msgs = request(client, rgb, camera)
        live = image_array(msgs["depth/relative"])
    finally:
        client.destroy_node()
        assert node.stop() == 0, node.log()

    assert api.shape == (HEIGHT, WIDTH) and api.std() > 1e-3
    # official: the official pipeline's layout, a contiguous [1, 3, H, W] tensor made from the image
    for name, other in (("predict() on a contiguous tensor", official), ("depthmaster-infer", cli),
                        ("depthmaster-bag", offline), ("node", live)):
        assert np.array_equal(other, api), f"{name} differs from the numpy API by {np.abs(other - api).max():.2e}"
