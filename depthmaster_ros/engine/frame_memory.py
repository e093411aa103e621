"""The memory one frame takes, estimated from the size its message declares before anything is decoded, and the
plan that keeps it within ``max_frame_memory``.

A frame's memory has four parts (:class:`FrameMemory`):

* **message**: the received message, resident while it is decoded (a raw image's pixels; a compressed image's
  bytes);
* **decode**: the RGB image at the declared size (a few kB of JPEG or PNG can declare 49 megapixels);
* **model**: the model pass's input and output at the working size (the batch, its float copy, the map resized
  back), plus the activations where they grow with the frame (``processing_res`` 0: the model runs at the frame's
  own size). At a fixed ``processing_res`` the activations are the same for every frame: they are checked once
  against the available memory (``limits.memory_problem``, at configure and when the processing size changes);
* **outputs**: everything at the output size: the stages, the relative and metric maps, the colour map, the
  point cloud and the messages they become (their serialised copies included).

:func:`plan_frame` keeps a frame within the budget by working at a smaller size: the decoded image is resized
(area averaging) to the largest size that fits, and every later step, the model's input included, runs at that
size: the outputs come out as if ``output_scale`` were lowered for that frame, with the camera info scaled to
match. A frame whose decoding alone does not fit is refused with the numbers.

The per-pixel constants were measured on the node process (VmHWM above the steady state while it serves one large
frame; ``scripts/node_load_probe.py``) and carry a margin; ``docs/robustness.md`` has the measurements.

Measured, not derived: what a step allocates at once depends on the libraries (torch, OpenCV, numpy, the ROS
middleware's copies of each message), and their transient arrays do not all live at the same moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

MIB = 2**20

# Measured on the node process (2026-12-05, tiny model, processing_res 64, 2-core x86, scripts/node_load_probe.py
# memory --cases png -p max_frame_memory:=0): VmHWM above the steady state while it serves one PNG of 1, 2, 4 and
# 12 megapixels was 127, 119, 130 and 106 bytes a pixel with every output, 29 and 23 (4 and 12 MP) with the
# relative map alone. The constants cover the largest with a margin: 35 a pixel for the relative map alone, 147
# with every output.
DECODED_BYTES_PER_PIXEL = 3  # the RGB image
MODEL_IO_BYTES_PER_PIXEL = 16  # the uint8 batch, its float copy, the map at the working size
# Per output pixel, by output (the relative map's share includes the stages' full-size work and the message); per
# cloud point (the cloud, its projection and its message; 80 % of it without colour).
OUTPUT_BYTES_PER_PIXEL = {"relative": 16, "colored": 16, "depth": 24}
CLOUD_BYTES_PER_POINT = 72
MIN_REDUCTION = 0.05  # smaller than this fraction of the frame's sides, a frame is refused rather than reduced


@dataclass(frozen=True)
class FrameMemory:
    """Bytes of each part of one frame's peak memory (see the module's documentation)."""

    message: int
    decode: int
    model: int
    outputs: int

    @property
    def total(self) -> int:
        return self.message + self.decode + self.model + self.outputs

    def describe(self) -> str:
        return (f"about {self.total / MIB:.0f} MiB (message {self.message / MIB:.0f}, decoding "
                f"{self.decode / MIB:.0f}, model input/output {self.model / MIB:.0f}, outputs {self.outputs / MIB:.0f})")


@dataclass(frozen=True)
class FramePlan:
    """How a frame is processed: at ``size`` (width, height; the declared size unless reduced) with
    ``output_scale``, costing ``memory``; or refused (``problem``)."""

    declared: tuple[int, int]
    size: tuple[int, int]
    output_scale: float
    memory: FrameMemory
    problem: str | None = None

    @property
    def reduced(self) -> bool:
        return self.size != self.declared

    def applied_to(self, config):
        """The frame's processing configuration: ``config`` with this plan's ``output_scale`` where the frame is
        reduced (its outputs at the reduced size), else ``config`` itself."""
        return config.updated(output_scale=self.output_scale) if self.reduced else config

    def describe(self, budget_mib: float) -> str:
        """One line for the log and /diagnostics about a reduced frame."""
        return (f"a {self.declared[0]}x{self.declared[1]} frame's outputs would exceed max_frame_memory "
                f"{budget_mib:g} MiB: processed at {self.size[0]}x{self.size[1]} ({self.memory.describe()})")


def output_size(height: int, width: int, output_scale: float) -> tuple[int, int]:
    """(height, width) of the outputs of a frame at ``output_scale`` (what ``engine/render.py`` renders)."""
    return max(1, round(height * output_scale)), max(1, round(width * output_scale))


def output_bytes_per_pixel(outputs: Iterable[str], cloud_stride: int = 1, cloud_color: bool = True) -> float:
    """Bytes per output pixel of the wanted ``outputs`` (engine output names: relative, colored, depth, points,
    scale). Points need the depth map; the relative map is always made."""
    outputs = set(outputs)
    total = OUTPUT_BYTES_PER_PIXEL["relative"]
    if "colored" in outputs:
        total += OUTPUT_BYTES_PER_PIXEL["colored"]
    if outputs & {"depth", "points"}:
        total += OUTPUT_BYTES_PER_PIXEL["depth"]
    if "points" in outputs:
        per_point = CLOUD_BYTES_PER_POINT * (1.0 if cloud_color else 0.8)  # 16 or 12 bytes a point, then copies
        total += per_point / cloud_stride**2
    return total


def frame_memory(width: int, height: int, message_bytes: int, config, outputs: Iterable[str],
                 size: tuple[int, int] | None = None, output_scale: float | None = None,
                 activation_bytes: Callable[[int], int] | None = None) -> FrameMemory:
    """The memory of a ``width`` x ``height`` frame (``message_bytes`` as received) worked at ``size`` (default:
    its own) with ``output_scale`` (default: the config's). ``activation_bytes(pixels)``: the model's estimate,
    used when ``processing_res`` is 0."""
    work_w, work_h = size or (width, height)
    scale = config.output_scale if output_scale is None else output_scale
    work = work_w * work_h
    model = MODEL_IO_BYTES_PER_PIXEL * work
    if config.processing_res == 0 and activation_bytes is not None:
        model += int(activation_bytes(work))
    per_pixel = output_bytes_per_pixel(outputs, config.cloud_stride, config.cloud_color)
    out_h, out_w = output_size(work_h, work_w, scale)
    return FrameMemory(message=int(message_bytes), decode=DECODED_BYTES_PER_PIXEL * width * height, model=int(model),
                       outputs=int(per_pixel * out_h * out_w))


def plan_frame(width: int, height: int, message_bytes: int, config, outputs: Iterable[str], budget_bytes: int,
               activation_bytes: Callable[[int], int] | None = None) -> FramePlan:
    """The plan that keeps a ``width`` x ``height`` frame within ``budget_bytes`` (0: no budget): as it is, or
    reduced to the largest size whose estimate fits, or refused with the reason."""
    outputs = tuple(outputs)
    as_is = frame_memory(width, height, message_bytes, config, outputs, activation_bytes=activation_bytes)
    if budget_bytes <= 0 or as_is.total <= budget_bytes:
        return FramePlan((width, height), (width, height), config.output_scale, as_is)
    budget_mib = budget_bytes / MIB

    def at(factor: float) -> tuple[tuple[int, int], FrameMemory]:
        size = (max(1, int(width * factor)), max(1, int(height * factor)))
        return size, frame_memory(width, height, message_bytes, config, outputs, size, 1.0, activation_bytes)

    # The reduced frame's outputs are at its own size (output_scale 1): the model's input is the output size.
    low, high = 0.0, min(1.0, config.output_scale)
    for _ in range(40):  # the estimate grows with the factor: bisect for the largest that fits
        middle = (low + high) / 2
        if at(middle)[1].total <= budget_bytes:
            low = middle
        else:
            high = middle
    size, memory = at(low)
    if low < MIN_REDUCTION or memory.total > budget_bytes:
        smallest = at(MIN_REDUCTION)[1]
        return FramePlan((width, height), (width, height), config.output_scale, as_is, problem=(
            f"a {width}x{height} image needs {as_is.describe()}, and {smallest.total / MIB:.0f} MiB even with its "
            f"outputs at {MIN_REDUCTION:g} of its size: more than max_frame_memory {budget_mib:g} MiB; raise "
            "max_frame_memory or lower the camera's resolution"))
    return FramePlan((width, height), size, 1.0, memory)

