"""Opening and writing rosbag2 folders, the bytes a message is written as, and ROS type names <-> rclpy message
classes."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rosbags.rosbag2 import Reader, Writer
from rosbags.rosbag2.writer import CompressionFormat, CompressionMode, StoragePlugin
from rosbags.typesys import Stores, get_typestore

from ..messages.topics import message_class, msgtype_of  # noqa: F401  (re-exported for the bag tools)

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


class BagError(RuntimeError):
    """A bag that cannot be read or written as asked; the text says what to do."""


@lru_cache(maxsize=1)
def typestore():
    return get_typestore(Stores.ROS2_KILTED)


def open_reader(path: str | Path, salvage: bool = False):
    """A reader of the rosbag2 folder (or single .mcap / .db3 file) at ``path``. A bag that does not open (cut
    short: no mcap footer, a sqlite3 file shorter than its header, no metadata.yaml) is a BagError that points at
    ``--salvage``. With ``salvage`` every bag is read record by record
    (:class:`~depthmaster_ros.rosbag.salvage.SalvageReader`, whose ``report`` says what was lost): a bag whose
    index is intact opens in rosbags but stops at its first damaged chunk when read."""
    from .salvage import STORAGE_SUFFIXES, SalvageError, SalvageReader

    path = Path(path)
    if not path.exists():
        raise BagError(f"bag '{path}' does not exist")
    storage_files = [path] if path.suffix in STORAGE_SUFFIXES else (
        [f for f in path.iterdir() if f.suffix in STORAGE_SUFFIXES] if path.is_dir() else [])
    if path.is_file() and path.suffix not in STORAGE_SUFFIXES or path.is_dir() and not storage_files:
        raise BagError(f"'{path}' is not a rosbag2 bag (a folder with metadata.yaml and .mcap or .db3 files, or "
                       "one .mcap or .db3 file)")
    try:
        if path.is_dir() and not (path / "metadata.yaml").is_file():
            raise BagError(f"it has {', '.join(sorted(f.name for f in storage_files))} but no metadata.yaml")
        reader = Reader(path)
        reader.open()
    except PermissionError as exc:
        raise BagError(f"cannot open bag '{path}': {exc}") from exc
    except Exception as exc:
        if not salvage:
            raise BagError(f"cannot open bag '{path}': {str(exc).rstrip('.')}. If it was cut short (a recording "
                           "that lost power or was killed), --salvage reads what is readable and reports what was "
                           "lost") from exc
        try:
            return SalvageReader(path)
        except (SalvageError, OSError) as salvage_exc:
            raise BagError(f"cannot open bag '{path}': {exc}; salvaging it failed too: {salvage_exc}") from exc
    if not salvage:
        return reader
    try:
        salvaged = SalvageReader(path)
    except (SalvageError, OSError):  # rosbags reads it: let it
        return reader
    reader.close()
    return salvaged


def open_writer(path: str | Path, storage: str = "mcap") -> Writer:
    """A rosbag2 writer at ``path`` (which must not exist); mcap files get zstd chunk compression."""
    if storage not in STORAGES:
        raise BagError(f"storage '{storage}' is not supported; expected one of {', '.join(STORAGES)}")
    writer = Writer(Path(path), version=9, storage_plugin=STORAGES[storage])
    if storage == "mcap":
        writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    writer.open()
    return writer


def cdr_bytes(message) -> bytes:
    """The CDR bytes of an rclpy message with every padding byte zero. rclpy's serializer leaves padding
    uninitialised (two runs would write different bytes for equal messages); rosbags' serializer zeroes it, so
    the bytes are serialised by rclpy and re-serialised by rosbags: the same fields, reproducible bytes."""
    from rclpy.serialization import serialize_message

    msgtype = msgtype_of(message)
    store = typestore()
    return bytes(store.serialize_cdr(store.deserialize_cdr(serialize_message(message), msgtype), msgtype))


class ConnectionMap:
    """Writer connections by topic, created on first use."""

    def __init__(self, writer: Writer):
        self.writer = writer
        self._connections = {}

    def write(self, topic: str, msgtype: str, log_time: int, data: bytes) -> None:
        connection = self._connections.get(topic)
        if connection is None:
            connection = self.writer.add_connection(topic, msgtype, typestore=typestore())
            self._connections[topic] = connection
        self.writer.write(connection, log_time, data)
