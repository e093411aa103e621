"""Choosing the torch device and dtype from user-facing strings (CLI flags, ROS parameters)."""

from __future__ import annotations

import torch

DTYPES = {
    "fp32": torch.float32, "float32": torch.float32,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``"auto"``: the first CUDA GPU if there is one, else the CPU. A CUDA device that does not
    exist is an error, not a silent fall-back."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device '{device}': expected auto, cpu, cuda or cuda:N") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device '{device}' was asked for but this torch build sees no CUDA GPU")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device '{device}' does not exist: {torch.cuda.device_count()} CUDA device(s) found")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None = None, device: torch.device | None = None) -> torch.dtype:
    """``None`` means float32 (the precision of the official code and of every published number); ``"auto"``
    means bfloat16 on a CUDA device that supports it and float32 otherwise."""
    if dtype is None:
        return torch.float32
    if str(dtype) == "auto":
        if device is not None and device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"unsupported dtype {dtype}: expected float32, float16 or bfloat16")
        return dtype
    try:
        return DTYPES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"unknown dtype '{dtype}': expected auto, fp32, fp16 or bf16") from None


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]


def memory_report(device) -> dict[str, float]:
    """GPU memory in use on a CUDA device, in MiB (empty elsewhere), for diagnostics."""
    if getattr(device, "type", None) != "cuda":
        return {}
    return {"gpu_memory_allocated_mb": torch.cuda.memory_allocated(device) / 2**20,
            "gpu_memory_reserved_mb": torch.cuda.memory_reserved(device) / 2**20}


def auto_cpu_threads() -> int:
    """One fewer than the CPUs this process may run on (at least 1). With every core busy in the model, another
    program taking one core stalls all of them at each synchronisation (measured on 2 cores with one core busy:
    849 ms per tiny-model frame with 2 threads, 321 ms with 1; idle: 240 and 298 ms)."""
    import os

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus - 1)


def apply_cpu_threads(threads: int) -> int:
    """Set torch's intra-op CPU threads: ``threads`` > 0 as given, 0 = :func:`auto_cpu_threads`. Returns the
    number set."""
    count = int(threads) if threads > 0 else auto_cpu_threads()
    torch.set_num_threads(count)
    return count


def available_memory(device) -> int | None:
    """Bytes that a new allocation on ``device`` can still get (CUDA: free device memory; CPU: the tightest of the
    system's available memory, the process's cgroup limit and its address-space limit), or None where it cannot be
    told."""
    if getattr(device, "type", None) == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free) + int(torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    from ..host_memory import headroom

    rooms = [room.available for room in headroom() if room is not None]
    return min(rooms) if rooms else None
