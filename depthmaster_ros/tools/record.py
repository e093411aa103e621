"""depthmaster-record: record topics of a live ROS 2 graph into a rosbag2 (no `ros2 bag record`).

Subscribes to the named topics (waiting up to --wait seconds for them to appear) and writes the received CDR bytes
as they come, with the receive time as log time. When none appears within the wait it stops with exit code 1 and
writes nothing; when some do, it records those, names the others (with the closest existing topic: a typo), and
takes them too if they appear later; the final line names any that never did (exit code 0). It stops after
--duration seconds, --max-messages per topic, or Ctrl-C / SIGTERM; the bag is written as
OUTPUT.partial/OUTPUT_0/OUTPUT_0.mcap and that folder is renamed to OUTPUT when closed (the file keeps its name,
rosbag2's), so a crash leaves no half bag under OUTPUT; what a crash left in OUTPUT.partial is read by
``depthmaster-bag --salvage``. The recorder is ``ros/bag_recorder.py``.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
from pathlib import Path


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="depthmaster-record", description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="bag folder to create")
    parser.add_argument("--topics", nargs="+", required=True, help="topics to record")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--max-messages", type=int, help="stop once every topic has this many messages")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the topics to appear (default "
                        "30; if none has by then: exit code 1, nothing written)")
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = {"now": False}  # Ctrl-C / SIGTERM: close the bag properly, whatever the recorder is doing
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.update(now=True))
    from ..ros.bag_recorder import RecordOptions, record
    from ..rosbag.io import ConnectionMap, open_writer
    from ..rosbag.partial_output import partial_folder, split_name

    if args.output.exists():
        print(f"depthmaster-record: {args.output} already exists", file=sys.stderr)
        return 2
    if partial_folder(args.output).exists():
        print(f"depthmaster-record: {partial_folder(args.output)} holds what a recording that crashed left (read it "
              "with depthmaster-bag --salvage); move it away or choose another name", file=sys.stderr)
        return 2
    partial = partial_folder(args.output) / split_name(args.output, 0)
    partial.parent.mkdir(parents=True)
    writer = open_writer(partial, args.storage)
    recording = None
    try:
        recording = record(args.topics, ConnectionMap(writer).write,
                           RecordOptions(duration=args.duration, max_messages=args.max_messages, wait=args.wait),
                           lambda: stop["now"], lambda line: print(f"depthmaster-record: {line}", file=sys.stderr))
    finally:
        writer.close()
        if recording is not None and not recording.started:  # nothing to keep: no empty bag left behind
            shutil.rmtree(partial.parent)
        else:
            partial.rename(args.output)
            partial.parent.rmdir()
    if not recording.started:
        return 1
    never = f"; never appeared: {', '.join(recording.never)}" if recording.never else ""
    print(f"depthmaster-record: wrote {args.output}: " + ", ".join(f"{t} {n}" for t, n in
                                                                   sorted(recording.counts.items())) + never)
    return 0


if __name__ == "__main__":
    sys.exit(main())
