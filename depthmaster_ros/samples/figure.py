"""The README's picture: one frame of the sample scene through the frame engine, as the node processes it, in three
panels: the camera image, the metric ``depth`` (coloured, in meters) and a view of the organised ``points`` cloud
from another viewpoint.

The relative map that enters the engine is, by default, the frame's exact normalised square-root disparity
(``drifting_sequence.simulated_prediction`` without drift: the model's training target, what a perfect
affine-invariant model would predict). It is not a DepthMaster prediction, and the figure says so. Everything after
it is the node's processing path: the temporal and scale stages (``scale_mode: sparse_depth`` with the sample
bag's simulated 16-beam LiDAR, fitted as on a robot), metric depth with REP 117 codes and the point cloud. With a
model backend instead (``backend``), its prediction enters the engine; a checkpoint with random weights is said to
be one in the figure's title.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .sample_scene import PinholeCamera, render

STAMP_NS = 1_700_000_000 * 1_000_000_000
# The viewpoint of the cloud panel, in the source camera's optical frame (x right, y down, z forward), meters:
# above, to the left of and behind the camera, looking at the middle of the scene.
VIEW_EYE = np.array([-5.0, -4.0, -1.5])
VIEW_TARGET = np.array([0.0, 0.6, 6.0])
VIEW_FOV_DEG = 58.0
BACKGROUND = (28, 30, 34)
EXACT_SOURCE = ("relative depth: the scene's exact normalised sqrt disparity (a perfect model's output, "
                "not a DepthMaster prediction)")


@dataclass
class Figure:
    """What the figure shows: the panels as images (uint8 RGB, each ``height x width``), their titles, and the
    facts the title states."""

    panels: list[np.ndarray]
    titles: list[str]
    title: str
    truth: np.ndarray  # the scene's exact depth, meters (+Inf for sky)
    depth: np.ndarray | None  # the engine's metric depth, or None (``missing`` says why)
    points: np.ndarray | None
    abs_rel: float  # of ``depth`` against ``truth`` where both are finite; NaN without depth
    missing: str  # why depth or points are absent; '' when both are there


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation (view camera -> frame) of an optical-frame camera at ``eye`` looking at ``target``, upright
    (its y axis, down in the image, along the frame's +y as far as it can)."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross([0.0, 1.0, 0.0], forward)
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(forward, right), forward], axis=1)


def project_view(xyz: np.ndarray, width: int, height: int, eye=VIEW_EYE, target=VIEW_TARGET,
                 fov_deg: float = VIEW_FOV_DEG) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel coordinates (u, v) and view depth z of ``N x 3`` points seen by the view camera of :func:`look_at`
    with a horizontal field of view ``fov_deg``."""
    rotation = look_at(np.asarray(eye, float), np.asarray(target, float))
    view = (np.asarray(xyz, np.float64) - eye) @ rotation
    focal = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = focal * view[:, 0] / view[:, 2] + (width - 1) / 2
        v = focal * view[:, 1] / view[:, 2] + (height - 1) / 2
    return u, v, view[:, 2]


def render_cloud(points: np.ndarray, width: int, height: int, splat: int = 2) -> np.ndarray:
    """An ``height x width`` RGB view of an organised xyz+rgb cloud from the figure's viewpoint: each point a
    ``splat`` x ``splat`` square in its own colour, the nearest point winning each pixel (a z-buffer)."""
    from ..geometry.pointcloud import unpack_rgb

    flat = points.reshape(-1)
    xyz = np.stack([flat["x"], flat["y"], flat["z"]], axis=1).astype(np.float64)
    colours = unpack_rgb(flat["rgb"])
    keep = np.isfinite(xyz).all(axis=1)
    xyz, colours = xyz[keep], colours[keep]
    u, v, z = project_view(xyz, width, height)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND
    left, top = (np.floor(c - (splat - 1) / 2 + 0.5).astype(np.int64) for c in (u, v))  # pixel centres at integers
    columns, rows, depths, indices = [], [], [], []
    for du in range(splat):
        for dv in range(splat):
            columns.append(left + du)
            rows.append(top + dv)
            depths.append(z)
            indices.append(np.arange(len(z)))
    columns, rows, depths, indices = (np.concatenate(a) for a in (columns, rows, depths, indices))
    inside = (depths > 0.05) & (columns >= 0) & (columns < width) & (rows >= 0) & (rows < height)
    pixel = rows[inside] * width + columns[inside]
    depths, indices = depths[inside], indices[inside]
    order = np.lexsort((depths, pixel))  # by pixel, nearest first
    first = np.unique(pixel[order], return_index=True)[1]
    nearest = order[first]
    image.reshape(-1, 3)[pixel[nearest]] = colours[indices[nearest]]
    return image


def camera_outline(camera: PinholeCamera, width: int, height: int, reach: float = 1.0) -> list[np.ndarray]:
    """The source camera as lines in the cloud view: from its centre to the image corners at ``reach`` meters,
    and the far rectangle; each line a ``2 x 2`` array of (u, v)."""
    corners = [(0, 0), (camera.width - 1, 0), (camera.width - 1, camera.height - 1), (0, camera.height - 1)]
    far = np.array([[(x - camera.cx) / camera.fx * reach, (y - camera.cy) / camera.fy * reach, reach]
                    for x, y in corners])
    u, v, _ = project_view(np.vstack([np.zeros(3), far]), width, height)
    pixels = np.stack([u, v], axis=1)
    return [pixels[[0, i]] for i in range(1, 5)] + [pixels[[i, i % 4 + 1]] for i in range(1, 5)]


