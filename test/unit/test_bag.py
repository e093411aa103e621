"""Offline bag processing in this process: round trips in both storages, exactness against the processing path,
interrupt and resume, bad messages, batching, the pinned outputs."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message

from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.processing_config import ProcessingConfig
from depthmaster_ros.engine.engine import FrameEngine
from depthmaster_ros.engine.job import FrameJob
from depthmaster_ros.model.backends import PipelineBackend
from depthmaster_ros.rosbag.bag_run import Interrupted
from depthmaster_ros.rosbag.io import BagError, ConnectionMap, message_class, open_reader, open_writer
from depthmaster_ros.samples.drifting_sequence import simulated_prediction
from depthmaster_ros.rosbag.run_state import RunState
from depthmaster_ros.samples.sample_bag import LIDAR_TO_CAMERA, TOPICS, write_sample_bag
from depthmaster_ros.rosbag.topics import choose_topics
from depthmaster_ros.messages.conversions import make_header
from depthmaster_ros.engine.temporal_stage import TEMPORAL_LAYOUT
from depthmaster_ros.messages.conversions import (
    SCALE_LAYOUT,
    array_to_image,
    camera_info_to_intrinsics,
    depth_image_to_meters,
    image_to_rgb,
    intrinsics_to_camera_info,
    stamp_to_ns,
)
from depthmaster_ros.samples.sample_scene import PinholeCamera, render

from bag_helpers import SIZE, fake_for, params, read_all, run_bag
from fake_backend import FakeBackend
from message_digest import message_digest


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_bag(tmp_path_factory.mktemp("bags") / "sample", frames=6, **SIZE)


def test_sample_bag_contents(sample):
    bag = read_all(sample)
    assert set(bag) == set(TOPICS.values()) and all(len(v) == 6 for v in bag.values())
    image = bag[TOPICS["image"]][2][1]
    rgb, truth = render(PinholeCamera.with_size(**SIZE), t=0.2)
    assert image.encoding == "bgr8" and np.array_equal(image_to_rgb(image), rgb)
    assert np.array_equal(depth_image_to_meters(bag[TOPICS["truth"]][2][1]), np.where(np.isfinite(truth), truth, np.nan),
                          equal_nan=True)
    lidar = depth_image_to_meters(bag[TOPICS["lidar_depth"]][2][1])
    measured = np.isfinite(lidar)
    assert 0.05 < measured.mean() < 0.3 and np.allclose(lidar[measured], truth[measured], rtol=0.05)
    assert stamp_to_ns(image.header.stamp) == bag[TOPICS["image"]][2][0]  # logged at the stamp


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_equals_processing_path(pipeline, sample, tmp_path, storage):
    values = params(scale_mode="fixed", scale=0.6, shift=0.15, max_range=1000.0)
    out = tmp_path / "out"
    _, go = run_bag(pipeline, sample, out, values, storage=storage)
    state = go()
    assert state.frames_served == 6 and not state.skipped
    bag = read_all(out)
    outputs = {f"/camera/{t}" for t in ("depth", "depth/camera_info", "depth/relative", "depth/colored", "points",
                                        "depth/scale")}
    assert set(bag) == set(TOPICS.values()) | outputs  # inputs copied
    assert all(len(bag[t]) == 6 for t in outputs)
    assert (out / "metadata.yaml").is_file() and not (tmp_path / "out.partial").exists()
    assert list(out.glob("*.mcap" if storage == "mcap" else "*.db3"))

    engine = FrameEngine(PipelineBackend(pipeline))
    config = ProcessingConfig.from_parameters(values)
    for (log_time, image), (_, info), (depth_time, depth), (_, cloud) in zip(
            bag[TOPICS["image"]], bag[TOPICS["camera_info"]], bag["/camera/depth"], bag["/camera/points"]):
        assert depth_time == log_time and depth.header.stamp == image.header.stamp
        assert depth.header.frame_id == image.header.frame_id
        expected, = engine.run([FrameJob("", stamp_to_ns(image.header.stamp), image_to_rgb(image), config,
                                         camera=camera_info_to_intrinsics(info))])  # the stream's frames, in order
        assert np.array_equal(np.frombuffer(bytes(depth.data), np.float32).reshape(48, 64), expected.depth)
        assert bytes(cloud.data) == expected.points.tobytes()


def test_mcap_library_reads_the_output(pipeline, sample, tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    _, go = run_bag(pipeline, sample, tmp_path / "out", params(), copy_input=False)
    go()
    with open(next((tmp_path / "out").glob("*.mcap")), "rb") as handle:
        reader = make_reader(handle, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == "ros2"
        decoded = list(reader.iter_decoded_messages(topics=["/camera/depth/relative"]))
    assert len(decoded) == 6 and decoded[0].decoded_message.encoding == "32FC1"
    assert decoded[0].channel.message_encoding == "cdr" and decoded[0].schema.encoding == "ros2msg"


def compare_bags(a, b):
    bag_a, bag_b = read_all(a), read_all(b)
    assert set(bag_a) == set(bag_b)
    for topic in bag_a:
        assert [t for t, _ in bag_a[topic]] == [t for t, _ in bag_b[topic]], topic
        for (_, x), (_, y) in zip(bag_a[topic], bag_b[topic]):
            assert type(x) is type(y)
            if hasattr(x, "data"):
                assert bytes(x.data) == bytes(y.data) if not isinstance(x.data, list) else list(x.data) == list(y.data)


class StopAfter:
    """A progress callback that asks ``run`` to stop after ``frames`` frames."""

    def __init__(self, run, frames):
        self.run, self.left = run, frames

    def update(self, n):
        self.left -= n
        if self.left <= 0:
            self.run.stop_requested = True


def interrupt_and_resume(fake, sample, tmp_path, values, frames=6):
    """An uninterrupted run (``whole``) and one stopped after 3 frames then resumed (``out``), compared."""
    _, go = run_bag(fake, sample, tmp_path / "whole", values)
    whole = go()
    assert whole.written["/camera/depth"] == frames and whole.written["/camera/depth/scale"] == frames
    run, go = run_bag(fake, sample, tmp_path / "out", values)
    with pytest.raises(Interrupted):
        go(progress=StopAfter(run, 3))
    assert not (tmp_path / "out").exists() and (tmp_path / "out.partial" / "progress.json").is_file()
    assert 3 <= run.state.frames_done < frames

    with pytest.raises(BagError, match="--resume"):
        run_bag(fake, sample, tmp_path / "out", values)[1]()
    resumed_run, go = run_bag(fake, sample, tmp_path / "out", values)
    resumed = go(resume=True)
    assert resumed.frames_served == frames and not (tmp_path / "out.partial").exists()
    compare_bags(tmp_path / "whole", tmp_path / "out")


def test_interrupt_and_resume_equal_an_uninterrupted_run(sample, tmp_path):
    """A metric mode, so the scale tracker's state has to survive the interruption."""
    values = params(scale_mode="sparse_depth", scale_time_constant=0.3, max_range=1000.0)
    fake = fake_for()
    interrupt_and_resume(fake, sample, tmp_path, values)

    # A saved run is only resumed with the settings it was made with.
    stopped_run, go = run_bag(fake, sample, tmp_path / "again", values)
    stopped_run.stop_requested = True
    with pytest.raises(Interrupted):
        go()
    other_settings = params(scale_mode="sparse_depth")
    with pytest.raises(BagError, match="other input, parameters or options"):
        run_bag(fake, sample, tmp_path / "again", other_settings)[1](resume=True)


