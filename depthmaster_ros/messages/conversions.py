"""sensor_msgs <-> numpy, written here because the PyPI cv_bridge is broken (ROS 1 code, fails on numpy 2 and
OpenCV 5) and rosbags-image only decodes and does not validate. Every check names what was expected and what
arrived; a failed check raises :class:`InputError` and the node drops that message.

Works on rclpy messages and on any object with the same fields (rosbags messages), so the bag tool shares it.
Building messages needs the rclpy message packages (imported where used).
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from ..geometry.intrinsics import CameraIntrinsics

COLOR_ENCODINGS = {  # encoding -> (channels, numpy dtype, conversion to RGB)
    "rgb8": (3, np.uint8, None),
    "bgr8": (3, np.uint8, cv2.COLOR_BGR2RGB),
    "rgba8": (4, np.uint8, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, np.uint8, cv2.COLOR_BGRA2RGB),
    "mono8": (1, np.uint8, cv2.COLOR_GRAY2RGB),
    "mono16": (1, np.uint16, cv2.COLOR_GRAY2RGB),
}
DEPTH_LIKE_ENCODINGS = {"16UC1", "32FC1", "16SC1", "32SC1", "64FC1", "8UC1", "8SC1"}


class InputError(ValueError):
    """A message that cannot be used; the text says what was expected and what arrived."""


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def make_header(stamp_ns: int, frame_id: str):
    """std_msgs/Header with this stamp (nanoseconds) and frame id."""
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    return Header(stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000), frame_id=frame_id)


def _check_pixels(width: int, height: int, max_pixels: int | None, what: str) -> None:
    from ..engine.limits import too_many_pixels

    reason = too_many_pixels(width, height, max_pixels, what)
    if reason:
        raise InputError(f"{reason} (it was not decoded)")


def image_to_rgb(msg, max_pixels: int | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8, mono16) -> H x W x 3 uint8 RGB (a copy). An image of
    more than ``max_pixels`` pixels is refused before any conversion. ``size`` (width, height): resized to it
    (area averaging) straight from the message's pixels, so no full-size copy is made."""
    encoding = msg.encoding
    if encoding not in COLOR_ENCODINGS:
        expected = ", ".join(COLOR_ENCODINGS)
        if encoding in DEPTH_LIKE_ENCODINGS:
            raise InputError(f"image encoding '{encoding}' is a depth/single-channel numeric format; DepthMaster "
                             f"needs a camera image ({expected})")
        raise InputError(f"image encoding '{encoding}' is not supported; expected one of {expected}")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise InputError(f"image is {width}x{height}; expected a non-empty image")
    _check_pixels(width, height, max_pixels, "image")
    channels, dtype, conversion = COLOR_ENCODINGS[encoding]
    itemsize = np.dtype(dtype).itemsize
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise InputError(f"image step {step} is smaller than width x bytes per pixel = {row_bytes} ({encoding})")
    data = msg.data
    if len(data) < step * height:
        raise InputError(f"image data has {len(data)} bytes; expected step x height = {step * height}")
    order = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    resize = size is not None and (width, height) != tuple(size)
    if resize and order.isnative:  # a view of the message's pixels (row padding skipped by the stride)
        pixels = np.ndarray((height, width, channels), order, buffer=data,
                            strides=(step, channels * itemsize, itemsize))
    else:
        rows = np.frombuffer(data, dtype=np.uint8, count=step * height).reshape(height, step)[:, :row_bytes]
        pixels = np.ascontiguousarray(rows).view(order).reshape(height, width, channels)
    if resize:  # before any conversion, so nothing else is made at full size
        pixels = cv2.resize(pixels.astype(dtype, copy=False) if channels > 1 else
                            pixels[..., 0].astype(dtype, copy=False), tuple(size), interpolation=cv2.INTER_AREA)
        pixels = pixels.reshape(size[1], size[0], channels)
    if dtype == np.uint16:  # full 16-bit range onto 8 bits
        pixels = np.round(pixels.astype(np.float32) / 257.0).astype(np.uint8)
    if conversion is None:
        return pixels if resize else pixels.copy()
    return cv2.cvtColor(pixels if channels > 1 else pixels[..., 0], conversion)


