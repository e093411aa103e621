"""A sequence whose predictions drift like DepthMaster's on a moving camera, with exact depth and camera poses, so
temporal consistency has a known answer without real weights.

The sample scene (``sample_scene.py``) is seen by its moving camera (``camera_pose(t)``: a slow forward walk with
a gentle yaw). Each frame's "prediction" is what an affine-invariant model would output on it:

1. the frame's true normalised square-root disparity, exactly the model's training target: the 2 % and 98 %
   quantiles of sqrt(1 / depth) over the frame become 0 and 1, so the same surface gets another value whenever
   the near or far end of the view changes (the normalisation drift of a moving camera);
2. a random affine distortion per frame, ``gain * value + offset`` (the model's own frame-to-frame
   inconsistency), plus Gaussian noise per pixel;
3. clipped to [0, 1] as the model's output is (the sky and anything beyond the quantiles saturate).

The long loop (``loop``) walks the same path out and back to the start (the camera's path time goes from 0 to
``LOOP_REACH`` seconds of ``camera_pose`` in ``LOOP_SECONDS``, 2.5 m, and back along half a cosine each way, so it
slows down to turn and stops where it started, facing the same way; shorter loops go proportionally less far): the scene it returns to is the one it started in, where a stage
whose affine frame drifted over the walk shows its drift as error.

A scene cut (``cut_at``) switches to another view from that frame on: the camera turned to the right and looking
down, at other objects (a view that only looks down differently changes the floor's depth at every pixel; turning
alone would not: the floor at one height and pitch has the same depth at each pixel whichever way the camera
faces, and would carry the alignment through).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .sample_scene import CAMERA_HEIGHT, FLOOR_Y, SPHERES, PinholeCamera, render, view_pose

START_NS = 1_700_000_000 * 1_000_000_000
MAIN_VIEW = {"spheres": SPHERES}
NEAREST = 2  # the sphere 3 m ahead
APPROACH_SPEED = 0.5  # m/s of the approaching object in sample_scenarios
LOOP_SECONDS = 24.0  # the long loop's duration
LOOP_REACH = 10.0  # how far it goes in LOOP_SECONDS: seconds of camera_pose's walk (0.25 m/s: 2.5 m, then back)
CUT_VIEW = {  # the view after a scene cut: the camera turned 90 degrees to the right and down, at other objects
    "pitch": 0.35,
    "offset": (np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]), np.zeros(3)),
    "spheres": (((4.0, FLOOR_Y - 0.5, 1.0), 0.5, (0.9, 0.5, 0.1)),
                ((6.0, FLOOR_Y - 0.8, -1.2), 0.8, (0.5, 0.2, 0.7)),
                ((9.0, FLOOR_Y - 1.0, 2.5), 1.0, (0.2, 0.7, 0.7))),
}


@dataclass(frozen=True)
class Drift:
    """The per-frame distortion of the simulated predictions (standard deviations)."""

    gain: float = 0.05  # of the per-frame gain around 1
    offset: float = 0.02  # of the per-frame offset around 0
    noise: float = 0.005  # of the per-pixel noise


NO_DRIFT = Drift(0.0, 0.0, 0.0)


@dataclass
class SequenceFrame:
    stamp_ns: int
    rgb: np.ndarray  # H x W x 3 uint8
    truth: np.ndarray  # H x W float32 meters, +Inf for sky
    pose: tuple[np.ndarray, np.ndarray]  # (rotation camera -> world, position)
    prediction: np.ndarray  # H x W float32 in [0, 1], 1 = near
    cut: bool = False  # the first frame of another scene
    moving: np.ndarray | None = None  # H x W bool: pixels of the moving object (``approach``), if any


def view_geometry(view: dict) -> dict:
    """The arguments of ``view_pose`` among a view's ``render`` arguments."""
    return {key: view[key] for key in ("pitch", "offset") if key in view}


def loop_reach(duration: float) -> float:
    """How far a loop of ``duration`` seconds goes (seconds of ``camera_pose``'s walk): a shorter loop is the
    same walk at the same speed, only shorter."""
    return LOOP_REACH * duration / LOOP_SECONDS


def loop_path_time(elapsed: float, duration: float) -> float:
    """Where on ``camera_pose``'s path (its time, seconds) the long loop is ``elapsed`` seconds into a loop of
    ``duration`` seconds: out to :func:`loop_reach` and back to 0, smoothly (zero speed at the start, the turn
    and the end)."""
    return 0.5 * loop_reach(duration) * (1.0 - math.cos(2.0 * math.pi * elapsed / duration))


def simulated_prediction(truth: np.ndarray, gain: float = 1.0, offset: float = 0.0,
                         noise: np.ndarray | float = 0.0) -> np.ndarray:
    """An affine-invariant model's output for a frame with depth ``truth`` (module docstring, steps 1-3)."""
    import torch  # here: depthmaster-bench --help reads this module's defaults without loading torch

    from ..train.targets import normalized_sqrt_disparity

    depth = torch.from_numpy(np.asarray(truth, dtype=np.float32))
    valid = torch.isfinite(depth) & (depth > 0)
    normalised = (normalized_sqrt_disparity(depth, valid, clip=False).numpy() + 1.0) / 2.0
    return np.clip(gain * normalised + offset + noise, 0.0, 1.0).astype(np.float32)


