"""Sequences in the layout of the public ScanNet export (what ScanNet's SensReader writes from a scene's .sens
file, and what Video Depth Anything's benchmark preparation reads for TAE): one folder per scene holding

=================================  =========================================================================
``color/<n>.jpg``                  the colour frames (any size: resized to the depth size here)
``depth/<n>.png``                  16-bit depth in millimetres, 0 where there is none
``pose/<n>.txt``                   the camera -> world pose, 4 x 4, as text (non-finite where tracking failed)
``intrinsic/intrinsic_depth.txt``  the depth camera's intrinsics, 4 x 4 (its top-left 3 x 3 is K)
=================================  =========================================================================

with ``<n>`` the frame number (0, 1, 2, ...). A data root holds scene folders (``scene0707_00``, ...), or is one.
Scenes are taken in name order, the protocol's first ``scenes`` of them, and frames in number order, the
protocol's ``[first:end]`` (TAE on ScanNet: the first 20 scenes, frames 10 to 179). ScanNet records at 30 Hz: the
frames are stamped ``n / rate`` seconds.

The model sees each colour frame at the depth image's size, so its depth lines up with the true depth and the
depth intrinsics (the reference's own preparation crops and resizes colour frames of that size; ScanNet's raw
colour is 1296 x 968, its depth 640 x 480).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .datasets import DatasetError, decode_png
from .tae import SCANNET_TAE, TaeProtocol

RATE = 30.0  # Hz: ScanNet's sensor stream
START_NS = 1_700_000_000 * 1_000_000_000
LAYOUT = "color/<n>.jpg, depth/<n>.png (uint16 mm), pose/<n>.txt (4x4 camera->world), intrinsic/intrinsic_depth.txt"


@dataclass
class ScanNetFrame:
    """One frame as the sequence evaluation takes it (``eval/sequence_evaluation.py``)."""

    number: int
    stamp_ns: int
    rgb: np.ndarray  # H x W x 3 uint8, at the depth image's size
    truth: np.ndarray  # H x W float64 meters, NaN where the sensor has none
    pose: np.ndarray  # 4 x 4 camera -> world
    cut: bool = False
    moving: np.ndarray | None = None


def _numbered(folder: Path, suffix: str) -> dict[int, Path]:
    files = {}
    for path in folder.glob(f"*{suffix}"):
        try:
            files[int(path.stem)] = path
        except ValueError:
            continue  # not a frame file
    return files


def _matrix(path: Path) -> np.ndarray:
    try:
        matrix = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a 4x4 matrix as text ({exc})") from None
    if matrix.shape != (4, 4):
        raise DatasetError(f"{path}: a 4x4 matrix expected, got shape {matrix.shape}")
    return matrix


def is_scene(folder: Path) -> bool:
    return all((folder / name).is_dir() for name in ("color", "depth", "pose", "intrinsic"))


def scene_folders(root: Path, protocol: TaeProtocol = SCANNET_TAE) -> list[Path]:
    """The scenes under ``root`` (or ``root`` itself, if it is one) in name order, the protocol's first ones."""
    root = Path(root)
    if is_scene(root):
        return [root]
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder (a ScanNet export: scene folders with {LAYOUT})")
    scenes = sorted(path for path in root.iterdir() if path.is_dir() and is_scene(path))
    if not scenes:
        raise DatasetError(f"{root}: no scene folder in the ScanNet layout ({LAYOUT})")
    return scenes[:protocol.scenes] if protocol.scenes is not None else scenes


def read_scene(folder: Path, protocol: TaeProtocol = SCANNET_TAE, rate: float = RATE) -> tuple[list, np.ndarray]:
    """(frames, K): the protocol's frames of one scene, with the 3x3 intrinsics of its depth images."""
    folder = Path(folder)
    intrinsics = folder / "intrinsic" / "intrinsic_depth.txt"
    if not intrinsics.is_file():
        raise DatasetError(f"{folder}: missing intrinsic/intrinsic_depth.txt ({LAYOUT})")
    matrix = _matrix(intrinsics)[:3, :3]
    colours, depths, poses = (_numbered(folder / sub, suffix) for sub, suffix in
                              (("color", ".jpg"), ("depth", ".png"), ("pose", ".txt")))
    numbers = sorted(colours)[protocol.first:protocol.end]
    if not numbers:
        raise DatasetError(f"{folder}: no frames [{protocol.first}:{protocol.end}] among its {len(colours)} colour "
                           "frames (color/<n>.jpg)")
    frames = []
    for number in numbers:
        for kind, files in (("depth", depths), ("pose", poses)):
            if number not in files:
                raise DatasetError(f"{folder}: colour frame {number} has no {kind} "
                                   f"({kind}/{number}.{'png' if kind == 'depth' else 'txt'})")
        try:
            with Image.open(colours[number]) as image:
                rgb = np.asarray(image.convert("RGB"))
            meters = decode_png(depths[number].read_bytes(), 1000.0, str(depths[number]))
        except OSError as exc:
            raise DatasetError(f"{folder}: frame {number}: unreadable image ({exc})") from None
        if meters.ndim != 2:
            raise DatasetError(f"{depths[number]}: a single-channel 16-bit PNG (millimetres) expected, got shape "
                               f"{meters.shape}")
        truth = np.where(meters > 0, meters, np.nan)  # float64: mm / 1000 exactly as the reference has it
        if rgb.shape[:2] != truth.shape:
            rgb = cv2.resize(rgb, (truth.shape[1], truth.shape[0]), interpolation=cv2.INTER_AREA)
        frames.append(ScanNetFrame(number, START_NS + int(round(number / rate * 1e9)), rgb, truth,
                                   _matrix(poses[number])))
    return frames, matrix


def write_scene(folder: Path, rgbs, truths, poses, matrix) -> Path:
    """A scene folder in the layout above, from frames with colour, true depth (meters, non-finite: none) and
    camera -> world poses ((rotation, position) or 4x4): what the tests and users make from their own recordings."""
    from .tae import homogeneous

    folder = Path(folder)
    for sub in ("color", "depth", "pose", "intrinsic"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    intrinsic = np.eye(4)
    intrinsic[:3, :3] = matrix
    np.savetxt(folder / "intrinsic" / "intrinsic_depth.txt", intrinsic, fmt="%.6f")
    for number, (rgb, truth, pose) in enumerate(zip(rgbs, truths, poses)):
        Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(folder / "color" / f"{number}.jpg", quality=95)
        with np.errstate(invalid="ignore"):
            millimetres = np.where(np.isfinite(truth) & (truth > 0), np.round(np.asarray(truth) * 1000.0), 0)
        Image.fromarray(np.clip(millimetres, 0, 65535).astype(np.uint16)).save(folder / "depth" / f"{number}.png")
        np.savetxt(folder / "pose" / f"{number}.txt", homogeneous(pose), fmt="%.9f")
    return folder