def figure_frame(width: int = 640, height: int = 480, backend=None, t: float = 0.0) -> Figure:
    """The sample scene's frame at time ``t`` through the frame engine (module docstring); with ``backend``, that
    model's prediction instead of the exact relative depth."""
    import torch

    from ..colormap import colorize
    from ..engine import FrameEngine, FrameJob
    from ..processing_config import ProcessingConfig
    from ..geometry.intrinsics import CameraIntrinsics
    from .drifting_sequence import simulated_prediction
    from .sample_bag import lidar_depth_image

    pinhole = PinholeCamera.with_size(width, height)
    rgb, truth = render(pinhole, t=t)
    camera = CameraIntrinsics.from_K(width, height, pinhole.K)
    lidar = lidar_depth_image(truth, np.random.default_rng(0))
    config = ProcessingConfig(scale_mode="sparse_depth")
    job = FrameJob("figure", STAMP_NS, rgb, config, camera=camera, measurements={"sparse_depth": lidar})
    if backend is None:
        products = FrameEngine(None).finish(job, torch.from_numpy(simulated_prediction(truth)))
        source = EXACT_SOURCE
    else:
        products = FrameEngine(backend).run([job])[0]
        source = f"relative depth: the model's prediction, {backend.describe()}"
        if backend.random_weights:
            source = "RANDOM WEIGHTS: a smoke test, the depth means nothing. " + source
    if products.failed is not None:
        raise RuntimeError(f"the engine failed on the sample frame: {products.failed}")
    missing = products.metric_missing()
    depth, points = products.depth, products.points
    abs_rel = float("nan")
    if depth is not None:
        both = np.isfinite(depth) & np.isfinite(truth)
        abs_rel = float(np.mean(np.abs(depth[both] - truth[both]) / truth[both])) if both.any() else abs_rel
    scale = products.scale
    fit = (f"scale from the simulated 16-beam LiDAR (sparse_depth): s {scale.scale:.3f}, t {scale.shift:.3f}, "
           f"{scale.inlier_ratio:.0%} inliers; depth AbsRel {abs_rel:.2%} against the scene's truth"
           if scale is not None and depth is not None else f"no metric depth: {missing}")
    panels = [rgb]
    titles = ["camera image (input)"]
    if depth is not None:
        far = float(np.nanmax(np.where(np.isfinite(depth), depth, np.nan)))
        panels.append(colorize(np.where(np.isfinite(depth), depth, np.nan), "turbo_r", 0.0, far))
        titles.append(f"depth: meters, 0 (red) to {far:.1f} (blue); black: none (NaN, +Inf)")
    else:
        panels.append(products.colored)
        titles.append("depth/colored (relative: no metric depth)")
    if points is not None:
        panels.append(render_cloud(points, width, height))
        titles.append(f"points: the organised cloud ({points.shape[1]}x{points.shape[0]}) from above and behind")
    else:
        blank = np.empty((height, width, 3), np.uint8)
        blank[:] = BACKGROUND
        panels.append(blank)
        titles.append("points: none (no metric depth)")
    title = (f"depthmaster_ros on the sample scene ({width}x{height}), through the frame engine\n"
             f"{source}\n{fit}")
    return Figure(panels, titles, title, truth, depth, points, abs_rel, str(missing) if missing else "")


def save_figure(figure: Figure, out: str | Path, dpi: int = 100) -> Path:
    """The panels side by side with their titles and the figure's title, as a PNG; the source camera drawn in
    the cloud view. The size follows the panels: 3 panel widths by 1.2 panel heights (pixels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as PlotFigure

    height, width = figure.panels[0].shape[:2]
    dots = dpi * width / 640  # text sized for 640-pixel panels, whatever the panel size
    pixels = (3 * width, round(1.2 * height))
    plot = PlotFigure(figsize=tuple((n + 0.01) / dots for n in pixels), dpi=dots, facecolor="white")  # whole pixels
    FigureCanvasAgg(plot)
    plot.suptitle(figure.title, fontsize=10, y=0.985, va="top")
    for index, (panel, title) in enumerate(zip(figure.panels, figure.titles)):
        axes = plot.add_axes((index / 3 + 0.004, 0.005, 1 / 3 - 0.008, 0.83))
        axes.imshow(panel, interpolation="nearest")
        axes.set_title(title, fontsize=9)
        axes.set_axis_off()
        if index == 2 and figure.points is not None:
            pinhole = PinholeCamera.with_size(width, height)
            for line in camera_outline(pinhole, width, height):
                axes.plot(line[:, 0], line[:, 1], color="white", linewidth=0.8)
            axes.set_xlim(-0.5, width - 0.5)
            axes.set_ylim(height - 0.5, -0.5)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot.savefig(out, dpi=dots, facecolor="white")
    return out
