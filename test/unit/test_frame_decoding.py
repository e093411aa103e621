"""A camera message becomes the image its job runs on within max_image_pixels and max_frame_memory
(messages/frame_decoding.py): as it is, reduced before any full-size work, or refused; the camera info paired with
a reduced frame is scaled to it."""

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from depthmaster_ros.processing_config import ProcessingConfig
from depthmaster_ros.engine.frame_memory import MIB, plan_frame
from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.messages.conversions import InputError, compressed_size, decode_image, intrinsics_to_camera_info, \
    make_header
from depthmaster_ros.messages.frame_decoding import decode_frame
from depthmaster_ros.messages.pairing import FramePairing
from depthmaster_ros.samples.hostile_images import jpeg_bomb, png_bomb

ALL = ("relative", "colored", "depth", "points", "scale")


def compressed(data: bytes, fmt: str) -> CompressedImage:
    return CompressedImage(header=make_header(1, "cam"), format=fmt, data=data)


@pytest.mark.parametrize("fmt, bomb", [("png", png_bomb), ("jpeg", jpeg_bomb)])
def test_a_small_file_declaring_a_huge_image_is_reduced_to_the_plan(fmt, bomb):
    msg = compressed(bomb(7000, 7000), fmt)
    assert len(msg.data) < 100_000 and compressed_size(bytes(msg.data)) == (7000, 7000)
    config = ProcessingConfig(max_frame_memory=384)
    rgb, plan = decode_frame(msg, True, config, ALL)
    assert plan == plan_frame(7000, 7000, len(msg.data), config, ALL, 384 * MIB)
    assert plan.reduced and rgb.shape == (plan.size[1], plan.size[0], 3) and rgb.dtype == np.uint8


def test_a_frame_within_the_budget_decodes_exactly_as_before():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    for ext in (".png", ".jpg"):
        ok, data = cv2.imencode(ext, rgb[..., ::-1].copy())
        msg = compressed(data.tobytes(), ext[1:])
        decoded, plan = decode_frame(msg, True, ProcessingConfig(), ALL)
        reference = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert not plan.reduced and np.array_equal(decoded, reference)


@pytest.mark.parametrize("encoding, channels, dtype", [("rgb8", 3, np.uint8), ("bgra8", 4, np.uint8),
                                                        ("mono16", 1, np.uint16)])
def test_a_raw_frame_is_reduced_straight_from_the_message(encoding, channels, dtype):
    """Same as decoding it whole and area-resizing the result (up to rounding: the conversion comes after)."""
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, np.iinfo(dtype).max, (300, 400, channels)).astype(dtype)
    step = 400 * channels * pixels.itemsize + 8  # padded rows
    rows = np.zeros((300, step), np.uint8)
    rows[:, :400 * channels * pixels.itemsize] = pixels.view(np.uint8).reshape(300, -1)
    msg = Image(header=make_header(1, "cam"), height=300, width=400, encoding=encoding, step=step,
                data=rows.tobytes())
    full = decode_image(msg, False)
    reduced = decode_image(msg, False, size=(100, 75))
    reference = cv2.resize(full, (100, 75), interpolation=cv2.INTER_AREA)
    assert reduced.shape == (75, 100, 3)
    assert np.abs(reduced.astype(int) - reference.astype(int)).max() <= 1


def test_refusals_name_the_limit():
    config = ProcessingConfig(max_frame_memory=16)
    raw = Image(header=make_header(1, "cam"), height=3000, width=3000, encoding="rgb8", step=9000,
                data=bytes(27_000_000))
    with pytest.raises(InputError, match="more than max_frame_memory 16 MiB"):
        decode_frame(raw, False, config, ALL)
    with pytest.raises(InputError, match="more than max_image_pixels 1,000,000"):
        decode_frame(compressed(png_bomb(2000, 1000), "png"), True, ProcessingConfig(max_image_pixels=1_000_000),
                     ALL)
    tiff_like = compressed(b"II*\x00" + bytes(100), "png")  # another format: its size is unknown
    with pytest.raises(InputError, match="says png but its data is TIFF; it was not decoded"):
        decode_frame(tiff_like, True, config, ALL)
    headless = compressed(b"\x89PNG\r\n\x1a\n" + bytes(100), "png")  # a PNG's signature but no IHDR: size unknown
    with pytest.raises(InputError, match="could not be decoded: no JPEG or PNG header"):
        decode_frame(headless, True, config, ALL)


def test_the_camera_info_of_a_reduced_frame_is_matched_at_the_declared_size_and_scaled():
    camera = CameraIntrinsics.from_K(4000, 3000, np.array([[3000.0, 0, 1999.5], [0, 3000.0, 1499.5], [0, 0, 1]]))
    pairing = FramePairing()
    assert pairing.add_camera_info(intrinsics_to_camera_info(camera, make_header(7, "cam"))) is None
    rgb = np.zeros((300, 400, 3), np.uint8)  # the frame, reduced to a tenth
    job, problems = pairing.job("", 7, rgb, ProcessingConfig(), ALL, declared=(4000, 3000))
    assert problems == []
    assert (job.camera.width, job.camera.height) == (400, 300)
    assert np.allclose(job.camera.K, camera.scaled(400, 300).K)
    job, problems = pairing.job("", 7, rgb, ProcessingConfig(), ALL, declared=(4000, 2000))
    assert job.camera is None and problems == [
        ("camera_info", "camera_info is 4000x3000 but the image is 4000x2000; metric depth and points need "
                        "matching sizes")]
