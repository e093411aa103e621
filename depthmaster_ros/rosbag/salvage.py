"""Reading what is readable from a damaged rosbag2, and saying what was lost.

The commonest damaged bag is one cut short: a robot that lost power, a recorder that was killed, a full disk.
Its mcap file has no summary and no footer ("File end magic is invalid"), its sqlite3 file is shorter than its
header says ("database disk image is malformed"), and often there is no metadata.yaml (rosbag2 writes it when
the bag is closed). rosbags refuses such a bag whole, though nearly all of it is intact: records are appended
in time order, so everything before the cut is complete.

- mcap: the records are scanned in file order with the ``mcap`` library's stream reader (it needs no summary);
  every complete chunk whose data decompresses to its declared size (and CRC, when the writer set one) is kept.
  At an invalid record (a chunk damaged in the middle of the file: a bad disk block, a copy gone wrong) the scan
  resynchronises: chunks are self-delimiting (opcode 0x06, their length, a header whose sizes must agree), so the
  next offset where a whole chunk reads and decompresses is where reading goes on; the bytes skipped are reported.
  The channels come from the chunks and, when the file still has it, its summary section (a damaged first chunk
  then costs only its own messages). The scan ends at the footer, or at the cut of a file cut short. Messages are
  served in log-time order per file, chunks decoded lazily, exactly as rosbags orders an intact file.
- sqlite3: SQLite refuses a file shorter than its header's page count unless ``writable_schema`` is on; that
  flag only relaxes this check here (the connection is read-only and immutable, nothing is ever written). Rows
  are read in id (= recording) order up to the first unreadable one, then served in (timestamp, id) order, as
  rosbags' ``ORDER BY timestamp`` does.

Written by hand because neither rosbags nor the mcap library offers a partial read with a loss report; the
record formats themselves are read by those libraries (``mcap.stream_reader``) and SQLite.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from pathlib import Path

STORAGE_SUFFIXES = (".mcap", ".db3")


class SalvageError(RuntimeError):
    """Nothing readable: not a bag, or damaged before its first message."""


@dataclass
class SalvagedConnection:
    """One topic of a salvaged bag (the fields of a rosbags connection that the bag tools use)."""

    id: int
    topic: str
    msgtype: str
    msgcount: int = 0


@dataclass
class FileDamage:
    """What one storage file gave."""

    name: str
    size: int
    messages: int = 0
    readable_bytes: int | None = None  # mcap: up to the end of the last complete record kept
    problem: str = ""  # why reading stopped early ("" = the file is complete)
    skipped: list[tuple[int, int, str]] = field(default_factory=list)  # mcap: damaged (start, end, why) passed

    @property
    def skipped_bytes(self) -> int:
        return sum(end - start for start, end, _ in self.skipped)

    def describe(self) -> str:
        passed = "".join(f"; skipped bytes {start:,}-{end:,} ({end - start:,} bytes): {why}"
                         for start, end, why in self.skipped)
        if not self.problem:
            return f"{self.name}: " + ("complete" if not passed else "read to its end") + \
                f", {self.messages} messages{passed}"
        where = "" if self.readable_bytes is None else f" in the first {self.readable_bytes:,} of {self.size:,} bytes"
        return f"{self.name}: {self.messages} messages{where}{passed}; then {self.problem}"


@dataclass
class SalvageReport:
    """What a salvaged bag holds and what was lost. ``listed``: messages per topic that metadata.yaml lists (None
    without a readable metadata.yaml: a bag cut short before it was closed has none, and what was recorded after
    the cut cannot be counted)."""

    files: list[FileDamage] = field(default_factory=list)
    recovered: dict[str, int] = field(default_factory=dict)
    listed: dict[str, int] | None = None
    first_ns: int | None = None
    last_ns: int | None = None

    @property
    def damaged(self) -> bool:
        return any(f.problem or f.skipped for f in self.files) or bool(self.lost())

    def lost(self) -> dict[str, int]:
        """Messages per topic that metadata.yaml lists but could not be read (empty without metadata.yaml)."""
        if self.listed is None:
            return {}
        return {topic: count - self.recovered.get(topic, 0) for topic, count in sorted(self.listed.items())
                if count > self.recovered.get(topic, 0)}

    def summary(self) -> str:
        total = sum(self.recovered.values())
        span = "" if self.first_ns is None else f" over {(self.last_ns - self.first_ns) / 1e9:.3f} s of log time"
        text = f"read {total} messages{span}"
        skipped = [f for f in self.files if f.skipped]
        if skipped:
            text += (f"; skipped {sum(len(f.skipped) for f in skipped)} damaged region(s), "
                     f"{sum(f.skipped_bytes for f in skipped):,} bytes")
        lost = self.lost()
        if lost:
            text += "; lost (listed in metadata.yaml, unreadable): " + ", ".join(
                f"{topic} {count} of {self.listed[topic]}" for topic, count in lost.items())
        elif self.listed is not None:
            text += f"; nothing lost (metadata.yaml lists {sum(self.listed.values())})"
        elif any(f.problem for f in self.files):
            text += ("; no metadata.yaml to count what was lost: whatever was recorded after the last readable "
                     "message is gone")
        elif skipped:
            text += "; no metadata.yaml to count the messages the damaged regions held"
        else:
            text += "; nothing lost"
        return text

    def as_dict(self) -> dict:
        return {"recovered": dict(self.recovered), "listed": self.listed, "lost": self.lost(),
                "files": [f.describe() for f in self.files], "first_ns": self.first_ns, "last_ns": self.last_ns}


# --------------------------------------------------------------------------------------------------- mcap
class _McapFile:
    """The complete records of one mcap file: up to the first incomplete one, past damaged chunks."""

    def __init__(self, path: Path):
        import mmap

        from mcap.exceptions import InvalidMagic
        from mcap.records import Chunk, Footer
        from mcap.stream_reader import StreamReader

        self.path = path
        self.damage = FileDamage(path.name, path.stat().st_size, readable_bytes=0)
        self.channels: dict[int, tuple[str, str]] = {}  # channel id -> (topic, msgtype)
        self.counts: dict[int, int] = {}
        self.blocks: list[tuple[int, int]] = []  # (earliest log time, chunk offset) of each good chunk
        self.times: list[int] = []  # the earliest and latest log time of each good chunk
        self.loose: list[tuple[int, int, int]] = []  # (log time, record offset, channel) of unchunked messages
        schemas: dict[int, str] = {}
        self._summary_channels(schemas)
        complete = False
        size = self.damage.size
        with path.open("rb") as handle:
            start = 8
            reader = StreamReader(handle, emit_chunks=True, validate_crcs=False, record_size_limit=size)
            while True:
                try:
                    for record in reader.records:
                        end = handle.tell()
                        if isinstance(record, Chunk):  # whole (or an error); its schemas and channels taken in
                            times = self._take_chunk(record, schemas)
                            if times:
                                self.blocks.append((min(times), start))
                                self.times += [min(times), max(times)]
                        elif isinstance(record, Footer):
                            complete = True
                        elif self._take(record, schemas):
                            self.loose.append((record.log_time, start, record.channel_id))
                            self.times.append(record.log_time)
                        self.damage.readable_bytes = start = end
                    break
                except Exception as exc:  # damage: go on at the next whole chunk, if there is one
                    problem = _mcap_problem(exc, start)
                    if isinstance(exc, InvalidMagic) and start <= 8:
                        self.damage.problem = problem
                        break
                    with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                        resume = self._next_chunk(data, start + 1)
                    if resume is None:
                        self.damage.problem = problem + ("" if end_of_data(exc) else "; no whole chunk after it")
                        break
                    self.damage.skipped.append((start, resume, problem))
                    handle.seek(resume)
                    start = resume
                    reader = StreamReader(handle, emit_chunks=True, validate_crcs=False, skip_magic=True,
                                          record_size_limit=size)
        if not complete and not self.damage.problem:
            self.damage.problem = f"the file ends at byte {self.damage.size:,} without the mcap footer"
        self.damage.messages = sum(self.counts.values())
        if not self.channels and not self.damage.messages:
            raise SalvageError(f"{path.name}: no readable mcap record ({self.damage.problem or 'empty'})")

    def _summary_channels(self, schemas: dict[int, str]) -> None:
        """The schemas and channels of the file's summary section, when it is intact (a file cut short has none):
        messages after a damaged chunk that held their channel records stay readable."""
        from mcap.reader import make_reader

        try:
            with self.path.open("rb") as handle:
                summary = make_reader(handle).get_summary()
        except Exception:  # noqa: BLE001 - no usable summary: the chunks' own records are all there is
            return
        if summary is None:
            return
        for schema in summary.schemas.values():
            schemas[schema.id] = schema.name
        for channel in summary.channels.values():
            if channel.schema_id in schemas:
                self.channels[channel.id] = (channel.topic, schemas[channel.schema_id])

    def _take_chunk(self, chunk, schemas: dict[int, str]) -> list[int]:
        """A chunk's records taken in whole or not at all (an error for a damaged one); its messages' log times."""
        from mcap.records import Message

        records = _decode_chunk(chunk)
        channels = dict(self.channels)
        known = dict(schemas)
        for record in records:  # check everything before anything is taken
            if isinstance(record, Message):
                if record.channel_id not in channels:
                    raise ValueError(f"a message of channel {record.channel_id}, which is not in the file")
            else:
                self._define(record, known, channels)
        schemas.update(known)
        self.channels.update(channels)
        times = []
        for record in records:
            if isinstance(record, Message):
                self.counts[record.channel_id] = self.counts.get(record.channel_id, 0) + 1
                times.append(record.log_time)
        return times

    @staticmethod
    def _next_chunk(data, offset: int) -> int | None:
        """The offset of the next chunk record at or after ``offset`` that reads and decompresses whole."""
        import struct

        size = len(data)
        while True:
            offset = data.find(b"\x06", offset)
            if offset < 0 or offset + 9 + 40 > size:
                return None
            length = int.from_bytes(data[offset + 1:offset + 9], "little")
            body = offset + 9
            if body + length <= size and length >= 40:
                compression_length = struct.unpack_from("<I", data, body + 28)[0]
                if compression_length <= 16:
                    records_at = body + 32 + compression_length
                    records_length = int.from_bytes(data[records_at:records_at + 8], "little")
                    compression = bytes(data[body + 32:records_at])
                    if records_at + 8 + records_length == body + length and compression in (b"", b"zstd", b"lz4"):
                        if _whole_chunk(data, offset, length):
                            return offset
            offset += 1

    @staticmethod
    def _define(record, schemas: dict[int, str], channels: dict[int, tuple[str, str]]) -> None:
        """Take in a schema or channel record (others are ignored)."""
        from mcap.records import Channel, Schema

        if isinstance(record, Schema):
            schemas[record.id] = record.name
        elif isinstance(record, Channel):
            if record.schema_id not in schemas:
                raise ValueError(f"channel {record.topic} refers to schema {record.schema_id}, not in the file")
            channels[record.id] = (record.topic, schemas[record.schema_id])

    def _take(self, record, schemas: dict[int, str]) -> bool:
        """Take in a schema or channel; count a message (True)."""
        from mcap.records import Message

        self._define(record, schemas, self.channels)
        if isinstance(record, Message):
            if record.channel_id not in self.channels:
                raise ValueError(f"a message of channel {record.channel_id}, which is not in the file")
            self.counts[record.channel_id] = self.counts.get(record.channel_id, 0) + 1
            return True
        return False

    def messages(self, wanted: set[int], written_order: bool = False):
        """(channel id, log time, data) of the wanted channels in log-time order (``written_order``: in the order
        they were written); a chunk is decoded only when the merge reaches its earliest time (as rosbags reads
        intact files), so memory stays one chunk wide."""
        from mcap.records import Message

        def chunk_messages(first: int, offset: int):
            if not written_order:
                yield (first, offset, -1, -1, b"")  # a placeholder: the chunk is read when the merge gets here
            records = [r for r in _decode_chunk(self._read_record(offset)) if isinstance(r, Message)]
            ordered = [(m.log_time, offset, i, m.channel_id, m.data) for i, m in enumerate(records)
                       if m.channel_id in wanted]
            yield from ordered if written_order else sorted(ordered, key=lambda item: (item[0], item[2]))

        def loose_message(log_time: int, offset: int, channel: int):
            yield (log_time, offset, 0, channel, self._read_record(offset).data)

        if written_order:
            streams = sorted([(offset, chunk_messages(first, offset)) for first, offset in self.blocks]
                             + [(offset, loose_message(*item)) for item in self.loose
                                for offset in [item[1]] if item[2] in wanted], key=lambda item: item[0])
            merged = (message for _, stream in streams for message in stream)
        else:
            loose = sorted(self.loose, key=lambda item: (item[0], item[1]))
            merged = heapq.merge(*[chunk_messages(first, offset) for first, offset in self.blocks],
                                 *[loose_message(*item) for item in loose if item[2] in wanted],
                                 key=lambda item: item[:3])
        for log_time, _, _, channel, data in merged:
            if channel >= 0:
                yield channel, log_time, data

    def _read_record(self, offset: int):
        from mcap.stream_reader import StreamReader

        with self.path.open("rb") as handle:
            handle.seek(offset)
            return next(iter(StreamReader(handle, skip_magic=True, emit_chunks=True).records))


def _decode_chunk(chunk) -> list:
    """A chunk's records; an error when its data is cut short (a compressed one fails to decompress) or does not
    match its CRC."""
    from mcap.stream_reader import breakup_chunk

    if not chunk.compression and len(chunk.data) != chunk.uncompressed_size:
        raise ValueError(f"the chunk holds {len(chunk.data)} of its {chunk.uncompressed_size} bytes")
    return breakup_chunk(chunk, validate_crc=True)


def _whole_chunk(data, offset: int, length: int) -> bool:
    """Whether the chunk record at ``offset`` reads and decompresses to its declared size."""
    import io

    from mcap.stream_reader import StreamReader

    try:
        record = next(iter(StreamReader(io.BytesIO(data[offset:offset + 9 + length]), skip_magic=True,
                                        emit_chunks=True).records))
        _decode_chunk(record)
        return True
    except Exception:  # noqa: BLE001 - not a chunk after all
        return False


def end_of_data(exc: Exception) -> bool:
    """Whether reading stopped because the file ends (cut short) rather than at damage."""
    from mcap.exceptions import EndOfFile

    return isinstance(exc, EndOfFile)


def _mcap_problem(exc: Exception, offset: int) -> str:
    from mcap.exceptions import EndOfFile, InvalidMagic

    if isinstance(exc, InvalidMagic):
        return "no mcap magic at the start: this is not an mcap file"
    if isinstance(exc, EndOfFile):
        return f"the file ends inside the record at byte {offset:,} (cut short)"
    return f"the record at byte {offset:,} is incomplete or invalid ({type(exc).__name__}: {exc})"


# --------------------------------------------------------------------------------------------------- sqlite3
class _Sqlite3File:
    """The readable rows of one rosbag2 sqlite3 file, up to the first unreadable one."""

    def __init__(self, path: Path):
        import apsw

        self.path = path
        self.damage = FileDamage(path.name, path.stat().st_size)
        try:
            self.db = apsw.Connection(f"file:{path}?immutable=1", flags=apsw.SQLITE_OPEN_READONLY
                                      | apsw.SQLITE_OPEN_URI)
            # Read-only and immutable: this only lets SQLite open a file shorter than its header says.
            self.db.execute("PRAGMA writable_schema=ON")
            self.channels = {topic_id: (name, msgtype) for topic_id, name, msgtype
                             in self.db.execute("SELECT id, name, type FROM topics ORDER BY id")}
        except apsw.Error as exc:
            raise SalvageError(f"{path.name}: not a readable rosbag2 sqlite3 file ({exc})") from exc
        self.rows: list[tuple[int, int, int]] = []  # (timestamp, id, topic id), readable
        last = 0
        try:
            for row_id, topic_id, timestamp in self.db.execute(
                    "SELECT id, topic_id, timestamp FROM messages ORDER BY id"):
                self.rows.append((timestamp, row_id, topic_id))
                last = row_id
        except apsw.Error as exc:
            self.damage.problem = f"the row after id {last} is unreadable ({exc}; the file is cut short)"
        while self.rows and not self._readable(self.rows[-1][1]):  # the cut may fall inside the last rows' data
            dropped = self.rows.pop()
            self.damage.problem = (f"the data of row {dropped[1]} and after is unreadable (the file is cut short "
                                   f"at byte {self.damage.size:,})")
        self.rows = [row for row in self.rows if row[2] in self.channels]
        self.times = [min(self.rows)[0], max(self.rows)[0]] if self.rows else []
        self.counts: dict[int, int] = {}
        for _, _, topic_id in self.rows:
            self.counts[topic_id] = self.counts.get(topic_id, 0) + 1
        self.damage.messages = len(self.rows)

    def _readable(self, row_id: int) -> bool:
        import apsw

        try:
            return self.db.execute("SELECT data FROM messages WHERE id = ?", (row_id,)).fetchone() is not None
        except apsw.Error:
            return False

    def messages(self, wanted: set[int], written_order: bool = False):
        import apsw

        for timestamp, row_id, topic_id in sorted(self.rows, key=lambda row: row[1] if written_order else row):
            if topic_id not in wanted:
                continue
            try:
                (data,), = self.db.execute("SELECT data FROM messages WHERE id = ?", (row_id,)).fetchall()
            except apsw.Error as exc:  # checked at open; a second read failing is a disk error
                raise SalvageError(f"{self.path.name}: row {row_id} became unreadable: {exc}") from exc
            yield topic_id, timestamp, data

    def close(self) -> None:
        self.db.close()


# --------------------------------------------------------------------------------------------------- the bag
def storage_files(path: Path) -> tuple[list[Path], dict | None]:
    """The storage files of a bag folder (metadata.yaml's list when it is readable, else every .mcap / .db3 in
    it, in recording order) and metadata.yaml's content (None when absent or unreadable); a file is itself."""
    if path.is_file():
        return [path], None
    metadata = None
    try:
        import yaml

        metadata = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        files = [path / Path(name).name for name in metadata["relative_file_paths"]]
    except (OSError, KeyError, TypeError, ValueError, ImportError, AttributeError):
        metadata = None
        files = []
    if not files or not all(f.is_file() for f in files):
        files = sorted((f for f in path.iterdir() if f.suffix in STORAGE_SUFFIXES and f.is_file()),
                       key=_recording_order)
    return files, metadata


