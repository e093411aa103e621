"""Hostile camera messages for the robustness tests and the memory probe: small files that declare huge images (a
JPEG or PNG of a few kB that decodes to gigabytes), built here so every test and tool sends the same ones."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np


def png_bomb(width: int, height: int) -> bytes:
    """A valid grayscale PNG of ``width`` x ``height`` zeros: a few hundred kB at most that decode to width x height
    x 3 bytes (BGR). Written row by row, so building it takes no width x height buffer."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" * (width + 1)  # filter byte + pixels
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def jpeg_bomb(width: int, height: int) -> bytes:
    """A JPEG whose header declares ``width`` x ``height`` (at most 65535 a side) and that carries the data of one
    16x16 grey block: a few hundred bytes that decoders expand to width x height x 3 bytes (libjpeg fills the
    missing rest and warns "premature end of data segment")."""
    ok, data = cv2.imencode(".jpg", np.full((16, 16), 128, np.uint8))
    if not ok:
        raise ValueError("OpenCV could not encode a JPEG")
    data = bytearray(data.tobytes())
    frame = data.index(b"\xff\xc0")  # baseline start-of-frame: length (2), precision (1), height (2), width (2)
    data[frame + 5:frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)
