"""Message <-> numpy conversions (no ROS graph needed; rclpy message classes only)."""

import math

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.samples.sample_scene import PinholeCamera, render
from depthmaster_ros.messages.conversions import (
    InputError,
    array_to_image,
    camera_info_to_intrinsics,
    cloud_to_points,
    compressed_to_rgb,
    image_to_rgb,
    intrinsics_to_camera_info,
    points_to_cloud,
)


def image_msg(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    pixels = pixels.astype(pixels.dtype.newbyteorder(">" if bigendian else "<"))
    rows = pixels.reshape(pixels.shape[0], -1).view(np.uint8)
    rows = np.hstack([rows, np.full((rows.shape[0], pad), 7, np.uint8)])
    return Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, is_bigendian=int(bigendian),
                 step=rows.shape[1], data=rows.tobytes())


@pytest.fixture
def rgb(rng):
    return rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def test_colour_encodings(rgb):
    alpha = np.full((5, 7, 1), 9, np.uint8)
    assert np.array_equal(image_to_rgb(image_msg(rgb, "rgb8", pad=3)), rgb)  # row padding ignored
    assert np.array_equal(image_to_rgb(image_msg(rgb[..., ::-1].copy(), "bgr8")), rgb)
    assert np.array_equal(image_to_rgb(image_msg(np.concatenate([rgb, alpha], 2), "rgba8")), rgb)
    assert np.array_equal(image_to_rgb(image_msg(np.concatenate([rgb[..., ::-1], alpha], 2), "bgra8")), rgb)


def test_mono_encodings(rgb):
    gray = rgb[..., 0].copy()
    assert np.array_equal(image_to_rgb(image_msg(gray, "mono8")), np.repeat(gray[..., None], 3, 2))
    mono16 = gray.astype(np.uint16) * 257  # full-range 16-bit version of the same values
    for bigendian in (False, True):
        out = image_to_rgb(image_msg(mono16, "mono16", bigendian=bigendian))
        assert np.array_equal(out, np.repeat(gray[..., None], 3, 2))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"encoding": "nv12"}, "'nv12' is not supported"),
        ({"encoding": "32FC1"}, "depth/single-channel"),
        ({"height": 0}, "image is 7x0"),
        ({"step": 20}, "step 20 is smaller than width x bytes per pixel = 21"),
        ({"data": bytes(50)}, "image data has 50 bytes; expected step x height = 105"),
    ],
)
def test_bad_images(rgb, change, message):
    msg = image_msg(rgb, "rgb8")
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(InputError, match=message):
        image_to_rgb(msg)


def test_compressed(rgb):
    big = cv2.resize(rgb, (70, 50), interpolation=cv2.INTER_NEAREST)
    png = cv2.imencode(".png", big[..., ::-1].copy())[1].tobytes()
    assert np.array_equal(compressed_to_rgb(CompressedImage(format="png", data=png)), big)
    smooth, _ = render(PinholeCamera.with_size(70, 50))  # JPEG is near-lossless only on smooth images
    jpeg = cv2.imencode(".jpg", smooth[..., ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()
    decoded = compressed_to_rgb(CompressedImage(format="rgb8; jpeg compressed bgr8", data=jpeg))
    assert np.abs(decoded.astype(int) - smooth).mean() < 4  # a red/blue swap would be ~40
    with pytest.raises(InputError, match="could not be decoded"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=jpeg[:40]))
    with pytest.raises(InputError, match="compressedDepth"):
        compressed_to_rgb(CompressedImage(format="16UC1; compressedDepth png", data=png))
    with pytest.raises(InputError, match="no data"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=b""))


def test_camera_info_round_trip():
    K = np.array([[500.0, 0, 320], [0, 501, 240], [0, 0, 1]])
    camera = CameraIntrinsics(640, 480, K, np.hstack([K, [[1.0], [2.0], [0.0]]]), D=(0.1, -0.2, 0.0, 0.0, 0.01),
                              distortion_model="plumb_bob", binning_x=2, roi=(1, 2, 3, 4, True))
    msg = intrinsics_to_camera_info(camera, Header(frame_id="cam"))
    back = camera_info_to_intrinsics(msg)
    assert msg.header.frame_id == "cam"
    assert np.array_equal(back.K, K) and np.array_equal(back.P, camera.P) and back.D == camera.D
    assert (back.distortion_model, back.binning_x, back.roi) == ("plumb_bob", 2, (1, 2, 3, 4, True))
    with pytest.raises(InputError, match="K is all zeros"):
        camera_info_to_intrinsics(CameraInfo(width=640, height=480))


def test_output_messages(rgb):
    depth = np.arange(35, dtype=np.float32).reshape(5, 7)
    msg = array_to_image(depth, "32FC1", Header(frame_id="f"))
    assert (msg.encoding, msg.step, msg.height, msg.width) == ("32FC1", 28, 5, 7)
    assert np.array_equal(np.frombuffer(bytes(msg.data), np.float32).reshape(5, 7), depth)
    with pytest.raises(ValueError, match="32FC1 needs a float32"):
        array_to_image(depth.astype(np.float64), "32FC1", Header())
    points = np.zeros((2, 3), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    points["z"] = np.arange(6).reshape(2, 3)
    cloud = points_to_cloud(points, Header())
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step, cloud.is_dense) == (2, 3, 12, 36, False)
    assert [(f.name, f.offset) for f in cloud.fields] == [("x", 0), ("y", 4), ("z", 8)]
    assert np.array_equal(cloud_to_points(cloud)["z"], points["z"])


