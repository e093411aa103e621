"""What still got through at the boundaries, as pure logic (no ROS graph, no process): a model's NaN published as
free space, absurd parameter values, params files that only rcl's traceback explained, compressed data of another
format than declared, a cloud that names a field twice, a camera info of another frame, an output two runs write
at once, and a bag that stops at its first damaged chunk. The node and command-line halves of these cases are in
test/system/test_hostile_start.py and test/system/test_hostile_bag_command_line.py."""

import math
import os
import shutil

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, PointCloud2, PointField
from std_msgs.msg import Header

from depthmaster_ros.processing_config import ProcessingConfig
from depthmaster_ros.engine.engine import FrameEngine
from depthmaster_ros.engine.job import FrameJob, Why
from depthmaster_ros.engine.limits import frame_problem
from depthmaster_ros.geometry.depth_conversion import apply_range_limits, sqrt_disparity_to_depth
from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.messages.conversions import InputError, cloud_to_xyz, compressed_to_rgb, image_to_rgb, \
    intrinsics_to_camera_info
from depthmaster_ros.messages.pairing import FramePairing
from depthmaster_ros.parameters import check_values, load_params_file, parameters_yaml, specs
from depthmaster_ros.samples.sample_scene import PinholeCamera

from fake_backend import FakeBackend, injected

# ------------------------------------------------------------------------------------ non-finite model output


def test_a_nan_prediction_is_nan_depth_never_free_space():
    p = np.array([math.nan, math.inf, -math.inf, 0.5, 0.0], np.float32)
    depth = apply_range_limits(sqrt_disparity_to_depth(p, 0.6, 0.15), 0.1, 100.0)
    assert np.isnan(depth[:3]).all()  # no measurement (REP 117), not +Inf ("nothing there")
    assert depth[3] == pytest.approx(1 / (0.6 * 0.5 + 0.15) ** 2) and depth[4] == pytest.approx(1 / 0.15 ** 2)


@pytest.fixture
def fake():
    fake = FakeBackend()
    with injected(fake):
        yield fake


def frame_with_holes(fake, fraction: float, seed: int):
    """A frame whose registered prediction is NaN on the first ``fraction`` of its rows."""
    pinhole = PinholeCamera.with_size(64, 48)
    rgb, _, relative = fake.frame(pinhole, t=seed / 10.0)
    relative = relative.copy()
    rows = int(round(48 * fraction))
    relative[:rows] = np.nan
    fake.register(rgb, relative)
    return rgb, relative, CameraIntrinsics.from_K(64, 48, pinhole.K)


def test_the_engine_reports_a_partly_non_finite_output_and_refuses_a_mostly_non_finite_one(fake):
    from depthmaster_ros.engine.limits import MAX_NONFINITE_FRACTION

    config = ProcessingConfig(processing_res=64, scale_mode="fixed", scale=0.6, shift=0.15, max_range=1000.0)
    engine = FrameEngine(fake)
    rgb, relative, camera = frame_with_holes(fake, 0.25, 1)
    products, = engine.run([FrameJob("", 1, rgb, config, camera=camera)])
    holes = np.isnan(relative)
    assert products.failed is None and products.nonfinite_fraction == pytest.approx(0.25)
    assert np.isnan(products.depth[holes]).all() and np.isfinite(products.depth[~holes]).any()
    assert not np.isinf(products.depth[holes]).any()  # never +Inf (free space) where the model failed
    assert np.isnan(products.points["z"][holes]).all()

    rgb, relative, camera = frame_with_holes(fake, 0.75, 2)
    assert 0.75 > MAX_NONFINITE_FRACTION
    products, = engine.run([FrameJob("", 2, rgb, config, camera=camera)])
    assert products.failed.why is Why.FAILED and products.depth is None and products.relative is None
    assert "75.0% of the model's output is not finite (NaN/Inf): the frame is refused" in products.failed.detail


# ------------------------------------------------------------------------------------ physical bounds


@pytest.mark.parametrize("values, problem", [
    ({"scale": 1e308}, "scale must be <= 100.0"),
    ({"shift": -1e308}, "shift must be >= -100.0"),
    ({"shift": 1e308}, "shift must be <= 100.0"),
    ({"lidar_to_camera": [1e300, 0, 0, 0, 0, 0, 1]}, "lidar_to_camera: the translation [1e+300, 0.0, 0.0] is "
                                                     "beyond +-100 m"),
    ({"sparse_depth_to_camera": [0, 0, 250.0, 0, 0, 0, 1]}, "sparse_depth_to_camera: the translation"),
    ({"lidar_to_camera": [0, 0, 0, 0, 0, 0, 1e300]}, "has length 1e+300; write a unit quaternion"),
    ({"processing_res": 1}, "processing_res: 1 is below the model's smallest useful size 64"),
    ({"max_image_pixels": 1}, "max_image_pixels must be >= 4096"),
    ({"min_range": 1e9}, "min_range must be <= 1000.0"),
    ({"max_range": 1e300}, "max_range must be <= 1000000.0"),
    ({"warmup_size": "100000x100000"}, "warmup_size: 100000x100000 has a side over 16384 pixels"),
])
def test_absurd_values_are_refused_with_the_bound(values, problem):
    assert any(problem in p for p in check_values(values)), check_values(values)


