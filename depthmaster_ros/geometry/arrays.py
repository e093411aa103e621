"""numpy in, numpy out; torch in, torch out: the geometry runs on torch tensors (on the GPU next to the model
when there is one) and also serves numpy callers."""

from __future__ import annotations

import numpy as np
import torch


def as_tensor(values) -> tuple[torch.Tensor, bool]:
    """(a tensor sharing memory where possible, True if the input was not a tensor)."""
    if isinstance(values, torch.Tensor):
        return values, False
    array = np.ascontiguousarray(values)
    if not array.flags.writeable:  # e.g. a view of a message's bytes; torch wants writable memory
        array = array.copy()
    return torch.from_numpy(array), True


def like_input(result: torch.Tensor, was_numpy: bool):
    return result.cpu().numpy() if was_numpy else result