def test_message_data_holds_the_arrays_c_order_bytes(rgb):
    """fill_bytes: one copy into the message's own uint8[] array, the bytes numpy's tobytes() gives, for any
    layout (strided views, structured clouds)."""
    from depthmaster_ros.messages.conversions import fill_bytes
    from sensor_msgs.msg import PointCloud2

    depth = np.arange(70, dtype=np.float32).reshape(5, 14)
    points = np.zeros((2, 3), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<f4")])
    points.view(np.float32)[...] = np.arange(24, dtype=np.float32).reshape(2, 12)
    for values in (depth, depth[1:], depth[:, ::2], rgb, rgb[..., ::-1], points, points[:, ::-1]):
        msg = PointCloud2()
        field = msg.data
        fill_bytes(msg.data, values)
        assert msg.data is field and bytes(msg.data) == np.ascontiguousarray(values).tobytes()
    bgr = array_to_image(rgb[..., ::-1], "bgr8", Header())
    assert bgr.step == 21 and bytes(bgr.data) == np.ascontiguousarray(rgb[..., ::-1]).tobytes()
    assert bytes(points_to_cloud(points, Header()).data) == points.tobytes()


def test_sparse_depth_images():
    from depthmaster_ros.messages.conversions import depth_image_to_meters

    meters = np.array([[1.5, 0.0, np.nan], [np.inf, 2.25, 10.0]], np.float32)
    out = depth_image_to_meters(image_msg(meters, "32FC1"))
    assert np.array_equal(np.isnan(out), [[False, True, True], [True, False, False]])
    assert out[0, 0] == 1.5 and out[1, 2] == 10.0
    millimeters = np.array([[1500, 0, 65535]], np.uint16)
    out = depth_image_to_meters(image_msg(millimeters, "16UC1", pad=2, bigendian=True))
    assert out[0, 0] == 1.5 and np.isnan(out[0, 1]) and np.isclose(out[0, 2], 65.535)
    with pytest.raises(InputError, match="expected 32FC1 .meters. or 16UC1"):
        depth_image_to_meters(image_msg(millimeters.astype(np.uint8), "mono8"))


def test_lidar_clouds_of_any_layout():
    from sensor_msgs.msg import PointCloud2, PointField

    from depthmaster_ros.messages.conversions import cloud_to_xyz

    # Velodyne-like: x, y, z float32, intensity, ring, 22-byte points; one NaN point.
    dtype = np.dtype({"names": ["x", "y", "z", "intensity", "ring"], "formats": ["<f4", "<f4", "<f4", "<f4", "<u2"],
                      "offsets": [0, 4, 8, 12, 20], "itemsize": 22})
    points = np.zeros(3, dtype)
    points["x"], points["y"], points["z"] = [1, 2, np.nan], [3, 4, 5], [6, 7, 8]
    fields = [PointField(name=n, offset=o, datatype=PointField.FLOAT32, count=1) for n, o in
              (("x", 0), ("y", 4), ("z", 8), ("intensity", 12))]
    msg = PointCloud2(height=1, width=3, fields=fields, point_step=22, row_step=66, data=points.tobytes())
    assert np.array_equal(cloud_to_xyz(msg), [[1, 3, 6], [2, 4, 7]])
    msg.fields = fields[1:]
    with pytest.raises(InputError, match="no x field"):
        cloud_to_xyz(msg)


def test_scale_message_layout():
    from depthmaster_ros.scale.robust_fit import ScaleFit
    from depthmaster_ros.messages.conversions import SCALE_LAYOUT, scale_to_msg

    msg = scale_to_msg(ScaleFit(0.5, 0.1, "sparse_depth", 0.8, 0.01, 500, age=0.2), 1_500_000_000)
    assert msg.layout.dim[0].label == ",".join(SCALE_LAYOUT) == "stamp,scale,shift,inlier_ratio,residual_rms,pairs,age"
    assert list(msg.data) == [1.5, 0.5, 0.1, 0.8, 0.01, 500.0, 0.2]


def test_scale_message_appends_the_temporal_stage_fields():
    """With the temporal stage on, its fit quality and drift state follow the 7 fields (their indices unchanged)."""
    from depthmaster_ros.engine.temporal_stage import TEMPORAL_LAYOUT, TemporalReport
    from depthmaster_ros.messages.conversions import SCALE_LAYOUT, scale_to_msg
    from depthmaster_ros.scale.robust_fit import ScaleFit

    fit = ScaleFit(0.5, 0.1, "sparse_depth", 0.8, 0.01, 500, age=0.2)
    aligned = TemporalReport("align_smooth", "aligned", "aligned to the key frame of 2.5 s ago: 93% of the image "
                             "agrees", 0.97, 0.004, key_frames=5, key_frame_age_s=2.5, key_frame_agreement=0.93,
                             drift=0.012)
    msg = scale_to_msg(fit, 1_500_000_000, aligned)
    assert msg.layout.dim[0].label == ("stamp,scale,shift,inlier_ratio,residual_rms,pairs,age,"
                                       "temporal_inlier_ratio,temporal_residual_rms,temporal_reset,"
                                       "temporal_key_frames,temporal_key_frame_age,temporal_drift")
    assert msg.layout.dim[0].size == len(SCALE_LAYOUT + TEMPORAL_LAYOUT) == 13
    assert list(msg.data) == [1.5, 0.5, 0.1, 0.8, 0.01, 500.0, 0.2, 0.97, 0.004, 0.0, 5.0, 2.5, 0.012]
    reset = TemporalReport("align", "anchored", "4.00 s since the previous frame (> temporal_max_gap 1.0 s)",
                           key_frames=1)
    data = list(scale_to_msg(fit, 1_500_000_000, reset).data)
    assert data[:7] == [1.5, 0.5, 0.1, 0.8, 0.01, 500.0, 0.2] and math.isnan(data[7]) and data[9] == 1.0
    assert data[10] == 1.0 and math.isnan(data[11]) and math.isnan(data[12])  # the reference: no key frame before it
