"""Limits that hold before any allocation: a frame the model cannot or should not run is rejected with the reason
(not attempted for minutes, not an error), a processing size whose activations cannot fit in memory is refused
when it is set, with the estimate, and a model that cannot fit is not loaded (configure fails with the numbers
instead of the process dying in the middle of the load)."""

from __future__ import annotations

from ..host_memory import GIB
from ..model.resize import processing_size

# What the node's configure and first model pass add beyond the weights and activations: diffusers' and
# transformers' imports, the inference thread, the thread pools. Measured with the tiny model on the CPU
# (2026-12-05): +0.20 GiB resident, +0.40 GiB of address space (threads' stacks and allocator arenas count there);
# under an address-space limit 0.5 GiB of headroom once failed to start the inference thread, hence the margin.
RUNTIME_RESIDENT = int(0.3 * GIB)
RUNTIME_ADDRESS_SPACE = int(0.75 * GIB)


# A frame whose model output is more than this share non-finite (NaN/Inf) is refused whole. Below it the frame is
# served with NaN (REP 117: no measurement) at those pixels, which a robot treats as unknown, never as free
# space. Above it the failure is the pass's, not a region's (DepthMaster's U-Net attention spreads a numerical
# failure over the whole map; a local one comes from the decoder's convolutions), and the scale fit and the
# temporal alignment would rest on the smaller, suspect part of the image.
MAX_NONFINITE_FRACTION = 0.5


def nonfinite_problem(fraction: float) -> str | None:
    """Why a model output with this share of non-finite pixels is refused, or None."""
    if fraction <= MAX_NONFINITE_FRACTION:
        return None
    return (f"{fraction:.1%} of the model's output is not finite (NaN/Inf): the frame is refused (more than "
            f"{MAX_NONFINITE_FRACTION:.0%}); a numerical failure of the model pass (fp16 overflow? try dtype fp32 or "
            "bf16)")


def too_many_pixels(width: int, height: int, max_pixels: int | None, what: str = "image") -> str | None:
    """Why an image of this size is over ``max_image_pixels``, naming the setting as the cause, or None."""
    if max_pixels is None or width * height <= max_pixels:
        return None
    return (f"{what} is {width}x{height} = {width * height:,} pixels, more than max_image_pixels {max_pixels:,}: "
            f"every frame of this size is refused until max_image_pixels is at least {width * height:,}")


def frame_problem(shape, config) -> str | None:
    """Why a frame of ``shape`` (H, W, ...) cannot be processed with ``config``, or None."""
    height, width = int(shape[0]), int(shape[1])
    too_many = too_many_pixels(width, height, config.max_image_pixels)
    if too_many:
        return too_many
    try:
        proc_h, proc_w = processing_size(height, width, config.processing_res)
    except ValueError as exc:
        return f"a {width}x{height} image cannot be processed: {exc}"
    if proc_h * proc_w > config.max_processing_pixels:
        return (f"a {width}x{height} image at processing_res {config.processing_res} runs at {proc_w}x{proc_h} = "
                f"{proc_h * proc_w:,} pixels, more than max_processing_pixels {config.max_processing_pixels:,}: "
                "lower processing_res (0 = native size)")
    return None


def worst_case_pixels(config, image_size: tuple[int, int] | None = None) -> int:
    """The most pixels one frame can be processed at with ``config``: for ``image_size`` (width, height) if known,
    else the square of processing_res (native size: max_processing_pixels), never above max_processing_pixels."""
    if image_size is not None:
        try:
            proc_h, proc_w = processing_size(image_size[1], image_size[0], config.processing_res)
            return min(proc_h * proc_w, config.max_processing_pixels)
        except ValueError:
            return 0
    if config.processing_res == 0:
        return config.max_processing_pixels
    return min(config.processing_res ** 2, config.max_processing_pixels)


def memory_problem(backend, config, batch: int, image_size: tuple[int, int] | None = None,
                   available: int | None = None) -> str | None:
    """Why passes of ``batch`` frames at ``config``'s processing size would not fit in the backend device's
    memory, with the estimate, or None (also when the backend or the device cannot tell)."""
    estimate = getattr(backend, "activation_bytes", None)
    if estimate is None:
        return None
    pixels = worst_case_pixels(config, image_size)
    needed = estimate(pixels, batch)
    if available is None:
        from ..model.device import available_memory

        available = available_memory(backend.device)
    if available is None or needed <= available:
        return None
    return (f"processing_res {config.processing_res} with {batch} frame(s) per pass runs at up to {pixels:,} "
            f"pixels a frame: about {needed / GIB:.1f} GiB of activations on {backend.device}, but "
            f"{available / GIB:.1f} GiB are available; lower processing_res or max_processing_pixels")


def startup_problem(estimate, pixels: int, batch: int, resident=None, address_space=None,
                    device_free=None) -> str | None:
    """Why loading the model of ``estimate`` (``model.backends.LoadEstimate``) and running passes of ``batch``
    frames of ``pixels`` processing pixels would not fit, with the numbers, or None. ``resident``,
    ``address_space``: the host's headroom (``host_memory.headroom()``; None: no such limit); ``device_free``: the
    GPU's free bytes when the model runs on one."""
    activations = estimate.activation_bytes(pixels, batch)
    on_gpu = getattr(estimate.device, "type", "cpu") == "cuda"
    host_peak = max(estimate.loading, 0 if on_gpu else estimate.weights + activations)
    parts = (f"weights {estimate.weights / GIB:.2f} GiB ({estimate.loading / GIB:.2f} GiB while loading), "
             f"activations {activations / GIB:.2f} GiB at {pixels:,} processing pixels x {batch}")
    for room, runtime, what in ((resident, RUNTIME_RESIDENT, "memory"),
                                (address_space, RUNTIME_ADDRESS_SPACE, "address space")):
        if room is None:
            continue
        needed = host_peak + runtime
        if needed > room.available:
            return (f"loading the model needs about {needed / GIB:.2f} GiB of {what} ({parts}, runtime "
                    f"{runtime / GIB:.2f} GiB) but {room.describe()}; free memory, raise the limit, or use a "
                    "smaller dtype (bf16) or processing_res")
    if on_gpu and device_free is not None and estimate.weights + activations > device_free:
        return (f"the model needs about {(estimate.weights + activations) / GIB:.2f} GiB on {estimate.device} "
                f"({parts}) but {device_free / GIB:.2f} GiB are free there; use bf16 or a lower processing_res")
    return None