_JPEG_FRAME_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def compressed_size(data) -> tuple[int, int] | None:
    """(width, height) a PNG or JPEG declares in its header, read without decoding anything (a decompression
    bomb declares its size honestly); None if no header is found. ``data``: bytes or a byte memoryview."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:2] != b"\xff\xd8":
        return None
    index = 2
    while index + 9 <= len(data):
        if data[index] != 0xFF:  # extraneous bytes before a marker: decoders skip them, so does this
            index += 1
            continue
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            index += 2
            continue
        if marker in _JPEG_FRAME_MARKERS:
            height, width = struct.unpack(">HH", data[index + 5:index + 9])
            return width, height
        index += 2 + int.from_bytes(data[index + 2:index + 4], "big")
    return None


def declared_size(msg, compressed: bool) -> tuple[int, int] | None:
    """(width, height) an image message declares, read without decoding: a raw image's fields, a compressed
    image's PNG or JPEG header (None if it has none)."""
    if not compressed:
        return int(msg.width), int(msg.height)
    return compressed_size(memoryview(msg.data).cast("B"))


_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"BM", "bmp"), (b"GIF8", "gif"),
          (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"), (b"RIFF", "webp"))


def data_format(data: bytes) -> str | None:
    """What the first bytes of compressed image data say it is (png, jpeg, bmp, gif, tiff, webp), or None."""
    return next((kind for magic, kind in _MAGIC if data.startswith(magic)), None)


def compressed_to_rgb(msg, max_pixels: int | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg or png) -> H x W x 3 uint8 RGB. The data must be what the format says
    (checked by its first bytes: OpenCV would decode a BMP, with no size check, as readily as a PNG); the size in
    its header is checked against ``max_pixels`` before decoding. ``size`` (width, height): resized to it (area
    averaging) after decoding."""
    fmt = (msg.format or "").lower()
    if "compresseddepth" in fmt:
        raise InputError(f"compressed image format '{msg.format}' is compressedDepth; expected jpeg or png")
    if fmt and not any(word in fmt for word in ("jpeg", "jpg", "png")):
        raise InputError(f"compressed image format '{msg.format}' is not supported; expected jpeg or png")
    if len(msg.data) == 0:
        raise InputError("compressed image has no data")
    data = memoryview(msg.data).cast("B")  # no copy of the message's bytes
    declared = "png" if "png" in fmt else "jpeg" if fmt else None
    found = data_format(bytes(data[:8]))
    if found not in ("png", "jpeg") or (declared is not None and found != declared):
        what = found.upper() if found else f"not a known image format (it starts with {data[:4].hex(' ')})"
        raise InputError(f"compressed image format '{msg.format}' " + (f"says {declared}" if declared else
                         "is empty (jpeg or png expected)") + f" but its data is {what}; it was not decoded")
    header_size = compressed_size(data)
    if header_size is None:  # a bomb whose size would only be known decoded
        raise InputError(f"compressed image ({len(msg.data)} bytes, format '{msg.format}') could not be decoded: "
                         "no JPEG or PNG header declaring its size (corrupt, or not jpeg/png)")
    _check_pixels(header_size[0], header_size[1], max_pixels,
                  f"compressed image ({len(msg.data)} bytes, format '{msg.format}')")
    rgb = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR_RGB)  # RGB from the decoder: one array
    if rgb is None:
        raise InputError(f"compressed image ({len(msg.data)} bytes, format '{msg.format}') could not be decoded: "
                         "corrupt or not jpeg/png")
    if size is not None and (rgb.shape[1], rgb.shape[0]) != tuple(size):
        rgb = cv2.resize(rgb, tuple(size), interpolation=cv2.INTER_AREA)
    return rgb


def decode_image(msg, compressed: bool, max_pixels: int | None = None,
                 size: tuple[int, int] | None = None) -> np.ndarray:
    """An Image or CompressedImage -> H x W x 3 uint8 RGB; more than ``max_pixels`` pixels is refused before
    decoding; ``size`` (width, height): resized to it (area averaging)."""
    return compressed_to_rgb(msg, max_pixels, size) if compressed else image_to_rgb(msg, max_pixels, size)


def camera_info_to_intrinsics(msg) -> CameraIntrinsics:
    """sensor_msgs/CameraInfo -> CameraIntrinsics, rejecting what cannot be used for projection."""
    roi = msg.roi
    camera = CameraIntrinsics(
        width=int(msg.width), height=int(msg.height),
        K=np.asarray(msg.k, dtype=np.float64).reshape(3, 3),
        P=np.asarray(msg.p, dtype=np.float64).reshape(3, 4),
        D=tuple(float(d) for d in msg.d),
        distortion_model=str(msg.distortion_model),
        R=np.asarray(msg.r, dtype=np.float64).reshape(3, 3),
        binning_x=int(msg.binning_x), binning_y=int(msg.binning_y),
        roi=(int(roi.x_offset), int(roi.y_offset), int(roi.height), int(roi.width), bool(roi.do_rectify)),
        frame_id=str(msg.header.frame_id),
    )
    problems = camera.problems()
    if problems:
        raise InputError("camera_info rejected: " + "; ".join(problems))
    return camera


def intrinsics_to_camera_info(camera: CameraIntrinsics, header):
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo()
    msg.header = header
    msg.width, msg.height = camera.width, camera.height
    msg.distortion_model = camera.distortion_model
    msg.d = list(camera.D)
    msg.k = camera.K.reshape(-1).tolist()
    msg.r = camera.R.reshape(-1).tolist()
    msg.p = camera.P.reshape(-1).tolist()
    msg.binning_x, msg.binning_y = camera.binning_x, camera.binning_y
    x, y, h, w, rectify = camera.roi
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.height, msg.roi.width, msg.roi.do_rectify = x, y, h, w, rectify
    return msg


def fill_bytes(field, values: np.ndarray) -> None:
    """Append ``values``' bytes (C order) to a message's ``uint8[]`` field (an ``array.array('B')``, empty in a new
    message): one copy, straight from the array's memory. The alternatives cost more: rclpy's setter copies
    bytes, a bytearray or an array.array once more (``msg.data = a.tobytes()`` is two copies), and converts an
    ndarray or a memoryview element by element (~500 times slower)."""
    field.frombytes(np.ascontiguousarray(values).reshape(-1).view(np.uint8))


def array_to_image(array: np.ndarray, encoding: str, header):
    """32FC1 (float32 H x W) or bgr8/rgb8 (uint8 H x W x 3) -> sensor_msgs/Image (data: :func:`fill_bytes`)."""
    from sensor_msgs.msg import Image

    expected = {"32FC1": (np.float32, 2), "bgr8": (np.uint8, 3), "rgb8": (np.uint8, 3)}[encoding]
    if array.dtype != expected[0] or array.ndim != expected[1]:
        raise ValueError(f"{encoding} needs a {np.dtype(expected[0])} array with {expected[1]} dims, "
                         f"got {array.dtype} {array.shape}")
    msg = Image()
    msg.header = header
    msg.height, msg.width = array.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = array.shape[1] * (array.shape[2] if array.ndim == 3 else 1) * array.itemsize
    fill_bytes(msg.data, array)
    return msg


def points_to_cloud(points: np.ndarray, header):
    """Organised structured array (x, y, z[, rgb] float32) -> sensor_msgs/PointCloud2, is_dense = false (data:
    :func:`fill_bytes`)."""
    from sensor_msgs.msg import PointCloud2, PointField

    msg = PointCloud2()
    msg.header = header
    msg.height, msg.width = points.shape
    msg.fields = [
        PointField(name=name, offset=points.dtype.fields[name][1], datatype=PointField.FLOAT32, count=1)
        for name in points.dtype.names
    ]
    msg.is_bigendian = False
    msg.point_step = points.dtype.itemsize
    msg.row_step = msg.point_step * msg.width
    msg.is_dense = False
    fill_bytes(msg.data, points)
    return msg


def cloud_to_points(msg) -> np.ndarray:
    """sensor_msgs/PointCloud2 with float32 fields -> organised structured array (for tests and tools)."""
    dtype = np.dtype({"names": [f.name for f in msg.fields], "formats": ["<f4"] * len(msg.fields),
                      "offsets": [f.offset for f in msg.fields], "itemsize": msg.point_step})
    return np.frombuffer(bytes(msg.data), dtype=dtype).reshape(msg.height, msg.width)


def depth_image_to_meters(msg) -> np.ndarray:
    """REP 118 depth image -> float32 meters with NaN where there is no measurement: 32FC1 (meters; NaN/Inf/0
    invalid) or 16UC1 (millimeters; 0 invalid)."""
    kinds = {"32FC1": np.float32, "16UC1": np.uint16}
    if msg.encoding not in kinds:
        raise InputError(f"sparse depth encoding '{msg.encoding}' is not supported; expected 32FC1 (meters) or "
                         "16UC1 (millimeters), REP 118")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    dtype = np.dtype(kinds[msg.encoding]).newbyteorder(">" if msg.is_bigendian else "<")
    if height == 0 or width == 0 or step < width * dtype.itemsize or len(msg.data) < step * height:
        raise InputError(f"sparse depth image {width}x{height} (step {step}) has {len(msg.data)} bytes; expected "
                         f"a non-empty image with step >= {width * dtype.itemsize} and step x height bytes")
    rows = np.frombuffer(msg.data, dtype=np.uint8, count=step * height).reshape(height, step)
    values = np.ascontiguousarray(rows[:, : width * dtype.itemsize]).view(dtype).astype(np.float32)
    if msg.encoding == "16UC1":
        values /= 1000.0
    values[~np.isfinite(values) | (values <= 0)] = np.nan
    return values


def cloud_to_xyz(msg) -> np.ndarray:
    """sensor_msgs/PointCloud2 with float32 or float64 x, y, z fields (any layout) -> N x 3 float64 of its finite
    points. The layout is checked against the data before anything is read."""
    kinds = {7: "f4", 8: "f8"}  # PointField.FLOAT32, FLOAT64
    names = [f.name for f in msg.fields]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(f"point cloud lists the field(s) {', '.join(repr(n) for n in twice)} more than once "
                         f"(fields: {names}): which one holds the values is ambiguous")
    fields = {f.name: f for f in msg.fields}
    missing = [name for name in "xyz" if name not in fields]
    if missing:
        raise InputError(f"point cloud has no {', '.join(missing)} field(s); fields: {sorted(fields)}")
    if any(fields[name].datatype not in kinds for name in "xyz"):
        raise InputError("point cloud x, y, z fields must be FLOAT32 or FLOAT64 (datatype 7 or 8), got "
                         + ", ".join(f"{n}: {fields[n].datatype}" for n in "xyz"))
    width, height, point_step = int(msg.width), int(msg.height), int(msg.point_step)
    count = width * height
    if count == 0:
        return np.zeros((0, 3))
    sizes = {name: int(kinds[fields[name].datatype][1]) for name in "xyz"}
    ends = {name: int(fields[name].offset) + sizes[name] for name in "xyz"}
    if point_step <= 0 or any(end > point_step for end in ends.values()):
        raise InputError(f"point cloud point_step {point_step} does not hold its fields (x, y, z end at bytes "
                         f"{ends['x']}, {ends['y']}, {ends['z']})")
    row_step = int(msg.row_step)
    if height > 1 and row_step < width * point_step:
        raise InputError(f"point cloud row_step {row_step} is smaller than width x point_step = {width * point_step}")
    needed = (height - 1) * max(row_step, width * point_step) + width * point_step
    if len(msg.data) < needed:
        raise InputError(f"point cloud has {len(msg.data)} bytes; its {width}x{height} points of {point_step} bytes "
                         f"need {needed}")
    order = ">" if msg.is_bigendian else "<"
    dtype = np.dtype({"names": list("xyz"), "formats": [order + kinds[fields[n].datatype] for n in "xyz"],
                      "offsets": [int(fields[n].offset) for n in "xyz"], "itemsize": point_step})
    data = np.frombuffer(msg.data, dtype=np.uint8, count=needed)
    if height > 1 and row_step != width * point_step:  # padded rows
        rows = [data[r * row_step: r * row_step + width * point_step] for r in range(height)]
        data = np.concatenate(rows)
    points = np.frombuffer(data, dtype=dtype, count=count)
    xyz = np.stack([points[n].astype(np.float64) for n in "xyz"], axis=1)
    return xyz[np.isfinite(xyz).all(axis=1)]


SCALE_LAYOUT = ("stamp", "scale", "shift", "inlier_ratio", "residual_rms", "pairs", "age")


def scale_to_msg(fit, stamp_ns: int, *reports):
    """The fit as std_msgs/Float64MultiArray: data = [image stamp (s), scale, shift, inlier_ratio, residual_rms,
    pairs, age (s)], then the fields of each stage report given, in order (``scale_fields()``, see
    ``engine/stage.py``; the temporal stage's: its inlier ratio, residual RMS, 1.0 if the frame reset its reference
    else 0.0), so the indices above stay valid; the order is named in layout.dim[0].label."""
    from std_msgs.msg import Float64MultiArray, MultiArrayDimension

    extra = [field for report in reports for field in getattr(report, "scale_fields", tuple)()]
    names = SCALE_LAYOUT + tuple(name for name, _ in extra)
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=",".join(names), size=len(names), stride=len(names))]
    data = [stamp_ns / 1e9, fit.scale, fit.shift, fit.inlier_ratio, fit.residual_rms, float(fit.pairs), fit.age]
    msg.data = data + [float(value) for _, value in extra]
    return msg