def drifting_sequence(pinhole: PinholeCamera, frames: int, rate: float = 10.0, drift: Drift = Drift(),
                      seed: int = 0, start: float = 0.0, cut_at: int | None = None, static: bool = False,
                      stamps_s=None, approach: float = 0.0, loop: float = 0.0) -> list[SequenceFrame]:
    """``frames`` frames stamped at ``rate`` Hz from ``start`` seconds (or at ``stamps_s``, e.g. with gaps), the
    camera where ``camera_pose`` puts it at the stamp (``static``: where it is at ``start``, for every frame);
    from frame ``cut_at`` on, the other view (a scene cut). ``approach``: the nearest sphere moves towards the
    camera (along -z) at this speed, m/s, from the first stamp on; its pixels are each frame's ``moving`` mask.
    ``loop``: the camera walks out and back to where it is at ``start`` in this many seconds (the long loop;
    ``loop * rate + 1`` frames end where they began). Deterministic for a seed."""
    # the per-frame affines from their own stream: the same at every image size
    affine_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    stamps = [start + index / rate for index in range(frames)] if stamps_s is None else list(stamps_s)
    sequence = []
    for index, stamp in enumerate(stamps):
        if static:
            t = start
        else:
            t = start + loop_path_time(stamp - stamps[0], loop) if loop else stamp
        view = CUT_VIEW if cut_at is not None and index >= cut_at else MAIN_VIEW
        moving = None
        if approach:
            (x, y, z), radius, colour = view["spheres"][NEAREST]
            mover = ((x, y, z - approach * (stamp - stamps[0])), radius, colour)
            others = [sphere for number, sphere in enumerate(view["spheres"]) if number != NEAREST]
            view = {**view, "spheres": (*others, mover)}
        rgb, truth = render(pinhole, t=t, **view)
        if approach:
            moving = render(pinhole, t=t, **{**view, "spheres": others})[1] != truth
        gain = 1.0 + drift.gain * affine_rng.standard_normal()
        offset = drift.offset * affine_rng.standard_normal()
        noise = drift.noise * noise_rng.standard_normal(truth.shape)
        sequence.append(SequenceFrame(START_NS + int(round(stamp * 1e9)), rgb, truth,
                                      view_pose(t, **view_geometry(view)),
                                      simulated_prediction(truth, gain, offset, noise), cut=index == cut_at,
                                      moving=moving))
    return sequence


def sample_setups(sequence: list[SequenceFrame], seed: int = 0) -> list:
    """The scale modes the sample scene supports, as evaluation setups: fixed (calibrated on the first frame),
    sparse_depth (the sample bag's 16-beam LiDAR rendered from each frame's truth) and ground_plane (the known
    camera height over the flat floor)."""
    from ..eval.sequence_evaluation import ScaleSetup
    from .sample_bag import lidar_depth_image

    rng = np.random.default_rng(seed)
    lidar = tuple({"sparse_depth": lidar_depth_image(frame.truth, rng)} for frame in sequence)
    return [ScaleSetup("fixed", {"scale_mode": "fixed"}),
            ScaleSetup("sparse_depth", {"scale_mode": "sparse_depth"}, lidar),
            ScaleSetup("ground_plane", {"scale_mode": "ground_plane", "camera_height": CAMERA_HEIGHT})]


def long_loop(pinhole: PinholeCamera, seconds: float = LOOP_SECONDS, rate: float = 10.0, drift: Drift = Drift(),
              seed: int = 0) -> list[SequenceFrame]:
    """The long loop: ``seconds`` out and back to the start at ``rate`` Hz (its last frame is its first view)."""
    return drifting_sequence(pinhole, int(round(seconds * rate)) + 1, rate=rate, drift=drift, seed=seed,
                             loop=seconds)


def sample_scenarios(width: int, height: int, frames: int, drift: Drift = Drift(), seed: int = 0,
                     loop_seconds: float = LOOP_SECONDS) -> dict:
    """The sequences the temporal stage is measured on, each with the scale setups that apply to it: the moving
    camera, the same camera standing still, the still camera with the nearest sphere coming towards it (what
    smoothing must not smear), the moving camera with a scene cut half-way (not ground_plane there: after the
    cut the camera looks down, and ground_plane's camera_pitch is the first view's) and, unless ``loop_seconds``
    is 0, the long loop out and back to the start (its own length: ``loop_seconds`` at 10 Hz, what drift shows
    on)."""
    pinhole = PinholeCamera.with_size(width, height)
    scenarios = {"moving camera": drifting_sequence(pinhole, frames, drift=drift, seed=seed),
                 "static camera": drifting_sequence(pinhole, frames, drift=drift, seed=seed, start=1.0, static=True),
                 "approaching object": drifting_sequence(pinhole, frames, drift=drift, seed=seed, start=1.0,
                                                         static=True, approach=APPROACH_SPEED),
                 "scene cut": drifting_sequence(pinhole, frames, drift=drift, seed=seed, cut_at=frames // 2)}
    if loop_seconds > 0:
        scenarios["long loop"] = long_loop(pinhole, loop_seconds, drift=drift, seed=seed)
    return {name: (sequence, [setup for setup in sample_setups(sequence, seed)
                              if not (name == "scene cut" and setup.name == "ground_plane")])
            for name, sequence in scenarios.items()}
