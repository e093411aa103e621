"""depthmaster-view, headless: the node's outputs for the frames of the sample bag recorded into an MCAP file that
Foxglove's MCAP library reads back (and depthmaster-bag's reader too), the depth images, the clouds and the scale
series equal to what was published; and the live Foxglove WebSocket: channels with the ROS 2 message definitions,
messages forwarded as published, the ROS topic subscribed only while a client wants it."""

import json
import os
import re
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import deserialize_message
from std_msgs.msg import Float64MultiArray

from depthmaster_ros.messages.conversions import stamp_to_ns
from depthmaster_ros.ros.background_node import BackgroundNode
from depthmaster_ros.samples.sample_bag import write_sample_bag

from bag_helpers import read_all

BIN = Path(sys.executable).parent
OUTPUTS = ["/camera/depth", "/camera/points", "/camera/depth/scale", "/camera/depth/colored"]


def tool(name, *args, **kwargs):
    return subprocess.run([str(BIN / name), *map(str, args)], capture_output=True, text=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def bag_outputs(tiny_checkpoint, tmp_path_factory):
    """depthmaster-bag on the sample bag (scale_mode fixed, so there are metric depth, points and a scale)."""
    root = tmp_path_factory.mktemp("view")
    write_sample_bag(root / "recording", frames=6, width=64, height=48)
    (root / "params.yaml").write_text("/**:\n  ros__parameters:\n    processing_res: 64\n    scale_mode: fixed\n"
                                      "    scale: 0.6\n    shift: 0.15\n")
    result = tool("depthmaster-bag", root / "recording", root / "out", "--checkpoint", tiny_checkpoint,
                  "--params", root / "params.yaml")
    assert result.returncode == 0, result.stderr
    return root / "out"


def start_view(*args):
    return subprocess.Popen([str(BIN / "depthmaster-view"), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def stop(process) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    output, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    return output, errors


def test_view_records_the_outputs_of_the_sample_bag(ros, bag_outputs, tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    from depthmaster_ros.rosbag.io import open_reader

    recording = tmp_path / "view.mcap"
    view = start_view("--namespace", "/camera", "--mcap", recording, "--no-server")
    try:
        play = tool("depthmaster-play", bag_outputs, "--wait-for-subscribers", "120", "--delay", "2", "--topics",
                    *OUTPUTS)
        assert play.returncode == 0, play.stderr
    finally:
        output, _ = stop(view)
    assert "depthmaster-view: forwarded /camera/depth 6, /camera/depth/colored 6, /camera/depth/scale 6, " \
        "/camera/points 6" in output

    published = read_all(bag_outputs)
    frames = [stamp_to_ns(m.header.stamp) for _, m in published["/camera/image_raw"]]
    with open(recording, "rb") as stream:  # Foxglove's MCAP library, as the apps read it
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert {channel.topic: (channel.message_encoding, summary.schemas[channel.schema_id].encoding)
                for channel in summary.channels.values()} == {topic: ("cdr", "ros2msg") for topic in OUTPUTS}
        recorded = {}
        for _, channel, _, message in reader.iter_decoded_messages():
            recorded.setdefault(channel.topic, []).append(message)
    for topic in ("/camera/depth", "/camera/points"):
        assert [stamp_to_ns(m.header.stamp) for m in recorded[topic]] == frames  # every frame of the sample bag
        for got, (_, sent) in zip(recorded[topic], published[topic]):
            assert bytes(got.data) == bytes(sent.data) and (got.width, got.height) == (sent.width, sent.height)
    assert np.array_equal([m.data for m in recorded["/camera/depth/scale"]],  # the scale series (NaN where the
                          [m.data for _, m in published["/camera/depth/scale"]], equal_nan=True)  # stage has none)
    assert [m.data[0] for m in recorded["/camera/depth/scale"]] == [stamp / 1e9 for stamp in frames]
    reader = open_reader(recording)  # a ROS 2 MCAP (profile ros2): depthmaster-bag and rosbags read it too
    try:
        assert {c.topic: c.msgcount for c in reader.connections} == {topic: 6 for topic in OUTPUTS}
    finally:
        reader.close()


def test_view_serves_foxglove_and_subscribes_only_when_asked(ros, tmp_path):
    from websockets.sync.client import connect

    camera = BackgroundNode("scale_talker")
    publisher = camera.create_publisher(Float64MultiArray, "/camera/depth/scale", 10)
    message = Float64MultiArray(data=[1700000000.0, 0.6, 0.15, 1.0, 0.0, 100.0, 0.0])
    camera.create_timer(0.1, lambda: publisher.publish(message))
    view = start_view("--namespace", "/camera", "--port", "0")
    try:
        line = view.stdout.readline()
        port = int(re.search(r"on ws://127\.0\.0\.1:(\d+) ", line).group(1))
        with connect(f"ws://127.0.0.1:{port}", subprotocols=["foxglove.sdk.v1", "foxglove.websocket.v1"],
                     open_timeout=30) as client:
            channel = None
            while channel is None:
                frame = json.loads(client.recv(timeout=60))
                for advertised in frame.get("channels", []) if frame.get("op") == "advertise" else []:
                    if advertised["topic"] == "/camera/depth/scale":
                        channel = advertised
            assert (channel["encoding"], channel["schemaEncoding"], channel["schemaName"]) == \
                ("cdr", "ros2msg", "std_msgs/msg/Float64MultiArray")
            assert channel["schema"].startswith("std_msgs/MultiArrayLayout layout\nfloat64[] data\n")
            # no client wants it yet: the view does not subscribe (the node computes only subscribed outputs)
            assert not camera.spin_until(lambda: publisher.get_subscription_count() > 0, 2.0)

            client.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": 7, "channelId": channel["id"]}]}))
            frame = client.recv(timeout=60)
            while not isinstance(frame, bytes):
                frame = client.recv(timeout=60)
            opcode, subscription, _ = struct.unpack_from("<BIQ", frame)
            assert (opcode, subscription) == (1, 7)
            assert list(deserialize_message(frame[13:], Float64MultiArray).data) == list(message.data)
            assert publisher.get_subscription_count() == 1

            client.send(json.dumps({"op": "unsubscribe", "subscriptionIds": [7]}))
            assert camera.spin_until(lambda: publisher.get_subscription_count() == 0, 30)
    finally:
        camera.destroy_node()
        stop(view)


def test_view_usage_errors(tmp_path):
    result = tool("depthmaster-view", "--no-server")
    assert result.returncode == 2 and "--no-server needs --mcap" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "x.mcap").write_bytes(b"")
    result = tool("depthmaster-view", "--mcap", tmp_path / "x.mcap")
    assert result.returncode == 2 and "already exists" in result.stderr
    result = tool("depthmaster-view", "--no-server", "--layout", tmp_path / "layout.json", "--namespace", "front")
    assert result.returncode == 0, result.stderr
    layout = json.loads((tmp_path / "layout.json").read_text())
    text = json.dumps(layout)
    for topic in ("/front/depth/colored", "/front/depth", "/front/points", "/front/depth/scale.data[1]"):
        assert f'"{topic}"' in text, text
    busy = start_view("--port", "0")
    try:
        port = re.search(r":(\d+) ", busy.stdout.readline()).group(1)
        result = tool("depthmaster-view", "--port", port, env={**os.environ})
        assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr, result.stderr
    finally:
        stop(busy)