def drifting_fake(times, width=64, height=48):
    """A test double whose prediction of each frame of the sample bag drifts like DepthMaster's (its own
    normalisation under a per-frame gain and offset)."""
    fake = FakeBackend()
    rng = np.random.default_rng(5)
    for t in times:
        rgb, depth = render(PinholeCamera.with_size(width, height), t=t)
        fake.register(rgb, simulated_prediction(depth, 1 + 0.05 * rng.standard_normal(), 0.02 * rng.standard_normal()))
    return fake


def temporal_fields(bag_path):
    """The temporal stage's fields of every depth/scale message of an output bag."""
    messages = [message for _, message in read_all(bag_path)["/camera/depth/scale"]]
    assert all(m.layout.dim[0].label == ",".join(SCALE_LAYOUT + TEMPORAL_LAYOUT) for m in messages)
    return [dict(zip(SCALE_LAYOUT + TEMPORAL_LAYOUT, m.data)) for m in messages]


def test_interrupt_and_resume_with_the_temporal_stage_equal_an_uninterrupted_run(sample, tmp_path):
    """Drifting predictions in fixed mode: the temporal stage's reference and previous map must survive."""
    values = params(scale_mode="fixed", scale=0.3, shift=0.3, max_range=1000.0, temporal_mode="align_smooth")
    interrupt_and_resume(drifting_fake([k / 10 for k in range(6)]), sample, tmp_path, values)
    fields = temporal_fields(tmp_path / "out")
    assert [f["temporal_reset"] for f in fields] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert all(f["temporal_inlier_ratio"] > 0.8 for f in fields[1:])


