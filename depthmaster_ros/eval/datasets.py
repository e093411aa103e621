"""The evaluation datasets in the on-disk layout of the standard archives the paper used (Marigold's evaluation
tarballs), read from the .tar itself or from its extracted folder (depthmaster-method.md section 5.1).

A file list names each sample by paths relative to the archive root, whitespace-separated on one line:
``rgb depth [extra]`` (KITTI: the focal length, "None" depth = no ground truth, skipped; NYU: the filled depth, not
used for scoring; DIODE: the validity mask .npy). Depth encodings, valid ranges, crops and masks per dataset:

=========  =============================  =================  ===============  =====================================
dataset    depth file                     valid range (m)    proc. res.       crop / mask
=========  =============================  =================  ===============  =====================================
kitti      16-bit PNG / 256               1e-5 < d < 80      0 (native)       KITTI benchmark crop 352x1216, Eigen
nyu        16-bit PNG / 1000              1e-3 < d < 10      0                Eigen crop [45:471, 41:601]
eth3d      raw float32, image-sized       1e-5 < d < inf     756              inf read as 0 (invalid)
scannet    16-bit PNG / 1000              1e-3 < d < 10      0                -
diode      .npy meters                    clip 0.6 .. 350    640              mask from the *_depth_mask.npy file
hypersim   16-bit PNG / 1000              1e-5 < d < 65      0                - (also boundary F1)
=========  =============================  =================  ===============  =====================================
"""

from __future__ import annotations

import io
import math
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


