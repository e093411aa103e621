"""Opening and writing rosbag2 folders, and mapping ROS type names to rclpy message classes."""

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


def open_reader(path: str | Path) -> Reader:
    path = Path(path)
    if not path.exists():
        raise BagError(f"bag '{path}' does not exist")
    if not path.is_dir() or not (path / "metadata.yaml").is_file():
        raise BagError(f"'{path}' is not a rosbag2 folder (a folder with metadata.yaml and .mcap or .db3 files)")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:
        raise BagError(f"cannot open bag '{path}': {exc}") from exc
    return reader


def open_writer(path: str | Path, storage: str = "mcap") -> Writer:
    """A rosbag2 writer at ``path`` (which must not exist); mcap files get zstd chunk compression."""
    if storage not in STORAGES:
        raise BagError(f"storage '{storage}' is not supported; expected one of {', '.join(STORAGES)}")
    writer = Writer(Path(path), version=9, storage_plugin=STORAGES[storage])
    if storage == "mcap":
        writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    writer.open()
    return writer


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
