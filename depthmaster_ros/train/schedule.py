"""The learning-rate schedule of both stages (depthmaster-method.md 4.6): linear warm-up, then exponential decay to
``final_ratio`` over ``total_steps``, flat afterwards; stepped once per optimizer step."""

from __future__ import annotations

import math


def lr_factor(step: int, total_steps: int = 25000, warmup_steps: int = 100, final_ratio: float = 0.01) -> float:
    if step < warmup_steps:
        return step / warmup_steps
    if step >= total_steps:
        return final_ratio
    return math.exp((step - warmup_steps) / (total_steps - warmup_steps) * math.log(final_ratio))
