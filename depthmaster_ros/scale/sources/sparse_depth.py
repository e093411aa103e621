"""scale_mode sparse_depth: a metric depth image (a depth camera, a LiDAR rendered into an image), registered to
the colour image or reprojected into it with its own intrinsics and an extrinsic."""

from __future__ import annotations

import numpy as np

from ...geometry.projection import IDENTITY_EXTRINSIC, depth_image_points, transform_points
from ...parameter_spec import EXTRINSIC_NOTE, ParameterSpec, extrinsic_rule
from ..source import MeasurementInput, ScaleSource
from .pointcloud import pairs_from_points


def pairs_from_sparse_depth(relative: np.ndarray, camera, sparse_depth: np.ndarray, sparse_camera,
                            extrinsic=IDENTITY_EXTRINSIC):
    """(p, d) pairs from a metric depth image (meters; 0, NaN, Inf invalid). Pixel to pixel when it is registered
    to the colour image (same size, same K or no camera info, identity extrinsic); otherwise back-projected with
    its own intrinsics, moved by ``extrinsic`` (sparse optical frame -> colour optical frame) and projected."""
    sparse_depth = np.asarray(sparse_depth, dtype=np.float64)
    registered = (sparse_depth.shape == (camera.height, camera.width)
                  and tuple(float(v) for v in extrinsic) == IDENTITY_EXTRINSIC
                  and (sparse_camera is None or np.allclose(sparse_camera.K, camera.K)))
    if registered:
        with np.errstate(invalid="ignore"):
            valid = np.isfinite(sparse_depth) & (sparse_depth > 0)
        return np.asarray(relative, dtype=np.float64)[valid], sparse_depth[valid]
    if sparse_camera is None:
        raise ValueError(f"the sparse depth image ({sparse_depth.shape[1]}x{sparse_depth.shape[0]}) is not "
                         "registered to the colour image and has no camera info to reproject it with")
    if sparse_depth.shape != (sparse_camera.height, sparse_camera.width):
        raise ValueError(f"sparse depth is {sparse_depth.shape[1]}x{sparse_depth.shape[0]} but its camera info is "
                         f"{sparse_camera.width}x{sparse_camera.height}")
    points = transform_points(depth_image_points(sparse_depth, sparse_camera.K), extrinsic)
    return pairs_from_points(relative, camera, points)


class SparseDepth(ScaleSource):
    name = "sparse_depth"
    description = "sparse_depth (a depth image topic)"
    parameters = (
        ParameterSpec("sparse_depth_to_camera", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], "sparse_depth mode: "
                      "[x, y, z, qx, qy, qz, qw] from the sparse depth optical frame to the camera optical frame "
                      "(identity: already registered to the colour image). Where TF is used (extrinsics_source), "
                      "the fallback.", per_camera=True, rule=extrinsic_rule,
                      note=EXTRINSIC_NOTE),
    )
    inputs = (
        MeasurementInput("sparse_depth", "depth_image", "sparse depth image", published_with_image=True,
                         extrinsic="sparse_depth_to_camera"),
        MeasurementInput("sparse_depth/camera_info", "camera_info", "sparse_depth/camera_info", optional=True,
                         at_stamp_of="sparse_depth", option="--sparse-info-topic"),
    )

    def pairs(self, relative, camera, measurements, config):
        return pairs_from_sparse_depth(relative, camera, measurements["sparse_depth"],
                                       measurements.get("sparse_depth/camera_info"), config.sparse_depth_to_camera)
