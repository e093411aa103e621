"""Bags cut short (the commonest damaged bag: a robot that lost power while recording): refused with a message
that names --salvage, and with it read as far as they are readable, processed, and what was lost reported."""


import numpy as np
import pytest
from rclpy.serialization import deserialize_message

from depthmaster_ros.rosbag.io import BagError, message_class, open_reader
from depthmaster_ros.rosbag.salvage import SalvageReader
from depthmaster_ros.samples.sample_bag import TOPICS, write_sample_bag

from bag_helpers import cut_short

from bag_helpers import params, run_bag, fake_for

SIZE = dict(width=160, height=120)  # big enough for several 1 MiB mcap chunks
FRAMES = 16


@pytest.fixture(scope="module", params=["mcap", "sqlite3"])
def intact(request, tmp_path_factory):
    return write_sample_bag(tmp_path_factory.mktemp("salvage") / request.param, frames=FRAMES,
                            storage=request.param, **SIZE)


def messages(reader):
    out = [(c.topic, t, bytes(d)) for c, t, d in reader.messages()]
    reader.close()
    return out


def test_an_intact_bag_reads_the_same_salvaged(intact):
    salvaged = SalvageReader(intact)
    assert salvaged.report.summary().endswith(f"nothing lost (metadata.yaml lists {FRAMES * 5})")
    assert messages(salvaged) == messages(open_reader(intact))  # the same messages in the same order


@pytest.mark.parametrize("metadata", [True, False])
def test_a_bag_cut_short_is_refused_then_salvaged(intact, tmp_path, metadata):
    cut = cut_short(intact, tmp_path, 0.6, metadata)
    expected = ("File end magic is invalid" if intact.name == "mcap" else "database disk image is malformed") \
        if metadata else "no metadata.yaml"
    with pytest.raises(BagError, match=f"{expected}.*--salvage reads what is readable"):
        open_reader(cut)

    reader = open_reader(cut, salvage=True)
    report = reader.report
    got = messages(reader)
    whole = messages(open_reader(intact))
    assert 0 < len(got) < len(whole) and got == whole[:len(got)]  # everything before the cut, nothing invented
    images = sum(1 for topic, _, _ in got if topic == TOPICS["image"])
    assert 0 < images < FRAMES and report.recovered[TOPICS["image"]] == images
    if metadata:
        assert report.lost()[TOPICS["image"]] == FRAMES - images
        assert f"{TOPICS['image']} {FRAMES - images} of {FRAMES}" in report.summary()
    else:
        assert report.listed is None and "no metadata.yaml to count what was lost" in report.summary()
    assert "cut short" in report.files[0].describe()


def test_the_salvaged_part_is_processed_like_the_intact_bag(intact, tmp_path):
    """Every frame read from the damaged bag gives the messages the intact bag gives for it."""
    values = params(scale_mode="fixed", scale=0.6, shift=0.15, max_range=1000.0)
    _, go = run_bag(fake_for(FRAMES, SIZE), intact, tmp_path / "whole", values, copy_input=False)
    go()
    cut = cut_short(intact, tmp_path, 0.6)
    run, go = run_bag(fake_for(FRAMES, SIZE), cut, tmp_path / "salvaged", values, copy_input=False, salvage=True)
    state = go()
    images = run.salvage_report.recovered[TOPICS["image"]]
    assert state.frames_served == images and run.salvage_report.lost()[TOPICS["image"]] == FRAMES - images
    whole, salvaged = read_decoded(tmp_path / "whole"), read_decoded(tmp_path / "salvaged")
    assert set(salvaged) == set(whole) and len(salvaged["/camera/depth/relative"]) == images
    for topic, items in salvaged.items():  # (the last frame read may have lost its camera info to the cut)
        assert images - 1 <= len(items) <= images and items == whole[topic][:len(items)], topic


def read_decoded(bag):
    from message_digest import message_digest

    reader = open_reader(bag)
    out = {}
    for connection, log_time, raw in reader.messages():
        out.setdefault(connection.topic, []).append(
            (log_time, message_digest(deserialize_message(raw, message_class(connection.msgtype)))))
    reader.close()
    return out


def test_what_is_not_a_bag_is_named(tmp_path):
    (tmp_path / "noise").mkdir()
    (tmp_path / "noise" / "noise.mcap").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(BagError, match="salvaging it failed too: .*not an mcap file"):
        open_reader(tmp_path / "noise", salvage=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="is not a rosbag2 bag"):
        open_reader(tmp_path / "empty", salvage=True)
