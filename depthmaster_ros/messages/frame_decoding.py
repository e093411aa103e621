"""A camera message to the RGB image its frame job runs on, within the frame's limits: the size the message declares
is checked against ``max_image_pixels`` and its memory estimate planned against ``max_frame_memory``
(``engine/frame_memory.py``) before anything is decoded; a frame over the budget is decoded and at once reduced to
the size the plan allows. The node and the offline tools decode every frame here, so both treat large frames
alike."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from ..engine.frame_memory import MIB, FramePlan, plan_frame
from .conversions import InputError, decode_image, declared_size


def decode_frame(msg, compressed: bool, config, outputs: Iterable[str],
                 activation_bytes: Callable[[int], int] | None = None) -> tuple[np.ndarray, FramePlan]:
    """(RGB image, its plan); InputError with the reason if the frame is refused. ``outputs``: the engine outputs
    wanted (what they cost is part of the estimate). ``activation_bytes(pixels)``: the model's estimate (used at
    processing_res 0)."""
    size = declared_size(msg, compressed)
    plan = None
    if size is not None and 0 < size[0] * size[1] <= config.max_image_pixels:
        plan = plan_frame(size[0], size[1], len(msg.data), config, outputs, int(config.max_frame_memory * MIB),
                          activation_bytes)
        if plan.problem:
            raise InputError(plan.problem)
    # decode_image refuses a frame without a usable size (or over max_image_pixels) with the reason
    rgb = decode_image(msg, compressed, config.max_image_pixels, plan.size if plan is not None else None)
    if plan is None:  # not reached: decode_image refused it
        raise InputError(f"image of declared size {size} cannot be decoded")
    return rgb, plan
