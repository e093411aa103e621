"""A digest of a ROS message's decoded fields (never its CDR bytes, whose padding is not reproducible): two
messages with equal digests have equal field values, bit for bit."""

from __future__ import annotations

import array
import hashlib
import struct

import numpy as np


def _feed(digest, value) -> None:
    if hasattr(value, "get_fields_and_field_types"):
        for name in value.get_fields_and_field_types():
            digest.update(name.encode())
            _feed(digest, getattr(value, name))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        digest.update(b"bytes%d" % len(value) + bytes(value))
    elif isinstance(value, array.array):
        digest.update(f"array.{value.typecode}{len(value)}".encode() + value.tobytes())
    elif isinstance(value, np.ndarray):
        digest.update(f"array{value.dtype.str}{value.shape}".encode() + np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple)):
        digest.update(b"list%d" % len(value))
        for item in value:
            _feed(digest, item)
    elif isinstance(value, bool):
        digest.update(b"T" if value else b"F")
    elif isinstance(value, int):
        digest.update(b"i" + str(value).encode())
    elif isinstance(value, float):
        digest.update(b"f" + struct.pack("<d", value))
    elif isinstance(value, str):
        digest.update(b"s" + value.encode())
    else:
        raise TypeError(f"cannot digest a {type(value).__name__}")


def message_digest(message) -> str:
    digest = hashlib.sha256()
    _feed(digest, message)
    return digest.hexdigest()[:24]
