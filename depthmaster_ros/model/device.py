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


def apply_cpu_threads(threads: int) -> None:
    """Torch's intra-op CPU threads: ``threads`` > 0 sets them, 0 keeps torch's default."""
    if threads > 0:
        torch.set_num_threads(int(threads))
