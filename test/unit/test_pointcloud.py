"""Cloud math against a per-pixel loop written the way depth_image_proc's convertDepth is."""

import numpy as np
import pytest

from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
from depthmaster_ros.geometry.pointcloud import depth_to_points, pack_rgb, unpack_rgb


def reference(depth, camera, stride):
    rows = []
    for v in range(0, camera.height, stride):
        row = []
        for u in range(0, camera.width, stride):
            z = depth[v, u]
            if not np.isfinite(z):
                row.append((np.nan, np.nan, np.nan))
            else:
                row.append(((u - camera.cx) * z / camera.fx, (v - camera.cy) * z / camera.fy, z))
        rows.append(row)
    return np.array(rows)


@pytest.mark.parametrize("stride", [1, 3])
def test_matches_depth_image_proc_loop(stride, rng):
    K = np.array([[40.0, 0, 15.5], [0, 42.0, 11.0], [0, 0, 1]])
    P = np.array([[41.0, 0, 16.0, 0], [0, 43.0, 10.5, 0], [0, 0, 1, 0]])
    camera = CameraIntrinsics(31, 23, K, P)
    depth = rng.uniform(0.5, 9.0, (23, 31)).astype(np.float32)
    depth[3, 4], depth[0, 0], depth[6, 9] = np.nan, np.inf, -np.inf
    rgb = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    cloud = depth_to_points(depth, camera, stride, rgb)
    expected = reference(depth, camera, stride)
    assert cloud.shape == expected.shape[:2] == (-(-23 // stride), -(-31 // stride))
    got = np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=-1)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], rtol=1e-6, atol=1e-6)
    assert np.array_equal(unpack_rgb(cloud["rgb"]), rgb[::stride, ::stride])
    assert cloud.dtype.itemsize == 16 and depth_to_points(depth, camera, stride).dtype.itemsize == 12


def test_the_cpu_path_gives_the_tensor_paths_bytes(rng):
    """On the CPU the cloud is computed straight into its fields with numpy; it must be the bytes the tensor path
    (the one a GPU runs: project_depth, then the fields filled, pack_rgb) gives, for any intrinsics, strides and
    non-finite depths."""
    import torch

    from depthmaster_ros.geometry.pointcloud import XYZ_DTYPE, XYZRGB_DTYPE, project_depth

    for _ in range(40):
        width, height = (int(n) for n in rng.integers(5, 90, 2))
        fx, fy = rng.uniform(20, 900, 2)
        P = np.array([[fx, 0, rng.uniform(0, width), 0], [0, fy, rng.uniform(0, height), 0], [0, 0, 1, 0]])
        camera = CameraIntrinsics(width, height, P[:, :3], P)
        depth = rng.uniform(0.1, 100.0, (height, width)).astype(np.float32)
        noise = rng.random((height, width))
        depth[noise < 0.05], depth[noise > 0.95], depth[(noise > 0.5) & (noise < 0.52)] = np.inf, np.nan, -np.inf
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        for stride in (1, 2, 3):
            xyz = project_depth(torch.from_numpy(depth), camera, stride).numpy()
            for colour in (None, rgb):
                expected = np.empty(xyz.shape[:2], XYZ_DTYPE if colour is None else XYZRGB_DTYPE)
                fields = expected.view(np.float32).reshape(*xyz.shape[:2], -1)
                fields[..., :3] = xyz
                if colour is not None:
                    fields[..., 3] = pack_rgb(colour[::stride, ::stride])
                for given in (depth, torch.from_numpy(depth)):
                    assert depth_to_points(given, camera, stride, colour).tobytes() == expected.tobytes()


def test_packed_rgb_bits():
    packed = pack_rgb(np.array([[255, 128, 1]], np.uint8))
    assert packed.view(np.uint32)[0] == 0x00FF8001


def test_size_mismatch():
    camera = CameraIntrinsics.from_K(10, 8, np.diag([5.0, 5, 1]))
    with pytest.raises(ValueError, match="depth image is 9x8 but the camera info is 10x8"):
        depth_to_points(np.ones((8, 9), np.float32), camera)
