"""The temporal stage: relative maps that do not flicker from frame to frame on a moving camera, and do not drift.

DepthMaster's output ``p`` is normalised per frame (its 2 % and 98 % quantiles of square-root disparity become 0
and 1), so ``p`` is an affine function of the true square-root disparity whose gain and offset change with every
frame's content. This stage keeps each stream in one affine frame, the frame of its reference (the stream's
first frame, or the last reset):

1. **align**: fit ``previous stabilised ~ a * p + b`` robustly (``scale/robust_line.py``, absolute residual) on a
   small grid (long side ``GRID`` cells, area-averaged; cells where the model clipped p at 0 or 1 are left out).
   The pixels that agree carry the fit; where the camera's motion changed a pixel's depth, or something moved, the
   pixel is an outlier. The stabilised map is ``a * p + b`` at full resolution, except where the model clipped p:
   a clipped pixel only bounds its value (at least as near as the clip at 1, as far at 0), and keeps the previous
   stabilised value where that satisfies the bound.
2. **key frames** (bounded drift): a chain of frame-to-frame alignments drifts. Between consecutive frames the
   camera's motion changes every depth a little, within the inlier threshold, so each fit takes a little of the
   real change for normalisation, and that adds up along a walk (and does not undo itself on the way back). So
   the stage keeps key frames (their stabilised maps on a coarser grid, long side ``KEY_GRID``): the first frame
   (the reference), then every frame that no kept key frame agrees with. Each frame is aligned to the key frame
   that resembles it most (the best affine least-squares match of ``THUMBNAIL``-cell thumbnails); when at least
   ``temporal_key_frame_agreement`` of the image agrees with that key frame, the frame's alignment moves from the
   frame-to-frame one towards the key frame's by ``1 - exp(-dt / temporal_key_frame_time_constant)`` (a
   complementary filter: the chain is the smoother from frame to frame, the key frame the one that does not
   drift). The key frame's alignment spans a larger motion, whose depth changes stand out as outliers instead of
   being absorbed, and a camera that comes back to a place it has seen is aligned to the place as it was, not to
   the chain that led there. ``temporal_key_frames`` bounds how many are kept (the least
   recently used goes first; never the reference, the frame a fixed calibration applies to).
3. **smooth** (``align_smooth``): where the aligned map agrees with the previous stabilised one, blend them: the
   previous one weighs ``exp(-dt / temporal_time_constant)`` (``dt`` the stamp difference: a gap, dropped frames,
   weakens the blend by itself), tapered to nothing as their difference grows to ``temporal_inlier_threshold``;
   where they differ more (motion, edges) the aligned map is kept as is, so moving content does not smear.
4. **reset**: the frame becomes the new reference, unchanged, on the stream's first frame, when the fit is poor
   (fewer than ``temporal_reset_threshold`` of the cells agree with the previous frame: a scene cut, a fast
   change), when the stamp jumped by more than ``temporal_max_gap`` or went back, when the image size changed, and
   when a scale set without a fit (the fixed mode's: a source whose ``known_scale`` gives one) changed (a new
   calibration applies to the frame it is made on). The key frames start over with it. A reset after aligned
   frames tells the scale stage not to smooth the metric scale across it (``FrameState.rebased``).

In ``fixed`` mode the reference frame's affine frame is the one the calibration applies to, and the alignment
carries it along a moving camera; in the fitted modes the scale is fitted on the stabilised map. What the stage
did with each frame is its :class:`TemporalReport` (``/diagnostics``, ``depth/scale``), with the drift state: the
key frame it aligned to, how much that corrected the frame-to-frame chain, how many are kept. Its state (the
reference grid, the previous stabilised map, the key frames, the stamp, the counters) saves and restores exactly
(float32 bytes in base64).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np

from ..parameter_spec import ParameterSpec
from ..scale.robust_fit import P_SATURATED
from ..scale.robust_line import robust_line
from ..scale.source import get_source
from .stage import Stage, StageReport

OFF, ALIGN, ALIGN_SMOOTH = "off", "align", "align_smooth"
MODES = (OFF, ALIGN, ALIGN_SMOOTH)
GRID = 128  # long side of the alignment grid, cells
MIN_CELLS = 64  # fewer usable cells in common: no alignment
MIN_SPREAD = 0.05  # the usable cells' p must span this much (5th-95th percentile) to fix a gain
# RANSAC needs fewer tries than the scale fit's: a frame that can be aligned agrees over most of the image (with
# half the cells outliers, 64 tries all miss with probability 0.75^64 = 1e-8), and IRLS refines on every cell.
RANSAC_ITERATIONS = 64
RANSAC_SAMPLE = 1000
KEY_GRID = 64  # long side of a key frame's grid, cells (a quarter of GRID's cells: key frames are kept by dozens)
THUMBNAIL = 16  # long side of the thumbnails that choose the key frame to align to
# Its fields in depth/scale, after the fit's (messages/conversions.py SCALE_LAYOUT), while the stage runs.
TEMPORAL_LAYOUT = ("temporal_inlier_ratio", "temporal_residual_rms", "temporal_reset", "temporal_key_frames",
                   "temporal_key_frame_age", "temporal_drift")


@dataclass(frozen=True)
class TemporalReport(StageReport):
    """What the temporal stage did with one frame."""

    mode: str
    status: str  # "anchored" (the new reference: first frame or a reset) or "aligned"
    detail: str  # one line: how it aligned, or why it reset
    inlier_ratio: float = math.nan  # of the grid cells that agree with the previous stabilised map
    residual_rms: float = math.nan  # RMS of the agreeing cells' residual (units of p)
    gain: float = 1.0  # stabilised = gain * p + offset (before smoothing)
    offset: float = 0.0
    gap_s: float = math.nan  # stamp difference to the previous frame
    resets: int = 0  # resets of this stream after its first frame
    frames: int = 0  # frames aligned since the reference was set (0: this frame is the reference)
    key_frames: int = 0  # key frames kept after this frame
    key_frame_age_s: float = math.nan  # age of the key frame this frame was aligned to (NaN: none agreed)
    key_frame_agreement: float = math.nan  # the fraction of the image that agrees with that key frame
    drift: float = math.nan  # how far the frame-to-frame alignment had drifted from that key frame's (RMS, in p)
    last_reset: str = ""  # why the stream's reference was last set after its first frame ('' before any reset)

    @property
    def reset(self) -> bool:
        return self.status == "anchored"

    def scale_fields(self) -> tuple[tuple[str, float], ...]:
        """The alignment's inlier ratio and residual RMS (NaN where the frame was not aligned), 1.0 if the frame
        reset the stage's reference else 0.0; the drift state: the key frames kept, the age (s) of the key frame
        the frame was aligned to and how far the frame-to-frame alignment had drifted from it (NaN where no key
        frame agreed)."""
        return tuple(zip(TEMPORAL_LAYOUT, (self.inlier_ratio, self.residual_rms, 1.0 if self.reset else 0.0,
                                           float(self.key_frames), self.key_frame_age_s, self.drift)))


def _encode(array: np.ndarray | None) -> dict | None:
    if array is None:
        return None
    array = np.ascontiguousarray(array, dtype=np.float32)
    return {"shape": list(array.shape), "float32": base64.b64encode(array.tobytes()).decode("ascii")}


def _decode(value: dict | None) -> np.ndarray | None:
    if value is None:
        return None
    return np.frombuffer(base64.b64decode(value["float32"]), np.float32).reshape(value["shape"]).copy()


def full_size(relative):
    """The relative map for the full-size work (float32), and the array library to do it with: a numpy view of a
    map on the CPU (numpy's element-wise operations run on the calling thread, where torch's thread pool stalled
    for up to 10 ms per operation on a CPU busy with other work, and this stage does about twenty), the tensor of
    a map on a GPU."""
    import torch  # here, not at the top: the parameter table (every CLI's --help) imports this module

    if isinstance(relative, torch.Tensor) and relative.device.type != "cpu":
        return relative.float(), torch
    if isinstance(relative, torch.Tensor):
        relative = relative.float().numpy()
    return np.asarray(relative, dtype=np.float32), np


def area_grid(values, size: tuple[int, int]) -> np.ndarray:
    """An H x W map (numpy or a tensor) area-averaged to ``size`` (height, width), as float32 numpy."""
    from .render import resize_map, resize_to

    if isinstance(values, np.ndarray):
        return resize_to(values.astype(np.float32, copy=False), size)
    return resize_map(values.float(), size).cpu().numpy()


def grid_size(height: int, width: int) -> tuple[int, int]:
    """The alignment grid's (height, width): long side ``GRID`` cells, or the map's own size if smaller."""
    factor = min(1.0, GRID / max(height, width))
    return max(1, round(height * factor)), max(1, round(width * factor))


def coarse(grid: np.ndarray, long_side: int) -> np.ndarray:
    """A grid (NaN where unusable) area-averaged to at most ``long_side`` cells on its long side; a coarse cell
    that covers an unusable one is unusable."""
    height, width = grid.shape
    factor = min(1.0, long_side / max(height, width))
    size = max(1, round(height * factor)), max(1, round(width * factor))
    return area_grid(grid, size)


@dataclass
class KeyFrame:
    """A key frame: its stabilised map on the key grid and as a thumbnail (NaN where the model clipped), when it
    was laid and when a frame was last aligned to it."""

    grid: np.ndarray
    thumbnail: np.ndarray
    stamp_ns: int
    used_ns: int

    @classmethod
    def of(cls, grid: np.ndarray, stamp_ns: int) -> "KeyFrame":
        key_grid = coarse(grid, KEY_GRID)
        return cls(key_grid, coarse(key_grid, THUMBNAIL), stamp_ns, stamp_ns)

    def state(self) -> dict:
        return {"grid": _encode(self.grid), "stamp_ns": self.stamp_ns, "used_ns": self.used_ns}

    @classmethod
    def restored(cls, state: dict) -> "KeyFrame":
        grid = _decode(state["grid"])
        return cls(grid, coarse(grid, THUMBNAIL), state["stamp_ns"], state["used_ns"])


def thumbnail_misfit(thumbnail: np.ndarray, key: np.ndarray) -> float:
    """How badly the best affine map of a frame's thumbnail matches a key frame's (RMS residual of the
    least-squares line over the cells usable in both, over the key's spread): small where they show the same
    view in other normalisations. Infinite where they have too little in common or the line would not be
    increasing."""
    both = np.isfinite(thumbnail) & np.isfinite(key)
    if both.sum() < 8:
        return math.inf
    x, y = thumbnail[both].astype(np.float64), key[both].astype(np.float64)
    spread = float(np.std(y))
    dx = x - x.mean()
    denominator = float(dx @ dx)
    if spread < 1e-6 or denominator < 1e-12:
        return math.inf
    slope = float(dx @ (y - y.mean())) / denominator
    if slope <= 0:
        return math.inf
    residual = y - y.mean() - slope * dx
    return float(np.sqrt(np.mean(residual ** 2))) / spread


def _or_dash(value: float, form: str) -> str:
    return form.format(value) if math.isfinite(value) else "-"


def _like(values, example):
    """``values`` (numpy or a tensor) as the same kind of array as ``example`` (on its device)."""
    import torch

    if isinstance(example, np.ndarray):
        return values.cpu().numpy() if isinstance(values, torch.Tensor) else values
    return torch.as_tensor(values, device=example.device)


def hold_clipped(xp, aligned, previous, low, high):
    """Where the model clipped p at 1 (``high``), it only says "at least as near as the clip" (``aligned`` there
    is a lower bound); at 0 (``low``), "at least as far". The previous stabilised value is kept where it satisfies
    that bound (the information the clip removed), the bound where it does not (the pixel shows something else)."""
    held = xp.where(low, xp.minimum(previous, aligned), aligned)
    return xp.where(high, xp.maximum(previous, aligned), held)


def blend(xp, aligned, previous, gap: float, config):
    """Blend with the previous stabilised map where the two agree: the previous one weighs
    ``exp(-gap / temporal_time_constant)``, tapered by Tukey's biweight of their difference (full weight where they
    are equal, none from ``temporal_inlier_threshold`` on; continuous, so a tiny change of the input never flips a
    pixel between blended and not). A pixel moves from its own value by at most max x (1 - x^2)^2 = 0.29 times
    the threshold, whatever the previous map held: the blend can lag, but not by more."""
    tau = config.temporal_time_constant
    weight = 0.0 if tau <= 0 else math.exp(-max(gap, 0.0) / tau)
    difference = previous - aligned
    u = xp.clip(difference / config.temporal_inlier_threshold, -1.0, 1.0)
    return aligned + weight * (1.0 - u * u) ** 2 * difference


def align_grids(grid: np.ndarray, target: np.ndarray, config, which: str = "the two maps"):
    """The robust alignment ``target ~ gain * grid + offset`` over the cells usable (not NaN) in both:
    ((gain, offset), the fraction of those cells within ``temporal_inlier_threshold``, their residual RMS, '') or
    (None, NaN, NaN, why not)."""
    both = np.isfinite(grid) & np.isfinite(target)
    cells = int(both.sum())
    if cells < MIN_CELLS:
        return None, math.nan, math.nan, f"only {cells} cells of the image are unclipped in both {which} " \
                                         f"(need {MIN_CELLS})"
    x = grid[both].astype(np.float64)
    spread = float(np.percentile(x, 95) - np.percentile(x, 5))
    if spread < MIN_SPREAD:
        return None, math.nan, math.nan, f"the map spans too little (p spread {spread:.3f} < {MIN_SPREAD}) to " \
                                         "align a gain"
    outcome = robust_line(x, target[both].astype(np.float64), config.temporal_inlier_threshold, MIN_SPREAD,
                          relative=False, ransac_iterations=RANSAC_ITERATIONS, ransac_sample=RANSAC_SAMPLE)
    if outcome.line is None:
        return None, math.nan, math.nan, f"no alignment: {outcome.reason}"
    residuals = outcome.line.residuals
    inliers = residuals < config.temporal_inlier_threshold
    rms = float(np.sqrt(np.mean(residuals[inliers] ** 2))) if inliers.any() else math.inf
    return (outcome.line.slope, outcome.line.intercept), float(inliers.mean()), rms, ""


class TemporalStage(Stage):
    name = "temporal"
    title = "Temporal stabilisation (live; every scale mode)"
    parameters = (
        ParameterSpec("temporal_mode", ALIGN_SMOOTH, "Frame-to-frame stabilisation of the relative map, and so of "
                      "depth and points, on a moving camera: off (each frame as the model normalised it: it "
                      "flickers), align (each frame aligned to the previous stabilised one by a robust affine fit: "
                      "no blending, no lag; with fixed, the calibration follows a moving camera) or align_smooth "
                      "(align, then blend with the previous frame where the two agree: less pixel noise; a pixel "
                      "stays within 0.29 temporal_inlier_threshold of its own frame's value; the lowest flicker and "
                      "AbsRel in the measurements of docs/temporal.md, hence the default).", choices=MODES),
        ParameterSpec("temporal_time_constant", 0.3, "align_smooth: seconds of the blend with the previous frame "
                      "(its weight is exp(-dt / this) for frames dt seconds apart, so dropped frames weaken it; "
                      "0 = no blend).", min_value=0.0, max_value=10.0),
        ParameterSpec("temporal_reset_threshold", 0.5, "When fewer than this fraction of the image agrees with the "
                      "previous frame after the alignment (a scene cut, a fast change), the frame becomes the new "
                      "reference (a reset).", min_value=0.0, max_value=1.0),
        ParameterSpec("temporal_inlier_threshold", 0.03, "Difference of the aligned map from the previous "
                      "stabilised one (units of p) under which a pixel agrees.", min_value=0.001, max_value=0.5),
        ParameterSpec("temporal_key_frames", 32, "Key frames kept per camera to bound the drift of the frame-to-frame "
                      "alignment: each frame is aligned to the key frame that resembles it most when enough of the "
                      "image agrees (temporal_key_frame_agreement), and becomes a key frame itself when none does; "
                      "a camera that comes back to a view it has seen gets that view's depth back. The least "
                      "recently used goes first (never the reference frame). 0 = align to the previous frame only "
                      "(drifts along a walk).", min_value=0, max_value=256),
        ParameterSpec("temporal_key_frame_agreement", 0.8, "The fraction of the image that must agree with a key "
                      "frame (after the alignment) for a frame to be aligned to it; lower: fewer key frames, less "
                      "drift, a little more flicker (docs/temporal.md).", min_value=0.0, max_value=1.0),
        ParameterSpec("temporal_key_frame_time_constant", 0.3, "Seconds over which a frame's alignment moves from "
                      "the frame-to-frame one to its key frame's (the key frame's weight is 1 - exp(-dt / this)): "
                      "the frame-to-frame alignment is the smoother from one frame to the next, the key frame's the "
                      "one that does not drift; 0 = the key frame's at once (less error, more flicker).",
                      min_value=0.0, max_value=60.0),
        ParameterSpec("temporal_max_gap", 1.0, "Seconds between frames beyond which the next frame resets instead "
                      "of aligning (the view may have changed completely).", min_value=0.0, max_value=3600.0),
    )

    def __init__(self):
        self._clear()
        self.resets = 0
        self.last_reset = ""

    @classmethod
    def diagnostics(cls, config, report: TemporalReport | None) -> dict:
        """temporal_mode, and from the camera's last frame: what the stage did, how well it aligned, the frames
        since the reference was set, the resets and why the last one happened, and its drift state (the key frames
        kept, the age of the one the frame was aligned to, the drift it corrected; '-' where none agreed)."""
        values = {"temporal_mode": config.temporal_mode}
        if report is not None:
            values.update(temporal_state=report.detail, temporal_inlier_ratio=report.inlier_ratio,
                          temporal_frames_since_reset=report.frames, temporal_resets=report.resets,
                          temporal_key_frames=report.key_frames,
                          temporal_key_frame_age_s=_or_dash(report.key_frame_age_s, "{:.1f}"),
                          temporal_drift=_or_dash(report.drift, "{:.4f}"),
                          temporal_last_reset=report.last_reset or "-")
        return values

    def _clear(self) -> None:
        self.reference: np.ndarray | None = None  # the last stabilised map on the grid, NaN where unusable
        self.previous: torch.Tensor | None = None  # the last stabilised map, full size
        self.stamp_ns: int | None = None
        self.signature: list | None = None
        self.frames = 0  # aligned since the reference was set
        self.keys: list[KeyFrame] = []  # the reference's first

    # ------------------------------------------------------------------ processing
    def process(self, frame) -> None:
        import torch

        config = frame.job.config
        if config.temporal_mode == OFF:
            frame.rebased = self.frames > 0  # switched off after aligned frames: the frame's own normalisation
            self._clear()
            return
        p, xp = full_size(frame.relative)
        low, high = p <= P_SATURATED, p >= 1 - P_SATURATED  # where the model clipped p
        size = grid_size(*p.shape)
        grid = area_grid(p, size)
        usable = area_grid(low | high, size) <= 1e-6  # cells without a clipped pixel
        stamp_ns = frame.job.stamp_ns
        gap = math.nan if self.stamp_ns is None else (stamp_ns - self.stamp_ns) / 1e9
        source = get_source(config.scale_mode)
        known = source.known_scale(config) if source is not None else None  # a scale set without a fit
        signature = [list(p.shape), config.scale_mode, known.scale, known.shift] if known is not None \
            else [list(p.shape)]
        line, ratio, rms, why = None, math.nan, math.nan, self._why_not_align(gap, signature, config)
        if not why:
            line, ratio, rms, why = self._align(grid, usable, config)
        report_args = {"mode": config.temporal_mode, "inlier_ratio": ratio, "residual_rms": rms, "gap_s": gap}
        key = None
        if why:  # this frame, unchanged, becomes the reference
            if self.reference is not None:
                self.resets += 1
            if self.resets:
                self.last_reset = why
            frame.rebased = self.frames > 0  # the previous frame was in the old reference's affine frame
            self.frames = 0
            self.keys = []  # the key frames were in the old reference's affine frame
            stabilised, reference = p, grid
            report_args.update(status="anchored", detail=why)
        else:
            gain, offset = line
            detail = f"aligned to the previous frame: {ratio:.0%} of the image agrees"
            if config.temporal_key_frames > 0:
                key = self._key_alignment(np.where(usable, grid, np.nan), config)
                if key is None:
                    detail += (f"; no key frame agrees (temporal_key_frame_agreement "
                               f"{config.temporal_key_frame_agreement:.0%}): it becomes one")
                else:
                    (key_gain, key_offset), agreement, index = key
                    cells = grid[usable]
                    drift = float(np.sqrt(np.mean(((gain - key_gain) * cells + offset - key_offset) ** 2))) \
                        if cells.size else math.nan
                    age = (stamp_ns - self.keys[index].stamp_ns) / 1e9
                    self.keys[index].used_ns = stamp_ns
                    tau = config.temporal_key_frame_time_constant
                    pull = 1.0 if tau <= 0 else 1.0 - math.exp(-max(gap, 0.0) / tau)
                    gain, offset = gain + pull * (key_gain - gain), offset + pull * (key_offset - offset)
                    detail = (f"aligned to the key frame of {age:.1f} s ago: {agreement:.0%} of the image agrees "
                              f"(the previous frame: {ratio:.0%}); drift from the frame-to-frame alignment "
                              f"{drift:.4f}")
                    report_args.update(key_frame_age_s=age, key_frame_agreement=agreement, drift=drift)
            previous = _like(self.previous, p)
            stabilised = hold_clipped(xp, p * gain + offset, previous, low, high)
            reference = grid * gain + offset  # the stabilised map on the grid, where no pixel was clipped
            if config.temporal_mode == ALIGN_SMOOTH:
                stabilised = blend(xp, stabilised, previous, gap, config)
                reference = area_grid(stabilised, size)
            self.frames += 1
            report_args.update(status="aligned", detail=detail, gain=gain, offset=offset, frames=self.frames)
        self.reference = np.where(usable, reference, np.nan).astype(np.float32)  # cells the model clipped: out
        if config.temporal_key_frames > 0 and key is None:
            self._add_key_frame(stamp_ns, config.temporal_key_frames)
        self._keep_at_most(config.temporal_key_frames)
        frame.relative = torch.from_numpy(stabilised) if xp is np else stabilised
        frame.reports[self.name] = TemporalReport(resets=self.resets, key_frames=len(self.keys),
                                                  last_reset=self.last_reset, **report_args)
        self.previous = stabilised.copy() if xp is np else stabilised.clone()
        self.stamp_ns, self.signature = stamp_ns, signature

    def _key_alignment(self, grid: np.ndarray, config):
        """((gain, offset), agreement, index) of the alignment of this frame's grid (NaN where clipped) to the
        key frame whose thumbnail matches it best, or None when that key frame agrees with less than
        temporal_key_frame_agreement of the image (or cannot be aligned)."""
        key_grid = coarse(grid, KEY_GRID)
        thumbnail = coarse(key_grid, THUMBNAIL)
        misfits = [thumbnail_misfit(thumbnail, key.thumbnail) for key in self.keys]
        if not misfits or not math.isfinite(min(misfits)):
            return None
        index = int(np.argmin(misfits))
        line, agreement, _, _ = align_grids(key_grid, self.keys[index].grid, config)
        if line is None or agreement < config.temporal_key_frame_agreement:
            return None
        return line, agreement, index

    def _add_key_frame(self, stamp_ns: int, limit: int) -> None:
        """This frame's stabilised map becomes a key frame, making room if ``limit`` are kept (the reference alone:
        none is added)."""
        if limit > 1:
            self._keep_at_most(limit - 1)  # room for this one
        if len(self.keys) < limit:
            self.keys.append(KeyFrame.of(self.reference, stamp_ns))

    def _keep_at_most(self, limit: int) -> None:
        """Drop the least recently used key frames other than the reference beyond ``limit`` (0: all of them)."""
        if limit <= 0:
            self.keys = []
        while len(self.keys) > max(limit, 1):
            del self.keys[1 + min(range(len(self.keys) - 1), key=lambda i: self.keys[1 + i].used_ns)]

    def _why_not_align(self, gap: float, signature: list, config) -> str:
        """Why this frame must become the reference instead of being aligned ('' when it can be aligned)."""
        if self.reference is None:
            return "the first frame (of the stream, or since temporal_mode was off) is the reference"
        if signature[0] != self.signature[0]:
            return f"the image size changed to {signature[0][1]}x{signature[0][0]}"
        if signature != self.signature:
            mode = (signature[1:] or self.signature[1:])[0]  # the scale mode that sets the scale without a fit
            return f"the {mode} scale changed: it applies to this frame"
        if gap < 0:
            return f"the stamp went back by {-gap:.3f} s"
        if gap > config.temporal_max_gap:
            return f"{gap:.2f} s since the previous frame (> temporal_max_gap {config.temporal_max_gap} s)"
        return ""

    def _align(self, grid: np.ndarray, usable: np.ndarray, config):
        """((gain, offset), inlier ratio, residual RMS, '') or (None, ratio, rms, why not)."""
        line, ratio, rms, why = align_grids(np.where(usable, grid, np.nan), self.reference, config,
                                            "this frame and the previous one")
        if line is not None and ratio < config.temporal_reset_threshold:
            return None, ratio, rms, (f"only {ratio:.0%} of the image agrees with the previous frame "
                                      f"(temporal_reset_threshold {config.temporal_reset_threshold:.0%}): a scene "
                                      "cut or a fast change")
        return line, ratio, rms, why

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        return {"reference": _encode(self.reference),
                "previous": _encode(None if self.previous is None else _like(self.previous, np.zeros(0))),
                "stamp_ns": self.stamp_ns, "signature": self.signature, "frames": self.frames,
                "resets": self.resets, "last_reset": self.last_reset,
                "key_frames": [key.state() for key in self.keys]}

    def restore(self, state: dict) -> None:
        self._clear()
        self.reference = _decode(state["reference"])
        self.previous = _decode(state["previous"])  # numpy; moved to a GPU map's device when used
        self.stamp_ns, self.signature = state["stamp_ns"], state["signature"]
        self.frames, self.resets = state["frames"], state["resets"]
        self.last_reset = state.get("last_reset", "")  # runs saved before it was kept
        self.keys = [KeyFrame.restored(key) for key in state.get("key_frames", [])]  # none: saved before key frames