class DatasetError(RuntimeError):
    """A dataset that is missing or not in the expected layout; the text names the file and the layout."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    archive: str  # under the data root, as in the evaluation archives
    filelist: str  # under Marigold's data_split/
    processing_res: int
    min_depth: float
    max_depth: float
    depth_format: str  # png_256 | png_1000 | png_100 | eth3d_raw | npy
    kitti_crop: bool = False
    eval_crop: str | None = None  # kitti_eigen | nyu_eigen
    mask_from_file: bool = False
    boundary_f1: bool = False
    paper: tuple[float, float] | None = None  # Table I (AbsRel %, delta1 %)


SPECS = {
    "kitti": DatasetSpec("kitti", "kitti/kitti_eigen_split_test.tar", "kitti/eigen_test_files_with_gt.txt", 0,
                         1e-5, 80.0, "png_256", kitti_crop=True, eval_crop="kitti_eigen", paper=(8.2, 93.7)),
    "nyu": DatasetSpec("nyu", "nyuv2/nyu_labeled_extracted.tar", "nyu/labeled/filename_list_test.txt", 0,
                       1e-3, 10.0, "png_1000", eval_crop="nyu_eigen", paper=(5.0, 97.2)),
    "eth3d": DatasetSpec("eth3d", "eth3d/eth3d.tar", "eth3d/eth3d_filename_list.txt", 756, 1e-5, math.inf,
                         "eth3d_raw", paper=(5.3, 97.4)),
    "scannet": DatasetSpec("scannet", "scannet/scannet_val_sampled_800_1.tar",
                           "scannet/scannet_val_sampled_list_800_1.txt", 0, 1e-3, 10.0, "png_1000",
                           paper=(5.5, 96.7)),
    "diode": DatasetSpec("diode", "diode/diode_val.tar", "diode/diode_val_all_filename_list.txt", 640, 0.6, 350.0,
                         "npy", mask_from_file=True, paper=(21.5, 77.6)),
    "hypersim": DatasetSpec("hypersim", "hypersim/hypersim_processed_val.tar",
                            "hypersim/filename_list_val_filtered_small_80.txt", 0, 1e-5, 65.0, "png_1000",
                            boundary_f1=True),
}
KB_HEIGHT, KB_WIDTH = 352, 1216


@dataclass
class Sample:
    name: str  # the RGB path in the archive
    rgb: np.ndarray  # H x W x 3 uint8
    depth: np.ndarray  # H x W float64 meters (0 or non-finite = none)
    valid: np.ndarray  # H x W bool: the pixels that are scored


class ArchiveReader:
    """Files of an evaluation archive, from the .tar or its extracted folder."""

    def __init__(self, path: Path):
        self.path = path
        self._tar = tarfile.open(path) if path.is_file() else None
        self._names = set(self._tar.getnames()) if self._tar is not None else None

    def has(self, relative: str) -> bool:
        if self._tar is None:
            return (self.path / relative).is_file()
        return relative in self._names or f"./{relative}" in self._names

    def read(self, relative: str) -> bytes:
        if self._tar is None:
            target = self.path / relative
            if not target.is_file():
                raise DatasetError(f"missing file {target} (listed in the file list)")
            return target.read_bytes()
        for name in (f"./{relative}", relative):
            if name in self._names:
                return self._tar.extractfile(name).read()
        raise DatasetError(f"missing file {relative} in {self.path} (listed in the file list)")

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()


def _find_archive(spec: DatasetSpec, data_root: Path, first_rgb: str) -> ArchiveReader:
    folder = spec.archive[: -len(".tar")]
    candidates = [data_root / spec.archive, data_root / folder, data_root]
    for candidate in candidates:
        if candidate.is_file() and tarfile.is_tarfile(candidate) or candidate.is_dir():
            reader = ArchiveReader(candidate)
            if reader.has(first_rgb):
                return reader
            reader.close()
    tried = ", ".join(str(c) for c in candidates)
    raise DatasetError(f"{spec.name}: no archive holding {first_rgb} (the first file of the list) at {tried}. "
                       f"Expected Marigold's evaluation archive {spec.archive} (or its extracted folder) under the "
                       "data root")


def _find_filelist(spec: DatasetSpec, data_root: Path, filelist: Path | None) -> Path:
    if filelist is not None:
        if not filelist.is_file():
            raise DatasetError(f"file list {filelist} does not exist")
        return filelist
    basename = Path(spec.filelist).name
    candidates = [data_root / "data_split" / spec.filelist, data_root / Path(spec.archive).parent / basename,
                  data_root / basename]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{spec.name}: no file list found at {', '.join(map(str, candidates))}. Copy "
                       f"data_split/{spec.filelist} from the Marigold repository (github.com/prs-eth/Marigold) "
                       "there, or pass --filenames")


def decode_png(data: bytes, divisor: float, what: str) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image).astype(np.float64) / divisor


class EvalDataset:
    def __init__(self, spec: DatasetSpec, data_root: str | Path, filelist: str | Path | None = None):
        self.spec = spec
        data_root = Path(data_root)
        if not data_root.exists():
            raise DatasetError(f"data root {data_root} does not exist")
        self.filelist = _find_filelist(spec, data_root, Path(filelist) if filelist else None)
        entries = [line.split() for line in self.filelist.read_text().splitlines() if line.strip()]
        expected = 3 if spec.depth_format == "npy" else 2
        for number, entry in enumerate(entries, 1):
            if len(entry) < expected:
                raise DatasetError(f"{self.filelist} line {number}: expected at least {expected} paths "
                                   f"(rgb depth{' mask' if spec.mask_from_file else ''}), got {' '.join(entry)!r}")
        self.entries = [e for e in entries if e[1] != "None"]  # KITTI frames without ground truth
        if not self.entries:
            raise DatasetError(f"{self.filelist} lists no sample with ground truth")
        self.archive = _find_archive(spec, data_root, self.entries[0][0])

    def __len__(self) -> int:
        return len(self.entries)

    def close(self) -> None:
        self.archive.close()

    def load(self, index: int) -> Sample:
        spec = self.spec
        rgb_path, depth_path = self.entries[index][:2]
        with Image.open(io.BytesIO(self.archive.read(rgb_path))) as image:
            rgb = np.asarray(image.convert("RGB"))
        data = self.archive.read(depth_path)
        try:
            if spec.depth_format == "png_256":
                depth = decode_png(data, 256.0, depth_path)
            elif spec.depth_format == "png_1000":
                depth = decode_png(data, 1000.0, depth_path)
            elif spec.depth_format == "png_100":
                depth = decode_png(data, 100.0, depth_path)
            elif spec.depth_format == "eth3d_raw":
                values = np.frombuffer(data, dtype="<f4").astype(np.float64)
                if values.size != rgb.shape[0] * rgb.shape[1]:
                    raise ValueError(f"{values.size} float32 values for a {rgb.shape[1]}x{rgb.shape[0]} image")
                depth = values.reshape(rgb.shape[:2])
                depth[np.isinf(depth)] = 0.0
            else:
                depth = np.load(io.BytesIO(data)).astype(np.float64).squeeze()
        except Exception as exc:
            raise DatasetError(f"{spec.name}: cannot decode depth file {depth_path} as {spec.depth_format}: {exc}") \
                from exc
        if depth.shape != rgb.shape[:2]:
            raise DatasetError(f"{spec.name}: depth {depth_path} is {depth.shape[1]}x{depth.shape[0]} but its image "
                               f"{rgb_path} is {rgb.shape[1]}x{rgb.shape[0]}")
        if spec.kitti_crop:
            if rgb.shape[0] < KB_HEIGHT or rgb.shape[1] < KB_WIDTH:
                raise DatasetError(f"kitti: {rgb_path} is {rgb.shape[1]}x{rgb.shape[0]}, smaller than the "
                                   f"{KB_WIDTH}x{KB_HEIGHT} benchmark crop")
            top, left = rgb.shape[0] - KB_HEIGHT, int((rgb.shape[1] - KB_WIDTH) / 2)
            rgb = rgb[top:top + KB_HEIGHT, left:left + KB_WIDTH]
            depth = depth[top:top + KB_HEIGHT, left:left + KB_WIDTH]
        if spec.mask_from_file:
            try:
                valid = np.load(io.BytesIO(self.archive.read(self.entries[index][2]))).squeeze().astype(bool)
            except DatasetError:
                raise
            except Exception as exc:
                raise DatasetError(f"{spec.name}: cannot read mask {self.entries[index][2]}: {exc}") from exc
            if valid.shape != depth.shape:
                raise DatasetError(f"{spec.name}: mask {self.entries[index][2]} has shape {valid.shape}, depth "
                                   f"{depth.shape}")
        else:
            with np.errstate(invalid="ignore"):
                valid = (depth > spec.min_depth) & (depth < spec.max_depth)
        valid &= eval_crop_mask(spec.eval_crop, depth.shape)
        return Sample(rgb_path, np.ascontiguousarray(rgb), depth, valid)


def eval_crop_mask(kind: str | None, shape: tuple[int, int]) -> np.ndarray:
    """The evaluation crop as a mask: KITTI's Eigen crop (fractions of the 352x1216 frame) or NYU's."""
    mask = np.zeros(shape, dtype=bool)
    height, width = shape
    if kind is None:
        mask[:] = True
    elif kind == "kitti_eigen":
        mask[int(0.3324324 * height):int(0.91351351 * height), int(0.0359477 * width):int(0.96405229 * width)] = True
    elif kind == "nyu_eigen":
        mask[45:471, 41:601] = True
    else:
        raise ValueError(f"unknown evaluation crop {kind!r}")
    return mask
