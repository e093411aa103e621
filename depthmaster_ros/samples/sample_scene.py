"""A procedural camera scene with exact metric depth, for demos and tests (no datasets can be downloaded here).

A pinhole camera over a checkered floor, with a few spheres, a back wall and the sky above it. Frames are
ray-cast in closed form, so every pixel's depth (along the optical axis, meters, REP 118) is known exactly; sky
pixels are +Inf (REP 117: out of range). The camera uses the REP 103 optical convention (x right, y down,
z forward) and can move along a path with time ``t``, for image sequences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PinholeCamera:
    """Ideal pinhole intrinsics (no distortion) of a ``width`` x ``height`` image."""

    width: int = 640
    height: int = 480
    fx: float = 525.0
    fy: float = 525.0
    cx: float = 319.5
    cy: float = 239.5

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the conventional name
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @classmethod
    def with_size(cls, width: int, height: int, horizontal_fov_deg: float = 62.4) -> "PinholeCamera":
        f = 0.5 * width / np.tan(np.radians(horizontal_fov_deg) / 2)
        return cls(width, height, f, f, (width - 1) / 2, (height - 1) / 2)


# Scene in a world frame aligned with the camera's optical frame at t = 0 (y down, z forward), meters.
CAMERA_HEIGHT = 1.2
FLOOR_Y = CAMERA_HEIGHT
WALL_Z = 12.0
WALL_HEIGHT = 3.5
SPHERES = (  # centre (x, y, z), radius, RGB colour
    ((-1.4, FLOOR_Y - 0.6, 4.0), 0.6, (0.85, 0.25, 0.2)),
    ((1.2, FLOOR_Y - 0.9, 6.5), 0.9, (0.2, 0.45, 0.85)),
    ((0.1, FLOOR_Y - 0.4, 3.0), 0.4, (0.95, 0.8, 0.25)),
    ((-2.5, FLOOR_Y - 1.2, 9.0), 1.2, (0.3, 0.75, 0.35)),
)
WALK_SPEED = 0.25  # m/s forward of camera_pose's walk
LIGHT = np.array([-0.4, -1.0, -0.5]) / np.linalg.norm([-0.4, -1.0, -0.5])  # direction towards the light


def camera_pose(t: float) -> tuple[np.ndarray, np.ndarray]:
    """(rotation camera->world, camera position) at time ``t`` seconds: a slow forward walk with a gentle yaw."""
    yaw = 0.12 * np.sin(0.5 * t)
    c, s = np.cos(yaw), np.sin(yaw)
    rotation = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    position = np.array([0.3 * np.sin(0.3 * t), 0.0, WALK_SPEED * t])
    return rotation, position


def pitch_rotation(pitch: float) -> np.ndarray:
    """Rotation (camera -> level camera) of a camera looking down by ``pitch`` radians (about its x axis)."""
    c, s = np.cos(pitch), np.sin(pitch)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def view_pose(t: float = 0.0, pitch: float = 0.0,
              offset: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(rotation camera -> world, camera position) of the camera :func:`render` renders from, with the same
    arguments: X_world = rotation @ X_camera + position."""
    rotation, origin = camera_pose(t)
    rotation = rotation @ pitch_rotation(pitch)
    if offset is not None:
        offset_rotation, offset_position = (np.asarray(v, dtype=np.float64) for v in offset)
        origin = origin + rotation @ offset_position
        rotation = rotation @ offset_rotation
    return rotation, origin


def render(
    camera: PinholeCamera = PinholeCamera(),
    t: float = 0.0,
    pitch: float = 0.0,
    offset: tuple[np.ndarray, np.ndarray] | None = None,
    spheres=SPHERES,
) -> tuple[np.ndarray, np.ndarray]:
    """Render the scene: (``H x W x 3`` uint8 RGB, ``H x W`` float32 depth in meters, +Inf for sky).

    ``pitch``: the camera looks down by this many radians. ``offset`` = (R, c): render from a second camera
    rigidly attached to the first, with ``X_first = R @ X_second + c`` (e.g. a depth sensor beside the colour
    camera). ``spheres``: (centre, radius, RGB) tuples in the world frame.
    """
    rotation, origin = view_pose(t, pitch, offset)
    u, v = np.meshgrid(np.arange(camera.width, dtype=np.float64), np.arange(camera.height, dtype=np.float64))
    # Ray directions with unit z in the camera frame: the ray parameter of a hit is then its optical-axis depth.
    rays_cam = np.stack([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, np.ones_like(u)], axis=-1)
    rays = rays_cam @ rotation.T

    depth = np.full(u.shape, np.inf)
    colour = np.zeros(u.shape + (3,))
    normal = np.zeros(u.shape + (3,))

    def keep(hit_t: np.ndarray, hit_colour: np.ndarray, hit_normal: np.ndarray) -> None:
        closer = (hit_t > 1e-6) & (hit_t < depth)
        depth[closer] = hit_t[closer]
        colour[closer] = np.broadcast_to(hit_colour, colour.shape)[closer]
        normal[closer] = np.broadcast_to(hit_normal, normal.shape)[closer]

    with np.errstate(divide="ignore", invalid="ignore"):
        # Floor (y = FLOOR_Y) with a 1 m checkerboard.
        t_floor = np.where(rays[..., 1] > 0, (FLOOR_Y - origin[1]) / rays[..., 1], np.inf)
        px = origin[0] + t_floor * rays[..., 0]
        pz = origin[2] + t_floor * rays[..., 2]
        checker = (np.floor(np.nan_to_num(px, posinf=0.0)) + np.floor(np.nan_to_num(pz, posinf=0.0))) % 2
        floor_colour = np.where(checker[..., None] > 0, [0.75, 0.72, 0.68], [0.35, 0.33, 0.32])
        keep(t_floor, floor_colour, np.array([0.0, -1.0, 0.0]))
        # Back wall (z = WALL_Z, WALL_HEIGHT tall) with vertical stripes; the sky shows above it.
        t_wall = np.where(rays[..., 2] > 0, (WALL_Z - origin[2]) / rays[..., 2], np.inf)
        wx = origin[0] + t_wall * rays[..., 0]
        wy = origin[1] + t_wall * rays[..., 1]
        t_wall = np.where(wy > FLOOR_Y - WALL_HEIGHT, t_wall, np.inf)
        stripes = (np.floor(np.nan_to_num(wx, posinf=0.0) * 2.0) % 2)[..., None]
        keep(t_wall, np.where(stripes > 0, [0.8, 0.62, 0.5], [0.7, 0.55, 0.45]), np.array([0.0, 0.0, -1.0]))
        # Spheres.
        a = np.einsum("...i,...i->...", rays, rays)
        for centre, radius, rgb in spheres:
            oc = origin - np.asarray(centre)
            b = 2.0 * rays @ oc
            disc = b * b - 4.0 * a * (oc @ oc - radius * radius)
            t_hit = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a), np.inf)
            hit_normal = (origin + t_hit[..., None] * rays - np.asarray(centre)) / radius
            keep(t_hit, np.asarray(rgb), hit_normal)

    hit = np.isfinite(depth)
    shade = 0.35 + 0.65 * np.clip(np.einsum("...i,i->...", normal, LIGHT), 0.0, 1.0)
    fog = np.exp(-np.where(hit, depth, 0.0) / 40.0)[..., None]
    sky = np.stack([0.55 + 0.3 * v / camera.height, 0.7 + 0.2 * v / camera.height, np.full_like(v, 0.95)], axis=-1)
    image = np.where(hit[..., None], colour * shade[..., None] * fog + sky * (1 - fog), sky)
    rgb = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return rgb, depth.astype(np.float32)
