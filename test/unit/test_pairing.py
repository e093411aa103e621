"""messages/pairing.py, shared by the node and the bag tool: which camera info and which measurements a frame gets,
and why it gets none. Known answers from messages built here with known stamps and contents."""

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image

from depthmaster_ros.engine.job import OUTPUTS
from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.messages.conversions import InputError, intrinsics_to_camera_info, make_header
from depthmaster_ros.messages.pairing import FramePairing, decode_measurement
from depthmaster_ros.processing_config import ProcessingConfig
from depthmaster_ros.scale.source import get_source

MS = 1_000_000
WIDTH, HEIGHT = 8, 6
RGB = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
SPARSE = get_source("sparse_depth")


def camera_info(stamp_ns, fx=10.0, width=WIDTH, height=HEIGHT) -> CameraInfo:
    K = np.array([[fx, 0, width / 2], [0, fx, height / 2], [0, 0, 1]])
    return intrinsics_to_camera_info(CameraIntrinsics.from_K(width, height, K), make_header(stamp_ns, "cam"))


def depth_mm(stamp_ns, millimeters) -> Image:
    """A 16UC1 depth image (REP 118 millimeters) filled with one value."""
    values = np.full((HEIGHT, WIDTH), millimeters, np.uint16)
    return Image(header=make_header(stamp_ns, "cam"), height=HEIGHT, width=WIDTH, encoding="16UC1",
                 is_bigendian=0, step=2 * WIDTH, data=values.tobytes())


def test_the_camera_info_with_the_exact_stamp_wins_over_a_nearer_tolerance_match():
    pairing = FramePairing()
    for stamp, fx in ((100 * MS, 10.0), (110 * MS, 20.0), (125 * MS, 30.0)):
        assert pairing.add_camera_info(camera_info(stamp, fx)) is None
    config = ProcessingConfig(camera_info_tolerance=0.05)
    job, problems = pairing.job("", 110 * MS, RGB, config)
    assert job.camera.fx == 20.0 and problems == []
    job, _ = pairing.job("", 121 * MS, RGB, config)  # no exact one: the nearest (125 ms, 4 ms away)
    assert job.camera.fx == 30.0
    job, problems = pairing.job("", 300 * MS, RGB, config)  # 175 ms from the nearest: beyond 0.05 s
    assert job.camera is None and problems == []
    assert job.camera_missing == ("no camera_info within camera_info_tolerance of the image stamp (nearest 0.175 s "
                                  "away)")


def test_a_camera_info_of_another_size_is_a_rejection_and_an_unusable_one_is_refused_on_arrival():
    pairing = FramePairing()
    assert pairing.add_camera_info(camera_info(5 * MS, width=16, height=12)) is None
    job, problems = pairing.job("front", 5 * MS, RGB, ProcessingConfig())
    reason = "camera_info is 16x12 but the image is 8x6; metric depth and points need matching sizes"
    assert job.camera is None and job.camera_missing == reason and problems == [("camera_info", reason)]
    assert job.stream == "front" and job.stamp_ns == 5 * MS

    broken = camera_info(6 * MS)
    broken.k = [0.0] * 9  # no focal length
    assert pairing.add_camera_info(broken).startswith("camera_info rejected: ")
    assert pairing.camera_for(6 * MS, RGB.shape, 0.0)[0] is None  # it was not kept


def test_measurements_are_paired_by_stamp_and_decoded_and_their_camera_info_at_their_own_stamp():
    """sparse_depth/camera_info is paired at the depth image's stamp (at_stamp_of), not the colour image's: of the
    two depth camera infos, the one with the depth image's stamp is taken although the other has the image's."""
    pairing = FramePairing()
    pairing.add_camera_info(camera_info(130 * MS))
    assert pairing.add("sparse_depth", depth_mm(100 * MS, 2500)) is None
    assert pairing.add("sparse_depth/camera_info", camera_info(100 * MS, fx=11.0)) is None
    assert pairing.add("sparse_depth/camera_info", camera_info(130 * MS, fx=33.0)) is None
    config = ProcessingConfig(scale_mode="sparse_depth", metric_source_tolerance=0.05)
    job, problems = pairing.job("", 130 * MS, RGB, config)
    assert problems == [] and job.measurement_notes == {}
    assert set(job.measurements) == {"sparse_depth", "sparse_depth/camera_info"}
    assert job.measurements["sparse_depth"].dtype == np.float32
    assert np.all(job.measurements["sparse_depth"] == np.float32(2.5))  # 2500 mm
    assert job.measurements["sparse_depth/camera_info"].fx == 11.0


