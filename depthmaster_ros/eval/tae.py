"""TAE, the temporal alignment error the video-depth literature reports (Video Depth Anything, its
``benchmark/eval/eval_tae.py``), and metric TAE (the same without the alignment), on numpy arrays.

For a sequence of predicted depth maps with known camera poses:

1. **crop** every prediction (TAE: its disparity, metric TAE: its depth) and true depth by the protocol's margins
   (ScanNet: 8 rows top and bottom, 11 columns left and right, DepthCrafter's crop of ScanNet's black border), and
   resize a prediction whose crop is not the truth's size to it (bilinear). The intrinsics stay as they are: the reference back-projects the cropped
   maps with the uncropped principal point, and so does this, so the numbers compare.
2. **align** (TAE only): one scale and shift per sequence, fitted by least squares in disparity over every pixel of
   every frame whose true depth is in (``MIN_DEPTH``, ``max_depth``): ``1 / (truth + 1e-8) ~ scale * d + shift``
   with ``d`` the predicted disparity floored at ``MIN_DEPTH``; the aligned depth is ``1 / max(scale * d + shift,
   MIN_DEPTH)``. Metric TAE skips this: the predicted depth as it is.
3. **clip** the depth to [``MIN_DEPTH``, ``max_depth``] everywhere (the true depth plays no part from here on).
4. **pairs**: for each consecutive pair (i, i + 1), every pixel of frame i is back-projected with its predicted
   depth (pixel centres at integer coordinates), moved into frame i + 1 with the true relative pose
   ``inv(T_i+1) @ T_i`` (poses camera -> world, 4 x 4), projected, and its coordinates **rounded** to the nearest
   pixel (half to even); inside the image, its depth is written there (when several land on one pixel, the last in
   row-major order of frame i stays; points behind the camera are written too and then dropped as not positive).
   The pair's error in that direction is the mean of ``|D_i+1 - projected| / D_i+1`` over the pixels that got a
   positive depth, and 0 when none did. The other direction is the same from frame i + 1 with ``inv`` of that
   transform, using frame i's intrinsics.
5. **TAE** = 100 x the mean of the 2 (n - 1) directed errors; a dataset's is the mean over its sequences.

Predictions come as metric depth maps with REP 117 codes: +Inf (sky, beyond range) is infinitely far (disparity 0,
then floored and clipped like a disparity model's sky), NaN and -Inf are unknown and take no part (the reference
has no such pixels: its predictions are finite everywhere). A frame without a prediction (None) is left out, and
its neighbours form a pair, as the reference does with a missing prediction file. The protocol's margins and
depth range are :class:`TaeProtocol`; ``SCANNET_TAE`` is the reference's ScanNet setting (20 scenes, frames 10 to
179, depth range 10 m).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

MIN_DEPTH = 1e-3  # the reference's floor: valid truth above it, predictions and depths clipped to it
DISPARITY_EPS = 1e-8  # added to the true depth before inverting it


@dataclass(frozen=True)
class TaeProtocol:
    """``crop``: rows removed at the top and bottom, columns at the left and right; ``max_depth``: meters, the
    valid truth's upper bound and the predictions' clip; ``first``/``end``: the frames of a sequence scored
    (``[first:end]``); ``scenes``: how many sequences of a dataset (None: all)."""

    name: str
    crop: tuple[int, int, int, int] = (0, 0, 0, 0)
    max_depth: float = 10.0
    first: int = 0
    end: int | None = None
    scenes: int | None = None

    def cropped(self, image: np.ndarray) -> np.ndarray:
        top, bottom, left, right = self.crop
        height, width = image.shape[:2]
        return image[top:height - bottom, left:width - right]


SCANNET_TAE = TaeProtocol("scannet", crop=(8, 8, 11, 11), max_depth=10.0, first=10, end=180, scenes=20)
# The sample scene: nothing to crop, and everything but the sky nearer than 20 m (the wall is 12 m ahead).
SYNTHETIC_TAE = TaeProtocol("synthetic", max_depth=20.0)


def homogeneous(pose) -> np.ndarray:
    """A camera -> world pose as a 4 x 4 matrix, from one or from (rotation camera -> world, position)."""
    if isinstance(pose, np.ndarray) and pose.shape == (4, 4):
        return pose.astype(np.float64)
    rotation, position = (np.asarray(value, dtype=np.float64) for value in pose)
    matrix = np.eye(4)
    matrix[:3, :3], matrix[:3, 3] = rotation, position
    return matrix


def last_writes(indices: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(targets, sources): for each distinct index in ``indices`` (flat pixel positions, in the sources' order),
    the position of its last occurrence: what a sequential scatter leaves behind."""
    reversed_targets, first_in_reverse = np.unique(indices[::-1], return_index=True)
    return reversed_targets, indices.size - 1 - first_in_reverse


