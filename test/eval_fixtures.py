"""Tiny evaluation datasets written in the exact on-disk layouts of the evaluation archives (synthetic content:
the sample scene's images and exact depth, with each dataset's encoding, file list format and archive kind)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from depthmaster_ros.samples.sample_scene import PinholeCamera, render


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _jpg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def diode_mask(depth: np.ndarray) -> np.ndarray:
    """The validity mask the fixture's DIODE files carry: some pixels with depth are masked out anyway."""
    return (depth > 0) & (np.arange(depth.shape[1])[None, :] % 7 != 0)


def scene(width: int, height: int, t: float):
    rgb, depth = render(PinholeCamera.with_size(width, height), t=t)
    return rgb, np.where(np.isfinite(depth), depth, 0.0)


def _write(root: Path, archive: str, files: dict[str, bytes], as_tar: bool) -> None:
    if as_tar:
        path = root / archive
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo("./" + name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        folder = root / archive[: -len(".tar")]
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)


def _list(root: Path, relative: str, lines: list[str]) -> None:
    path = root / "data_split" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def write_datasets(root: Path, frames: int = 2) -> dict[str, list[np.ndarray]]:
    """All six datasets under ``root`` (Marigold's evaluation root layout); returns the exact depth of each
    dataset's frames as scored (after KITTI's crop)."""
    truths: dict[str, list[np.ndarray]] = {}

    # KITTI: 1242x375 frames, KB-cropped to 1216x352 when read; sparse 16-bit PNG / 256; a "None" line; a tar.
    files, lines, truths["kitti"] = {}, [], []
    for i in range(frames):
        rgb, depth = scene(1242, 375, i)
        sparse = np.where(np.random.default_rng(i).random(depth.shape) < 0.2, depth, 0.0)
        rgb_path = f"2011_09_26/2011_09_26_drive_0002_sync/image_02/data/{i:010d}.png"
        depth_path = f"2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/{i:010d}.png"
        files[rgb_path] = _png(rgb)
        files[depth_path] = _png(np.round(sparse * 256).astype(np.uint16))
        lines.append(f"{rgb_path} {depth_path} 721.5377")
        truths["kitti"].append(np.round(sparse * 256)[375 - 352:, 13:13 + 1216] / 256)
    lines.insert(1, "2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000099.png None 721.5377")
    _write(root, "kitti/kitti_eigen_split_test.tar", files, as_tar=True)
    _list(root, "kitti/eigen_test_files_with_gt.txt", lines)

    # NYUv2 (640x480, raw + filled 16-bit PNG / 1000), extracted folder.
    files, lines, truths["nyu"] = {}, [], []
    for i in range(frames):
        rgb, depth = scene(640, 480, i)
        mm = np.round(np.clip(depth, 0, 9.5) * 1000).astype(np.uint16)
        base = "test/kitchen_0004"
        files[f"{base}/rgb_{i:04d}.png"] = _png(rgb)
        files[f"{base}/depth_{i:04d}.png"] = _png(mm)
        files[f"{base}/filled_{i:04d}.png"] = _png(mm)
        lines.append(f"{base}/rgb_{i:04d}.png {base}/depth_{i:04d}.png {base}/filled_{i:04d}.png")
        truths["nyu"].append(mm / 1000.0)
    _write(root, "nyuv2/nyu_labeled_extracted.tar", files, as_tar=False)
    _list(root, "nyu/labeled/filename_list_test.txt", lines)

    # ETH3D: JPEG images, depth as raw little-endian float32 of the image size with inf = invalid; a tar.
    files, lines, truths["eth3d"] = {}, [], []
    for i in range(frames):
        rgb, depth = scene(96, 64, i)
        raw = np.where(depth > 0, depth, np.inf).astype("<f4")
        files[f"rgb/office/images/dslr_images/DSC_{i:04d}.JPG"] = _jpg(rgb)
        files[f"depth/office_dslr_depth/office/ground_truth_depth/dslr_images/DSC_{i:04d}.JPG"] = raw.tobytes()
        lines.append(f"rgb/office/images/dslr_images/DSC_{i:04d}.JPG "
                     f"depth/office_dslr_depth/office/ground_truth_depth/dslr_images/DSC_{i:04d}.JPG")
        truths["eth3d"].append(np.where(np.isinf(raw), 0.0, raw.astype(np.float64)))
    _write(root, "eth3d/eth3d.tar", files, as_tar=True)
    _list(root, "eth3d/eth3d_filename_list.txt", lines)

    # ScanNet (16-bit PNG / 1000), folder.
    files, lines, truths["scannet"] = {}, [], []
    for i in range(frames):
        rgb, depth = scene(64, 48, i)
        mm = np.round(np.clip(depth, 0, 9.5) * 1000).astype(np.uint16)
        files[f"scene0406_02/color/{i:06d}.jpg"] = _jpg(rgb)
        files[f"scene0406_02/depth/{i:06d}.png"] = _png(mm)
        lines.append(f"scene0406_02/color/{i:06d}.jpg scene0406_02/depth/{i:06d}.png")
        truths["scannet"].append(mm / 1000.0)
    _write(root, "scannet/scannet_val_sampled_800_1.tar", files, as_tar=False)
    _list(root, "scannet/scannet_val_sampled_list_800_1.txt", lines)

    # DIODE: depth .npy (H x W x 1) and the validity mask .npy; folder.
    files, lines, truths["diode"] = {}, [], []
    for i in range(frames):
        rgb, depth = scene(64, 48, i)
        mask = diode_mask(depth)
        base = f"indoors/scene_00021/scan_00189/00021_00189_indoors_{i:03d}_010"
        files[f"{base}.png"] = _png(rgb)
        files[f"{base}_depth.npy"] = _npy(depth.astype(np.float32)[..., None])
        files[f"{base}_depth_mask.npy"] = _npy(mask.astype(np.float32))
        lines.append(f"{base}.png {base}_depth.npy {base}_depth_mask.npy")
        truths["diode"].append(depth.astype(np.float32).astype(np.float64))
    _write(root, "diode/diode_val.tar", files, as_tar=False)
    _list(root, "diode/diode_val_all_filename_list.txt", lines)

    truths["hypersim"] = write_hypersim(root, "hypersim/hypersim_processed_val.tar",
                                        "hypersim/filename_list_val_filtered_small_80.txt", 64, 48, frames,
                                        as_tar=True)
    return truths


def write_hypersim(root: Path, archive: str, filelist: str, width: int, height: int, frames: int,
                   as_tar: bool, t_step: float = 1.0) -> list[np.ndarray]:
    """Hypersim as Marigold's preprocessing leaves it (16-bit PNG depth / 1000) with its file list, for the
    evaluation split or the training split; returns the depth of each frame as stored."""
    files, lines, truths = {}, [], []
    for i in range(frames):
        rgb, depth = scene(width, height, t_step * i)
        mm = np.round(np.clip(depth, 0, 60) * 1000).astype(np.uint16)
        files[f"ai_003_010/rgb_cam_00_fr{i:04d}.png"] = _png(rgb)
        files[f"ai_003_010/depth_plane_cam_00_fr{i:04d}.png"] = _png(mm)
        lines.append(f"ai_003_010/rgb_cam_00_fr{i:04d}.png ai_003_010/depth_plane_cam_00_fr{i:04d}.png")
        truths.append(mm / 1000.0)
    _write(root, archive, files, as_tar=as_tar)
    _list(root, filelist, lines)
    return truths