def test_dropped_frames_align_across_short_gaps_and_reset_after_long_ones(tmp_path):
    """A recording with frames missing (stamp gaps of 0.4 s and 1.8 s): the stage aligns across the short gap,
    starts over after the long one (temporal_max_gap 1 s), and a resumed run across the gaps equals a whole one."""
    times = [0.0, 0.1, 0.2, 0.6, 0.7, 2.5, 2.6]
    bag = write_sample_bag(tmp_path / "gaps", times=times, **SIZE)
    values = params(scale_mode="sparse_depth", max_range=1000.0)
    interrupt_and_resume(drifting_fake(times), bag, tmp_path, values, frames=len(times))
    fields = temporal_fields(tmp_path / "out")
    assert [f["temporal_reset"] for f in fields] == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert math.isnan(fields[5]["temporal_inlier_ratio"]) and fields[3]["temporal_inlier_ratio"] > 0.7
    assert [round(f["stamp"] - fields[0]["stamp"], 6) for f in fields] == times


def test_bad_messages_are_counted_and_skipped(pipeline, tmp_path):
    pinhole = PinholeCamera.with_size(**SIZE)
    camera = CameraIntrinsics.from_K(64, 48, pinhole.K)
    writer = open_writer(tmp_path / "bad", "sqlite3")
    bag = ConnectionMap(writer)
    for index in range(5):
        stamp = 10**9 * (index + 1)
        header = make_header(stamp, "cam")
        rgb, _ = render(pinhole, t=index)
        image = array_to_image(rgb, "rgb8", header)
        if index == 1:
            image.encoding = "yuv422"
        if index == 2:
            image.data = bytes(10)
        bag.write("/cam/image", "sensor_msgs/msg/Image", stamp, serialize_message(image))
        info = intrinsics_to_camera_info(camera, header)
        if index == 3:
            info.k = [0.0] * 9
        if index != 4:  # frame 4 has no camera info at all
            bag.write("/cam/camera_info", "sensor_msgs/msg/CameraInfo", stamp + 1000, serialize_message(info))
    writer.close()
    _, go = run_bag(pipeline, tmp_path / "bad", tmp_path / "out", params(scale_mode="fixed"))
    state = go()
    assert state.frames_served == 3 and state.frames_done == 5
    reasons = " | ".join(state.skipped)
    assert "image encoding 'yuv422' is not supported" in reasons and "image data has 10 bytes" in reasons
    assert "K is all zeros" in reasons
    notes = " | ".join(state.notes)
    assert "no camera_info within camera_info_tolerance" in notes
    bag = read_all(tmp_path / "out")
    assert len(bag["/cam/depth/relative"]) == 3 and len(bag["/cam/depth"]) == 1  # frames 3, 4 lack camera info


def test_reasons_that_differ_only_in_numbers_are_one_summary_line(pipeline, sample, tmp_path):
    """Random weights against the sample LiDAR: every frame's scale fit is refused with its own numbers ("only
    N% of M pairs agree ..."); the summary counts them as one reason, in the first frame's words."""
    values = params(scale_mode="pointcloud", lidar_to_camera=LIDAR_TO_CAMERA, max_range=1000.0,
                    scale_min_inlier_ratio=0.99, temporal_mode="off")
    _, go = run_bag(pipeline, sample, tmp_path / "out", values)
    state = go()
    assert state.frames_served == 6 and state.scale_frames == 0
    (reason, count), = state.notes.items()
    assert count == 6 and "pairs agree with the best line (need 99%)" in reason

    state = RunState()
    for reason in ("only 41% of 930 pairs agree", "only 38% of 925 pairs agree", "only 3 valid pairs (need 50)",
                   "image 640x480, camera info 320x240", "only 41% of 930 pairs agree"):
        state.count("notes", reason)
    assert state.notes == {"only 41% of 930 pairs agree": 3, "only 3 valid pairs (need 50)": 1,
                           "image 640x480, camera info 320x240": 1}


def test_batches_give_the_same_outputs(pipeline, sample, tmp_path):
    _, go = run_bag(pipeline, sample, tmp_path / "one", params(), copy_input=False)
    go()
    _, go = run_bag(pipeline, sample, tmp_path / "four", params(), copy_input=False, batch=4)
    go()
    one, four = read_all(tmp_path / "one"), read_all(tmp_path / "four")
    for (_, a), (_, b) in zip(one["/camera/depth/relative"], four["/camera/depth/relative"]):
        assert np.abs(np.frombuffer(bytes(a.data), np.float32) - np.frombuffer(bytes(b.data), np.float32)).max() < 1e-5


