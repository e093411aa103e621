"""depthmaster-view: look at the node's outputs without RViz (the venv has none), in Foxglove or Lichtblick.

Serves the node's outputs (depth, depth/colored, depth/relative, depth/camera_info, points, depth/scale under
--namespace, and /diagnostics; --topics adds others, e.g. the camera image) over the Foxglove WebSocket protocol:
open ws://HOST:PORT in Foxglove or Lichtblick ("Open connection", "Foxglove WebSocket"). Messages go as they are
(ROS 2 CDR with their message definitions), so the apps' ROS panels show them as from a ROS install. A topic is
subscribed only while the app shows it (the node computes only subscribed outputs). --mcap FILE also records every
topic into an MCAP file the apps open; --layout FILE writes a Foxglove layout of these topics (import it in the
app). A bag written by depthmaster-bag is already an MCAP file: open it in the app directly.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

DEFAULT_PORT = 8765  # Foxglove's


def output_topics(namespace: str) -> list[str]:
    from ..messages.topics import OUTPUT_TOPICS

    prefix = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return [f"{prefix}/{topic}" for topic in OUTPUT_TOPICS] + ["/diagnostics"]


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="depthmaster-view", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", default="", help="the node's namespace (its outputs are NS/depth, ...)")
    parser.add_argument("--topics", nargs="+", default=[], metavar="TOPIC", help="more topics (the camera image, "
                        "the LiDAR, ...)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface, to "
                        "view from another machine; default only this one)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"WebSocket port (default {DEFAULT_PORT})")
    parser.add_argument("--no-server", action="store_true", help="no WebSocket server (with --mcap: record only)")
    parser.add_argument("--mcap", type=Path, metavar="FILE", help="also record every topic into this MCAP file")
    parser.add_argument("--layout", type=Path, metavar="FILE", help="write a Foxglove layout of these topics")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: Ctrl-C)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0..65535, got {args.port}")
    if args.mcap is not None and args.mcap.exists():
        parser.error(f"--mcap {args.mcap} already exists")
    if args.no_server and args.mcap is None and args.layout is None:
        parser.error("--no-server needs --mcap (or --layout): there would be nothing to do")
    return args


def layout(namespace: str) -> str:
    """A Foxglove layout (the SDK's layout model, as JSON): the coloured depth with the metric depth, the cloud,
    the scale over time, the node's diagnostics."""
    import foxglove.layouts as fl

    from ..messages.topics import OUTPUT_TOPICS

    named = dict(zip(OUTPUT_TOPICS, output_topics(namespace)))
    depth, colored, info, points, scale = (named[name] for name in ("depth", "depth/colored", "depth/camera_info",
                                                                    "points", "depth/scale"))
    image = fl.ImagePanel(title="depth/colored", config=fl.ImageConfig(image_mode=fl.ImageModeConfig(
        image_topic=colored, calibration_topic=info)))
    metric = fl.ImagePanel(title="depth (m)", config=fl.ImageConfig(image_mode=fl.ImageModeConfig(
        image_topic=depth, calibration_topic=info)))
    cloud = fl.ThreeDeePanel(title="points", config=fl.ThreeDeeConfig(topics={
        points: fl.BaseRendererPointCloudTopicSettings(visible=True, color_field="rgb", color_mode="rgb")}))
    plot = fl.PlotPanel(title="depth/scale", config=fl.PlotConfig(paths=[
        fl.PlotSeries(value=f"{scale}.data[1]", label="scale"), fl.PlotSeries(value=f"{scale}.data[2]",
                                                                              label="shift")]))
    diagnostics = fl.DiagnosticsSummaryPanel(title="diagnostics")
    column = lambda *panels: fl.SplitContainer(direction="column", items=[fl.SplitItem(content=p) for p in panels])
    return fl.Layout(content=fl.SplitContainer(direction="row", items=[
        fl.SplitItem(content=column(image, metric)), fl.SplitItem(content=column(cloud, plot, diagnostics))]
    )).to_json()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import foxglove
    except ImportError:
        print("depthmaster-view: needs the Foxglove SDK: pip install foxglove-sdk", file=sys.stderr)
        return 2
    if args.layout is not None:
        args.layout.write_text(layout(args.namespace))
        print(f"depthmaster-view: wrote the layout {args.layout} (import it in Foxglove: Layouts, Import)")
        if args.no_server and args.mcap is None:
            return 0
    stop = {"now": False}
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.update(now=True))
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from ..ros.foxglove_bridge import FoxgloveBridge

    topics = output_topics(args.namespace) + args.topics
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("depthmaster_view", start_parameter_services=False)
    bridge = FoxgloveBridge(node, topics, subscribe_all=args.mcap is not None,
                            log=lambda line: print(f"depthmaster-view: {line}", file=sys.stderr))
    server = recording = None
    try:
        if args.mcap is not None:
            # the ros2 profile: a ROS 2 bag as rosbag2 writes them (depthmaster-bag, rosbags and ros2 bag read it)
            recording = foxglove.open_mcap(args.mcap, writer_options=foxglove.mcap.MCAPWriteOptions(
                profile="ros2", compression_threads=0))
        if not args.no_server:
            try:
                server = foxglove.start_server(name="depthmaster_ros", host=args.host, port=args.port,
                                               server_listener=bridge, supported_encodings=["cdr"])
            except Exception as exc:  # noqa: BLE001 - the SDK's error for a port in use or an address not here
                print(f"depthmaster-view: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
                return 2
            print(f"depthmaster-view: serving {', '.join(bridge.topics)} on ws://{args.host}:{server.port} "
                  "(open it in Foxglove or Lichtblick: Open connection, Foxglove WebSocket)", flush=True)
        if recording is not None:
            print(f"depthmaster-view: recording into {args.mcap}", flush=True)
        end = time.monotonic() + args.duration if args.duration else float("inf")
        next_update = 0.0
        while not stop["now"] and time.monotonic() < end:
            if time.monotonic() >= next_update:
                bridge.update()
                next_update = time.monotonic() + 0.5
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        bridge.close()
        if recording is not None:
            recording.close()
        if server is not None:
            server.stop()
        node.destroy_node()
        rclpy.try_shutdown()
    counts = ", ".join(f"{topic} {count}" for topic, count in sorted(bridge.counts.items())) or "no messages"
    print(f"depthmaster-view: forwarded {counts}" + (f"; wrote {args.mcap}" if args.mcap else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