def test_the_translation_bound_is_for_typed_extrinsics_not_for_tf():
    """A LiDAR cloud in the map frame is hundreds of meters from the camera: TF's transform is used, while the
    same value typed as lidar_to_camera is the unit mistake the bound catches. (Guards the TF extrinsics against
    the bound; not a case that failed before.)"""
    from depthmaster_ros.ros.tf_extrinsics import TfExtrinsics

    far = [350.0, -120.0, 4.0, 0.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="is beyond \\+-100 m"):
        ProcessingConfig(scale_mode="pointcloud", lidar_to_camera=far)
    extrinsics = TfExtrinsics("tf", lookup=lambda target, source: far)
    config, unusable = extrinsics.apply(ProcessingConfig(scale_mode="pointcloud"), {"lidar_points": "map"}, "cam")
    assert config.lidar_to_camera == tuple(far) and unusable == {}
    with pytest.raises(ValueError, match="finite numbers"):
        config.with_measured(lidar_to_camera=[math.nan] * 7)


def test_every_numeric_parameter_states_its_bounds():
    """In config/depthmaster.yaml and in the ROS descriptor (what ``ros2 param describe`` shows)."""
    from depthmaster_ros.ros.node_parameters import descriptor

    yaml_text = parameters_yaml().replace("\n    # ", " ")
    for item in specs():
        if item.type in (int, float):
            assert item.min_value is not None and item.max_value is not None, item.name
            assert f"range [{item.min_value}, {item.max_value}]" in yaml_text, item.name
            ranges = descriptor(item).integer_range if item.type is int else descriptor(item).floating_point_range
            assert (ranges[0].from_value, ranges[0].to_value) == (item.min_value, item.max_value), item.name
        elif item.type is list and item.item_type is float and "to_camera" in item.name:
            assert "within +-100 m" in item.note and item.note in yaml_text
            assert item.note in descriptor(item).additional_constraints


def test_a_setting_that_refuses_every_frame_says_it_is_the_cause():
    config = ProcessingConfig(max_image_pixels=100_000)
    reason = frame_problem((480, 640, 3), config)
    assert "every frame of this size is refused until max_image_pixels is at least 307,200" in reason
    with pytest.raises(InputError, match="until max_image_pixels is at least 307,200"):
        image_to_rgb(type("Image", (), dict(encoding="rgb8", height=480, width=640, step=1920, data=b"",
                                            is_bigendian=0))(), 100_000)


# ------------------------------------------------------------------------------------ params files


@pytest.mark.parametrize("text, expected", [
    ("/**:\n  ros__parameters:\n\tscale: 1\n", "line 3 column 1: not valid YAML: "),
    ("/**:\n  ros__parameters:\n    lidar_to_camera: [0.1, 0, 0, 0, 0, 0, 1]\n",
     "line 3: lidar_to_camera mixes decimal and integer values in one list; a ROS parameter list holds one type "
     "(write every number with a decimal point, e.g. 0.0 for 0)"),
    ("/**:\n  ros__parameters:\n    cameras: [front, 1]\n", "line 3: cameras mixes string and integer values"),
    ("/**:\n  ros__parameters:\n    ground_region: [[0, 0], [1, 1]]\n", "line 3: ground_region is a list holding a "
                                                                        "list"),
    ("/**:\n  scale: 1\n", "line 2: 'scale' must be a node name holding 'ros__parameters:'"),
    ("/**:\n  ros__parameters:\n    a: &x 1\n    scale: *x\n", "line 4: aliases (*x) are not supported"),
    ("- scale: 1\n", "line 1: expected a ROS 2 params file"),
    ("/**:\n  ros__parameters:\n    scale:\n", "line 3: scale has no value"),
    ("/**:\n  ros__parameters:\n    scale_mode: fixed\n    processing_res: 512.0\n",
     "line 4: processing_res must be an integer, got float 512.0; write 512"),
])
def test_a_params_file_problem_is_one_line_naming_the_file_and_line(tmp_path, text, expected):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        load_params_file(path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(path)) and expected in message, message