def test_topic_detection():
    class Connection:
        def __init__(self, topic, msgtype):
            self.topic, self.msgtype, self.id = topic, msgtype, topic

    class Reader:
        connections = [Connection("/a/image", "sensor_msgs/msg/CompressedImage"),
                       Connection("/b/image", "sensor_msgs/msg/CompressedImage"),
                       Connection("/a/camera_info", "sensor_msgs/msg/CameraInfo"),
                       Connection("/b/camera_info", "sensor_msgs/msg/CameraInfo")]

        def messages(self, connections):
            return iter(())

    with pytest.raises(BagError, match="several colour image topics: /a/image, /b/image; choose one with --image"):
        choose_topics(Reader())
    chosen = choose_topics(Reader(), image_topic="/b/image")
    assert chosen["camera_info"] == "/b/camera_info"  # the image's sibling
    with pytest.raises(BagError, match="--lidar-topic /x is not in the bag"):
        choose_topics(Reader(), inputs={"lidar_points": "/x"})
    with pytest.raises(BagError, match=r"no LiDAR scan \(sensor_msgs/msg/PointCloud2\) topic \(name one with "
                                       "--lidar-topic"):
        choose_topics(Reader(), image_topic="/a/image", scale_mode="pointcloud")


def test_ground_truth_is_never_taken_for_a_measurement(tmp_path):
    """The sample bag has two depth images, /camera/depth_truth and /lidar/depth: sparse_depth takes the LiDAR's
    without being told; a bag whose only depth image is named as truth is refused with the option that uses it."""
    from depthmaster_ros.rosbag.io import open_reader
    from depthmaster_ros.rosbag.topics import is_ground_truth

    assert [t for t in ("/camera/depth_truth", "/gt/depth", "/sim/ground_truth/depth", "/cam/depth-gt",
                        "/lidar/depth", "/camera/aligned_depth_to_color/image_raw", "/gtx/depth") if is_ground_truth(t)] \
        == ["/camera/depth_truth", "/gt/depth", "/sim/ground_truth/depth", "/cam/depth-gt"]
    bag = write_sample_bag(tmp_path / "sample", frames=2, width=32, height=24)
    reader = open_reader(bag)
    try:
        chosen = choose_topics(reader, scale_mode="sparse_depth")
        assert chosen["image"] == "/camera/image_raw" and chosen["camera_info"] == "/camera/camera_info"
        assert chosen["sparse_depth"] == "/lidar/depth"
        assert choose_topics(reader, scale_mode="sparse_depth",
                             inputs={"sparse_depth": "/camera/depth_truth"})["sparse_depth"] == "/camera/depth_truth"
    finally:
        reader.close()

    class Connection:
        def __init__(self, topic, msgtype):
            self.topic, self.msgtype, self.id = topic, msgtype, topic

    class TruthOnly:
        connections = [Connection("/camera/image_raw", "sensor_msgs/msg/CompressedImage"),
                       Connection("/camera/depth_truth", "sensor_msgs/msg/Image")]

        def messages(self, connections):
            from depthmaster_ros.messages.conversions import array_to_image, make_header
            from depthmaster_ros.rosbag.io import cdr_bytes

            yield 0, 0, cdr_bytes(array_to_image(np.ones((2, 2), np.float32), "32FC1", make_header(0, "cam")))

    with pytest.raises(BagError, match=r"the bag's only sparse depth image .*topic \(/camera/depth_truth\) is named "
                                       r"as ground truth, not a measurement; to fit the scale on it anyway, name it "
                                       r"with --sparse-depth-topic"):
        choose_topics(TruthOnly(), scale_mode="sparse_depth")


PIN = json.loads((Path(__file__).parents[1] / "data" / "bag_outputs_pin.json").read_text())


@pytest.mark.parametrize("name", sorted(PIN))
def test_outputs_equal_the_pinned_messages(sample, tmp_path, name):
    """depthmaster-bag's messages on the sample bag, field for field, as before the engine redesign (the digests
    in test/data/bag_outputs_pin.json were written by the code of 022fd81, the test double standing in for the
    model): the redesign changed where the code lives, not what it publishes. The pinned configurations predate
    the temporal stage, whose default (align) changes every frame after the first by design: they run with
    temporal_mode off, the behaviour they were written with, so every other part of the path stays pinned."""
    values = params(**PIN[name]["changes"], temporal_mode="off")
    _, go = run_bag(fake_for(6), sample, tmp_path / "out", values)
    go()
    reader = open_reader(tmp_path / "out")
    got = {}
    for connection, log_time, raw in reader.messages():
        message = deserialize_message(raw, message_class(connection.msgtype))
        got.setdefault(connection.topic, []).append([log_time, message_digest(message)])
    reader.close()
    assert got.keys() == PIN[name]["messages"].keys()
    for topic, expected in PIN[name]["messages"].items():
        assert got[topic] == expected, topic