def _recording_order(path: Path):
    """rosbag2 numbers split files name_0, name_1, ..., name_10: by that number, then by name."""
    found = re.search(r"_(\d+)$", path.stem)
    return (path.stem[:found.start()] if found else path.stem, int(found.group(1)) if found else -1, path.name)


class SalvageReader:
    """A damaged bag read as far as it is readable, with the interface the bag tools use of a rosbags reader
    (``connections`` with topic / msgtype / msgcount, ``messages(connections)``, ``close()``) and a ``report``.
    ``written_order``: messages in the order they were written rather than by log time (to copy a file exactly:
    the same records in the same order make the same bytes)."""

    def __init__(self, path: str | Path, written_order: bool = False):
        self.written_order = written_order
        path = Path(path)
        files, metadata = storage_files(path)
        if not files:
            raise SalvageError(f"'{path}' holds no .mcap or .db3 file")
        self.files = []
        problems = []
        for file in files:
            try:
                self.files.append(_McapFile(file) if file.suffix == ".mcap" else _Sqlite3File(file))
            except SalvageError as exc:
                problems.append(str(exc))
        if not self.files:
            raise SalvageError("nothing readable: " + "; ".join(problems))
        self.report = SalvageReport(files=[f.damage for f in self.files]
                                    + [FileDamage(p.split(":")[0], 0, problem=p) for p in problems])
        if metadata is not None:
            self.report.listed = {}
            for item in metadata.get("topics_with_message_count", []):
                topic = item["topic_metadata"]["name"]
                self.report.listed[topic] = self.report.listed.get(topic, 0) + int(item["message_count"])
        by_key: dict[tuple[str, str], SalvagedConnection] = {}
        self._maps = []  # per file: its channel id -> connection
        for storage in self.files:
            mapping = {}
            for channel, (topic, msgtype) in storage.channels.items():
                key = (topic, msgtype)
                if key not in by_key:
                    by_key[key] = SalvagedConnection(len(by_key) + 1, topic, msgtype)
                by_key[key].msgcount += storage.counts.get(channel, 0)
                mapping[channel] = by_key[key]
            self._maps.append(mapping)
        self.connections = list(by_key.values())
        if not any(c.msgcount for c in self.connections):
            self.close()
            raise SalvageError("no readable message: " + "; ".join(f.describe() for f in self.report.files))
        for connection in self.connections:
            self.report.recovered[connection.topic] = (self.report.recovered.get(connection.topic, 0)
                                                       + connection.msgcount)
        times = [t for storage in self.files for t in storage.times]
        if times:
            self.report.first_ns, self.report.last_ns = min(times), max(times)

    def messages(self, connections=()):
        wanted = {c.id for c in connections} if connections else {c.id for c in self.connections}
        for storage, mapping in zip(self.files, self._maps):
            channels = {channel for channel, connection in mapping.items() if connection.id in wanted}
            for channel, log_time, data in storage.messages(channels, self.written_order):
                yield mapping[channel], log_time, data

    def close(self) -> None:
        for storage in self.files:
            if isinstance(storage, _Sqlite3File):
                storage.close()