def directed_error(depth_from: np.ndarray, depth_to: np.ndarray, transform: np.ndarray, matrix) -> float:
    """One direction of a pair (module docstring, step 4): ``depth_from``'s pixels moved by ``transform`` (4 x 4,
    frame "from" -> frame "to" camera coordinates) and compared with ``depth_to``. NaN pixels take no part."""
    depth_from = np.asarray(depth_from, dtype=np.float64)
    depth_to = np.asarray(depth_to, dtype=np.float64)
    height, width = depth_from.shape
    matrix = np.asarray(matrix, dtype=np.float64)
    fx, fy, cx, cy = matrix[0, 0], matrix[1, 1], matrix[0, 2], matrix[1, 2]
    rows, cols = np.nonzero(np.isfinite(depth_from))
    z = depth_from[rows, cols]
    points = np.stack([(cols - cx) * z / fx, (rows - cy) * z / fy, z], axis=1)
    moved = points @ transform[:3, :3].T + transform[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.rint(moved[:, 0] * fx / moved[:, 2] + cx)
        v = np.rint(moved[:, 1] * fy / moved[:, 2] + cy)
        inside = np.isfinite(u) & np.isfinite(v) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    if not inside.any():
        return 0.0
    targets, sources = last_writes(v[inside].astype(np.int64) * width + u[inside].astype(np.int64), height * width)
    projected = moved[inside, 2][sources]
    seen = depth_to.reshape(-1)[targets]
    with np.errstate(invalid="ignore"):
        valid = (projected > 0) & np.isfinite(seen) & (seen > 0)
    if not valid.any():
        return 0.0
    return float(np.mean(np.abs(seen[valid] - projected[valid]) / seen[valid]))


def sequence_tae(depths, poses, matrices) -> float:
    """TAE (x 100) of depth maps already aligned and clipped (steps 4-5): ``depths[k]`` H x W (NaN: no depth),
    ``poses[k]`` camera -> world, ``matrices[k]`` the 3 x 3 intrinsics (or one for all). NaN for fewer than two
    frames."""
    if len(depths) != len(poses):
        raise ValueError(f"{len(depths)} depth maps and {len(poses)} poses: one each per frame")
    if len(depths) < 2:
        return math.nan
    matrices = matrices if isinstance(matrices, (list, tuple)) else [matrices] * len(depths)
    total = 0.0
    for k in range(len(depths) - 1):
        forward = np.linalg.inv(homogeneous(poses[k + 1])) @ homogeneous(poses[k])
        total += directed_error(depths[k], depths[k + 1], forward, matrices[k])
        total += directed_error(depths[k + 1], depths[k], np.linalg.inv(forward), matrices[k])
    return 100.0 * total / (2 * (len(depths) - 1))


def to_truth_size(prediction: np.ndarray, truth_shape: tuple[int, int], protocol: TaeProtocol) -> np.ndarray:
    """Step 1 for a prediction: cropped, and resized (bilinear) to the cropped truth's size if it differs."""
    cropped = protocol.cropped(np.asarray(prediction, dtype=np.float64))
    if cropped.shape != tuple(truth_shape):
        cropped = cv2.resize(cropped, (truth_shape[1], truth_shape[0]), interpolation=cv2.INTER_LINEAR)
    return cropped


def disparity_of(depth: np.ndarray) -> np.ndarray:
    """Predicted disparity of a depth map with REP 117 codes: 1 / depth, 0 for +Inf, NaN where unknown."""
    depth = np.asarray(depth, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isposinf(depth), 0.0, np.where(np.isfinite(depth) & (depth > 0), 1.0 / depth, np.nan))


def disparity_fit(disparities, truths, max_depth: float) -> tuple[float, float]:
    """The sequence's one (scale, shift) in disparity (step 2) over the pixels with a valid truth and a
    prediction."""
    xs, ys = [], []
    for disparity, truth in zip(disparities, truths):
        with np.errstate(invalid="ignore"):
            valid = (truth > MIN_DEPTH) & (truth < max_depth) & np.isfinite(disparity)
        xs.append(np.maximum(disparity[valid], MIN_DEPTH))
        ys.append(1.0 / (truth[valid] + DISPARITY_EPS))
    x, y = np.concatenate(xs), np.concatenate(ys)
    if x.size < 2:
        raise ValueError(f"TAE needs predictions where the truth is valid ({MIN_DEPTH} < depth < {max_depth} m); "
                         f"{x.size} such pixels")
    (scale, shift), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], axis=1), y, rcond=None)
    return float(scale), float(shift)


def _prepared(depths, truths, poses, protocol: TaeProtocol, convert=lambda depth: depth):
    """The frames that have a prediction: (predictions as ``convert`` makes them, truths), cropped to the truth's
    crop (the prediction resized to it if need be), and their poses."""
    if not (len(depths) == len(truths) == len(poses)):
        raise ValueError(f"{len(depths)} depth maps, {len(truths)} true depths and {len(poses)} poses: one each per "
                         "frame")
    kept = [k for k, depth in enumerate(depths) if depth is not None]
    cropped_truths = [protocol.cropped(np.asarray(truths[k], dtype=np.float64)) for k in kept]
    predictions = [to_truth_size(convert(depths[k]), truth.shape, protocol) for k, truth in zip(kept, cropped_truths)]
    return predictions, cropped_truths, [poses[k] for k in kept]


def tae(depths, truths, poses, matrix, protocol: TaeProtocol = SYNTHETIC_TAE) -> float:
    """TAE (x 100) of a sequence of predicted depth maps (module docstring): one scale and shift in disparity
    against the truth, then the pairs."""
    disparities, truths, poses = _prepared(depths, truths, poses, protocol, disparity_of)
    if len(disparities) < 2:
        return math.nan
    scale, shift = disparity_fit(disparities, truths, protocol.max_depth)
    aligned = [np.clip(1.0 / np.maximum(scale * np.maximum(d, MIN_DEPTH) + shift, MIN_DEPTH), MIN_DEPTH,
                       protocol.max_depth) for d in disparities]
    return sequence_tae(aligned, poses, matrix)


def metric_tae(depths, truths, poses, matrix, protocol: TaeProtocol = SYNTHETIC_TAE) -> float:
    """Metric TAE (x 100): the pairs on the predicted depth as it is (clipped to the protocol's range; +Inf to its
    far end), no alignment."""
    predictions, _, poses = _prepared(depths, truths, poses, protocol)
    with np.errstate(invalid="ignore"):
        clipped = [np.where(np.isneginf(d), np.nan, np.clip(d, MIN_DEPTH, protocol.max_depth)) for d in predictions]
    return sequence_tae(clipped, poses, matrix)