def test_the_node_reads_its_params_files_and_overrides_before_rclpy(tmp_path, capsys):
    """These would stop rclpy.init with RCLError and a traceback (exit 1); main returns 2 with one line, before
    importing rclpy."""
    from depthmaster_ros.ros.run_node import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    lidar_to_camera: [0.1, 0, 0, 0, 0, 0, 1]\n")
    cases = [(["--ros-args", "--params-file", str(bad)], f"{bad} line 3: lidar_to_camera mixes"),
             (["--ros-args", "--params-file", str(tmp_path / "missing.yaml")], "cannot read params file"),
             (["--ros-args", "-p", "scale:=[1, 2.0]"], "-p scale:=[1, 2.0]: scale mixes integer and decimal"),
             (["--ros-args", "-p", "scale"], "-p 'scale' is not NAME:=VALUE"),
             (["--params-file", str(bad)], "unexpected argument '--params-file'")]
    for args, expected in cases:
        assert main(["depthmaster-node", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("depthmaster-node: ") and expected in err, err


# ------------------------------------------------------------------------------------ messages


def test_compressed_data_must_be_the_declared_format():
    image = np.random.default_rng(0).integers(0, 256, (24, 32, 3), np.uint8)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    bmp = cv2.imencode(".bmp", image)[1].tobytes()
    png = cv2.imencode(".png", image)[1].tobytes()
    for fmt, data, found in (("png", jpeg, "JPEG"), ("png", bmp, "BMP"), ("jpeg", png, "PNG"), ("", bmp, "BMP"),
                             ("rgb8; png compressed bgr8", jpeg, "JPEG")):
        with pytest.raises(InputError, match=f"but its data is {found}; it was not decoded"):
            compressed_to_rgb(CompressedImage(format=fmt, data=data))
    with pytest.raises(InputError, match="not a known image format \\(it starts with 00 01 02 03\\)"):
        compressed_to_rgb(CompressedImage(format="png", data=bytes(range(64))))
    assert compressed_to_rgb(CompressedImage(format="", data=png)).shape == (24, 32, 3)  # no format: either


def test_a_cloud_naming_a_field_twice_is_refused():
    points = np.arange(12, dtype=np.float32).reshape(-1, 4)
    msg = PointCloud2(height=1, width=3, point_step=16, row_step=48, data=points.tobytes())
    msg.fields = [PointField(name=name, offset=offset, datatype=PointField.FLOAT32, count=1)
                  for name, offset in (("x", 0), ("y", 4), ("z", 8), ("x", 12))]
    with pytest.raises(InputError, match="lists the field\\(s\\) 'x' more than once"):
        cloud_to_xyz(msg)


def test_a_camera_info_of_another_frame_is_not_paired_with_the_image():
    pinhole = PinholeCamera.with_size(64, 48)
    camera = CameraIntrinsics.from_K(64, 48, pinhole.K)
    pairing = FramePairing()
    info = intrinsics_to_camera_info(camera, Header(frame_id="depth_optical_frame"))
    info.header.stamp.sec = 5
    assert pairing.add_camera_info(info) is None
    rgb = np.zeros((48, 64, 3), np.uint8)
    config = ProcessingConfig(scale_mode="fixed")
    job, problems = pairing.job("", 5 * 10**9, rgb, config, frame_id="color_optical_frame")
    assert job.camera is None and len(problems) == 1 and problems[0][0] == "camera_info"
    assert "camera_info frame_id 'depth_optical_frame' is not the image's 'color_optical_frame'" in problems[0][1]
    assert "frame_id 'depth_optical_frame'" in job.camera_missing
    job, problems = pairing.job("", 5 * 10**9, rgb, config, frame_id="/depth_optical_frame")  # tf2's '/' prefix
    assert job.camera is not None and problems == []


def test_an_unknown_latency_is_not_a_number_of_milliseconds():
    from depthmaster_ros.ros.diagnostics import FrameStats

    stats = FrameStats()
    stats.published(None)  # use_sim_time without /clock: the node's time is 0
    snapshot = stats.snapshot()
    assert snapshot["processed"] == 1 and math.isnan(snapshot["latency_p50_ms"])
    stats.published(0.25)
    assert stats.snapshot()["latency_p50_ms"] == pytest.approx(250.0)


# ------------------------------------------------------------------------------------ depthmaster-bag


def test_one_run_per_output_and_a_dead_run_s_lock_is_taken_over(tmp_path):
    from depthmaster_ros.rosbag.io import BagError
    from depthmaster_ros.rosbag.output_lock import OutputLock

    output = tmp_path / "out"
    first = OutputLock(output).acquire()
    with pytest.raises(BagError, match=f"output '{output}' is being written by another run \\(pid {os.getpid()} "):
        OutputLock(output).acquire()
    first.release()
    assert not (tmp_path / "out.lock").exists()
    (tmp_path / "out.lock").write_text("pid 999999 on robot, started 2026-12-05 10:00:00")  # SIGKILLed: no flock
    taken = OutputLock(output).acquire()
    assert taken.stale == "pid 999999 on robot, started 2026-12-05 10:00:00"
    taken.release()


def test_a_bag_run_refuses_an_output_another_run_writes(tmp_path):
    from bag_helpers import fake_for, params, run_bag

    from depthmaster_ros.rosbag.io import BagError
    from depthmaster_ros.rosbag.output_lock import OutputLock
    from depthmaster_ros.samples.sample_bag import write_sample_bag

    bag = write_sample_bag(tmp_path / "in", frames=2, width=64, height=48)
    with OutputLock(tmp_path / "out"):
        _, go = run_bag(fake_for(2), bag, tmp_path / "out", params())
        with pytest.raises(BagError, match="is being written by another run"):
            go()
    assert not (tmp_path / "out.partial").exists()  # nothing was written
    _, go = run_bag(fake_for(2), bag, tmp_path / "out", params())
    assert go().frames_served == 2


def test_the_output_folder_is_checked_for_room(tmp_path, monkeypatch):
    from depthmaster_ros.rosbag import output_lock
    from depthmaster_ros.rosbag.io import BagError

    source = tmp_path / "in"
    source.mkdir()
    (source / "in.mcap").write_bytes(b"\0" * 40_000)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(output_lock.shutil, "disk_usage", lambda path: usage._replace(free=10_240))
    with pytest.raises(BagError, match="only 10 KiB are free in"):
        output_lock.check_output_folder(tmp_path / "out", source, True)
    monkeypatch.setattr(output_lock.shutil, "disk_usage", lambda path: usage._replace(free=20 * 2**20))
    warnings = []
    output_lock.check_output_folder(tmp_path / "out", source, True, warnings.append)
    assert warnings == []
    (source / "in.mcap").write_bytes(b"\0" * (15 * 2**20))
    output_lock.check_output_folder(tmp_path / "out", source, True, warnings.append)
    assert len(warnings) == 1 and "less than the output's least size (about 30 MiB" in warnings[0]


def test_salvage_reads_past_a_damaged_chunk_in_the_middle(tmp_path):
    from bag_helpers import damage_a_middle_chunk

    from depthmaster_ros.rosbag.io import open_reader
    from depthmaster_ros.samples.sample_bag import TOPICS, write_sample_bag

    intact = write_sample_bag(tmp_path / "intact", frames=16, width=160, height=120)
    damaged, (begin, end) = damage_a_middle_chunk(intact, tmp_path / "damaged")
    with pytest.raises(Exception, match="Data corruption"):  # rosbags opens it (its index is intact), then stops
        reader = open_reader(damaged)
        list(reader.messages())

    reader = open_reader(damaged, salvage=True)
    report = reader.report
    got = [(c.topic, t, bytes(d)) for c, t, d in reader.messages()]
    reader.close()
    whole = open_reader(intact)
    every = [(c.topic, t, bytes(d)) for c, t, d in whole.messages()]
    whole.close()
    assert set(got) < set(every) and got == [m for m in every if m in set(got)]  # nothing invented, order kept
    lost = len(every) - len(got)
    assert 0 < lost < len(every) / 2 and sum(report.lost().values()) == lost
    late = max(t for _, t, _ in every)
    assert any(t == late for _, t, _ in got)  # read past the damage, to the end
    damage = report.files[0]
    assert damage.problem == "" and len(damage.skipped) == 1 and damage.skipped[0][0] == begin
    assert "skipped 1 damaged region(s)" in report.summary() and TOPICS["image"] in report.summary()


def test_a_reading_error_with_salvage_does_not_suggest_salvage():
    from depthmaster_ros.rosbag.bag_frames import BagFrames
    from depthmaster_ros.rosbag.io import BagError

    class Reader:
        connections = []
        report = None

        def messages(self):
            raise OSError("disk gone")
            yield

    config = ProcessingConfig()
    plain = BagFrames(Reader(), {"image": "/image"}, {"camera_info_tolerance": 0.1, "metric_source_tolerance": 0.1},
                      config, set())
    with pytest.raises(BagError, match="--salvage reads what is readable"):
        list(plain.steps())
    salvaging = Reader()
    salvaging.report = object()  # a SalvageReader's report: --salvage was given
    frames = BagFrames(salvaging, {"image": "/image"}, {"camera_info_tolerance": 0.1,
                                                        "metric_source_tolerance": 0.1}, config, set())
    with pytest.raises(BagError) as error:
        list(frames.steps())
    assert "disk gone" in str(error.value) and "--salvage" not in str(error.value)