def test_a_frame_without_metric_outputs_or_scale_source_pairs_no_measurement():
    pairing = FramePairing()
    pairing.add("sparse_depth", depth_mm(100 * MS, 1000))
    fitted = ProcessingConfig(scale_mode="sparse_depth")
    job, _ = pairing.job("", 100 * MS, RGB, fitted, outputs={"relative", "colored"})
    assert job.measurements == {} and job.measurement_notes == {} and job.outputs == {"relative", "colored"}
    job, _ = pairing.job("", 100 * MS, RGB, ProcessingConfig(scale_mode="none"), outputs=OUTPUTS)
    assert job.measurements == {}
    job, _ = pairing.job("", 100 * MS, RGB, fitted, outputs=OUTPUTS)
    assert "sparse_depth" in job.measurements


def test_missing_and_unusable_measurements_say_why():
    pairing = FramePairing()
    config = ProcessingConfig(scale_mode="sparse_depth", metric_source_tolerance=0.05)
    job, problems = pairing.job("", 100 * MS, RGB, config)
    assert job.measurement_notes == {"sparse_depth": "no valid sparse depth image received yet"} and problems == []

    pairing.add("sparse_depth", depth_mm(400 * MS, 1000))
    job, _ = pairing.job("", 100 * MS, RGB, config)
    assert job.measurement_notes["sparse_depth"] == ("no sparse depth image within metric_source_tolerance of the "
                                                     "image stamp (nearest 0.300 s away)")

    wrong = depth_mm(500 * MS, 1000)
    wrong.encoding = "mono8"
    pairing.add("sparse_depth", wrong)  # kept as it came: decoded only when a frame uses it
    job, problems = pairing.job("", 500 * MS, RGB, config)
    reason = ("sparse depth encoding 'mono8' is not supported; expected 32FC1 (meters) or 16UC1 (millimeters), "
              "REP 118")
    assert job.measurements == {} and job.measurement_notes == {"sparse_depth": reason}
    assert problems == [("metric_source", reason)]


def test_an_input_no_source_takes_is_refused():
    assert FramePairing().add("thermal", depth_mm(1, 1)) == "no scale source takes the input 'thermal'"


def test_decode_measurement_turns_any_failure_into_an_input_error():
    short = depth_mm(1, 1000)
    short.data = short.data[:10]
    with pytest.raises(InputError, match="sparse depth image 8x6 .step 16. has 10 bytes"):
        decode_measurement("depth_image", short)
    with pytest.raises(InputError, match="^camera info message could not be read: AttributeError"):
        decode_measurement("camera_info", object())


def test_clear_forgets_everything():
    pairing = FramePairing()
    pairing.add_camera_info(camera_info(1 * MS))
    pairing.add("sparse_depth", depth_mm(1 * MS, 1000))
    pairing.clear()
    job, _ = pairing.job("", 1 * MS, RGB, ProcessingConfig(scale_mode="sparse_depth"))
    assert job.camera is None and job.camera_missing == "no valid camera_info received yet"
    assert job.measurement_notes == {"sparse_depth": "no valid sparse depth image received yet"}


def test_await_companions_returns_at_once_when_the_exact_stamps_are_there():
    """Live streams wait for the camera info and the measurements published with the image; when they are there
    the wait ends without using any of its patience (a generous 60 s here: the test would hang otherwise)."""
    pairing = FramePairing()
    pairing.add_camera_info(camera_info(7 * MS))
    pairing.add("sparse_depth", depth_mm(7 * MS, 1000))
    pairing.await_companions(7 * MS, SPARSE, 60.0, 60.0, published=lambda name: True)
    job, _ = pairing.job("", 7 * MS, RGB, ProcessingConfig(scale_mode="sparse_depth"))
    assert job.camera is not None and "sparse_depth" in job.measurements
