"""DepthMasterPipeline: one RGB image in, normalised square-root disparity out.

The whole inference, as in the official pipeline (depthmaster-method.md section 2):

1. resize the uint8 image so its long side is ``processing_res`` (rules in :mod:`.resize`), map to [-1, 1];
2. VAE encoder -> ``quant_conv`` -> posterior mean x 0.18215 (no sampling);
3. one U-Net call at timestep 1 with the empty-prompt embedding ``[B, 2, D]``; the FE block runs after the
   mid block; the U-Net output is the prediction's latent (no scheduler);
4. latent / 0.18215 -> ``post_quant_conv`` -> VAE decoder -> mean of the 3 channels -> clip [-1, 1] -> (x+1)/2;
5. bilinear antialiased resize back to the input size.

The result is affine-invariant normalised sqrt-disparity in [0, 1], 1 = near, 0 = far. Metric depth needs a
scale and shift from elsewhere: ``depth = 1 / max((s * p + t)^2, eps)``.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from .checkpoint import (
    DEFAULT_REPO_ID,
    default_processing_resolution,
    load_diffusers_component,
    require_complete,
    resolve_checkpoint,
)
from .checkpoint_layout import RANDOM_WEIGHTS_MARKER
from .device import dtype_name, resolve_device, resolve_dtype
from .empty_text import cache_locations, load_empty_text_embedding, read_cached
from .acceleration import compile_stages, fold_channel_mean, to_channels_last
from .resize import processing_size, resize_bilinear, resize_uint8_values
from .unet import attach_fourier_enhancement

LATENT_SCALE = 0.18215
DEFAULT_PROCESSING_RESOLUTION = 768


class DepthMasterPipeline:
    """DepthMaster inference on one device in one dtype (float32 unless asked otherwise).

    Build it with :meth:`from_pretrained`; call it on an RGB uint8 ``H x W x 3`` numpy image (or a list of them).
    """

    def __init__(
        self,
        unet: UNet2DConditionModel,
        vae: AutoencoderKL,
        empty_text_embedding: torch.Tensor,
        *,
        default_processing_resolution: int = DEFAULT_PROCESSING_RESOLUTION,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        source: str = "",
        random_weights: bool = False,
        prepare: bool = True,
    ):
        """``prepare=False`` uses the modules as they are (device, dtype, gradients, no folding): training runs
        its validation through a pipeline over the models it is training. A U-Net without the FE block is a
        stage-1 model (training only)."""
        expected = (1, 2, unet.config.cross_attention_dim)
        if tuple(empty_text_embedding.shape) != expected:
            raise ValueError(
                f"empty-prompt embedding has shape {tuple(empty_text_embedding.shape)}, expected {expected} "
                "(2 tokens x the U-Net's cross_attention_dim)"
            )
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        if prepare:
            # torch.nn.Module.to, not diffusers' ModelMixin.to: the latter warns on every dtype cast (its list of
            # modules to keep in float32 is never None), and neither model has such modules.
            unet = torch.nn.Module.to(unet, self.device, self.dtype).eval().requires_grad_(False)
            if hasattr(unet, "fftblock"):
                unet.fftblock.float()  # FE stays float32 (see fourier_enhancement.py)
            vae = torch.nn.Module.to(vae, self.device, self.dtype).eval().requires_grad_(False)
            fold_channel_mean(vae)  # exact: decode's channel mean comes out of the last conv
        self.unet, self.vae = unet, vae
        self.empty_text_embedding = empty_text_embedding.to(self.device, self.dtype)
        self.default_processing_resolution = int(default_processing_resolution)
        self.source = source
        self.random_weights = random_weights
        self.text_encoder_loaded = False
        self.compiled = self.cuda_graphs = False
        # The layout input batches get before the first convolution: contiguous, as the official pipeline's
        # tensors (the CPU's convolutions take another float path on a channels-last view, which the Fourier
        # Enhancement's phase amplifies on random weights); accelerate() switches to channels-last on CUDA.
        self.memory_format = torch.contiguous_format

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        path_or_repo_id: str | os.PathLike = DEFAULT_REPO_ID,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        allow_download: bool = False,
        compile: bool = False,
        cuda_graphs: bool = False,
    ) -> "DepthMasterPipeline":
        """Load a checkpoint folder in the official layout, or a Hugging Face repo id (default
        ``zysong212/DepthMaster``) from the local HF cache, downloading it only when ``allow_download``.
        ``compile`` / ``cuda_graphs``: see :meth:`accelerate`.

        Raises :class:`CheckpointError` naming what is missing or wrong and how to get the weights.
        """
        root = resolve_checkpoint(path_or_repo_id, allow_download=allow_download)
        has_cached_embedding = any(read_cached(p, None) is not None for p in cache_locations(root))
        require_complete(root, need_text_encoder=not has_cached_embedding)
        processing_res = default_processing_resolution(root, DEFAULT_PROCESSING_RESOLUTION)
        unet = load_diffusers_component(UNet2DConditionModel, root / "unet", extend=attach_fourier_enhancement)
        vae = load_diffusers_component(AutoencoderKL, root / "vae")
        embedding, embedding_source = load_empty_text_embedding(root)
        pipe = cls(
            unet,
            vae,
            embedding,
            default_processing_resolution=processing_res,
            device=device,
            dtype=dtype,
            source=str(path_or_repo_id),
            random_weights=(root / RANDOM_WEIGHTS_MARKER).is_file(),
        )
        pipe.text_encoder_loaded = embedding_source == "text_encoder"
        pipe.accelerate(compile=compile, cuda_graphs=cuda_graphs)
        return pipe

    def accelerate(self, compile: bool = False, cuda_graphs: bool = False, channels_last: bool | None = None) -> None:
        """The fast path's switches: channels-last memory (default: on CUDA), ``torch.compile`` of the three
        stages with static shapes (each new processing size compiles once, minutes for the full model), and CUDA
        graphs on top (``cuda_graphs`` implies ``compile``). Call :meth:`warmup` before the first real frame."""
        if channels_last is None:
            channels_last = self.device.type == "cuda"
        if channels_last:
            to_channels_last(self.unet, self.vae)
            self.memory_format = torch.channels_last
        if cuda_graphs and self.device.type != "cuda":
            raise ValueError("cuda_graphs needs a CUDA device; this pipeline runs on " + str(self.device))
        if compile or cuda_graphs:
            compile_stages(self, cuda_graphs=cuda_graphs)
        self.compiled, self.cuda_graphs = bool(compile or cuda_graphs), bool(cuda_graphs)

    def warmup(self, height: int, width: int, batch: int = 1, processing_res: int | None = None,
               runs: int = 2) -> None:
        """Run the model on blank frames of this size so compilation, autotuning and CUDA-graph capture happen
        now rather than on the first real frame."""
        blank = torch.zeros(batch, 3, height, width, dtype=torch.uint8)
        for _ in range(runs if self.compiled else 1):
            self.predict(blank, processing_res)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self) -> str:
        weights = "RANDOM weights (smoke test only)" if self.random_weights else "weights"
        fast = ", compiled" + (" with CUDA graphs" if self.cuda_graphs else "") if self.compiled else ""
        return (f"DepthMaster {weights} from {self.source or '<memory>'} on {self.device} "
                f"({dtype_name(self.dtype)}{fast})")

    # ------------------------------------------------------------------ stages (tensors on self.device)
    def preprocess(self, rgb: torch.Tensor, processing_res: int | None = None) -> torch.Tensor:
        """uint8-valued ``[B, 3, H, W]`` -> resized, normalised ``[B, 3, h, w]`` in [-1, 1], pipeline dtype."""
        return normalise(rgb, self.resolution(processing_res), self.device, self.dtype)

    def resolution(self, processing_res: int | None) -> int:
        """The processing resolution a call runs at (``None``: the checkpoint's default)."""
        return self.default_processing_resolution if processing_res is None else int(processing_res)

    def encode(self, rgb_norm: torch.Tensor) -> torch.Tensor:
        """VAE posterior mean of the image, scaled by 0.18215."""
        moments = self.vae.encoder(rgb_norm)
        if self.vae.quant_conv is not None:
            moments = self.vae.quant_conv(moments)
        mean, _logvar = torch.chunk(moments, 2, dim=1)
        return mean * LATENT_SCALE

    def predict_latent(self, rgb_latent: torch.Tensor) -> torch.Tensor:
        """One U-Net pass at timestep 1, conditioned on the empty prompt."""
        text = self.empty_text_embedding.expand(rgb_latent.shape[0], -1, -1)
        return self.unet(rgb_latent, 1, encoder_hidden_states=text, return_dict=False)[0]

    def decode_mean(self, latent: torch.Tensor) -> torch.Tensor:
        """Prediction latent -> the decoder's channel mean ``[B, 1, 8h, 8w]`` in the model's [-1, 1] space,
        unclipped (what stage-2 training supervises)."""
        z = latent / LATENT_SCALE
        if self.vae.post_quant_conv is not None:
            z = self.vae.post_quant_conv(z)
        return self.vae.decoder(z).mean(dim=1, keepdim=True)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Prediction latent -> ``[B, 1, 8h, 8w]`` normalised sqrt-disparity in [0, 1] (float32)."""
        return (self.decode_mean(latent).float().clamp(-1.0, 1.0) + 1.0) / 2.0

    def model_pass(self, rgb_norm: torch.Tensor) -> torch.Tensor:
        """Normalised ``[B, 3, h, w]`` at the processing size -> ``[B, 1, h, w]`` in [0, 1]: encode, U-Net, decode
        (what ``depthmaster-export`` writes to ONNX)."""
        return self.decode(self.predict_latent(self.encode(rgb_norm)))

    @torch.inference_mode()
    def predict(self, rgb: torch.Tensor, processing_res: int | None = None) -> torch.Tensor:
        """Batch inference on uint8-valued ``[B, 3, H, W]`` tensors (any memory layout: the pipeline sets its own,
        so every caller gets the same result for the same image): float32 ``[B, H, W]`` in [0, 1]."""
        return run_frames(rgb, self.resolution(processing_res), self.model_pass, self.device, self.dtype,
                          self.memory_format)

    # ------------------------------------------------------------------ numpy API
    def __call__(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        processing_res: int | None = None,
        batch_size: int = 1,
    ) -> np.ndarray | list[np.ndarray]:
        """Predict one image (``H x W x 3`` uint8 RGB) or a list of them.

        Returns float32 ``H x W`` arrays in [0, 1] at each input's size (1 = near). Images of the same size are
        run ``batch_size`` at a time; the results do not depend on the batching.
        """
        single = isinstance(images, np.ndarray) or hasattr(images, "convert")
        items = [images] if single else list(images)
        arrays = [as_rgb_uint8(item, index) for index, item in enumerate(items)]
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        results: list[np.ndarray | None] = [None] * len(arrays)
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, array in enumerate(arrays):
            by_size.setdefault(array.shape[:2], []).append(index)
        for indices in by_size.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                batch = torch.from_numpy(np.stack([arrays[i] for i in chunk])).permute(0, 3, 1, 2)
                prediction = self.predict(batch, processing_res).cpu().numpy()  # predict() sets the layout
                for i, result in zip(chunk, prediction):
                    results[i] = result
        return results[0] if single else results


def normalise(rgb: torch.Tensor, processing_res: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """uint8-valued ``[B, 3, H, W]`` -> resized to the processing size, normalised to [-1, 1], in ``dtype``."""
    size = processing_size(rgb.shape[-2], rgb.shape[-1], processing_res)
    rgb = resize_uint8_values(rgb.to(device), size)
    return (rgb / 255.0 * 2.0 - 1.0).to(dtype)


def to_input_size(prediction: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[B, 1, h, w]`` decoded prediction -> float32 ``[B, H, W]`` in [0, 1] at the input size."""
    return resize_bilinear(prediction, tuple(size))[:, 0].clamp(0.0, 1.0)


def run_frames(rgb: torch.Tensor, processing_res: int, model_pass, device: torch.device, dtype: torch.dtype,
               memory_format=torch.contiguous_format) -> torch.Tensor:
    """The one way a batch goes through a model, whatever runs it (the pipeline's modules, an ONNX Runtime session):
    uint8-valued ``[B, 3, H, W]`` -> the layout ``memory_format`` on ``device`` -> :func:`normalise` ->
    ``model_pass`` (normalised ``[B, 3, h, w]`` -> ``[B, 1, h, w]`` in [0, 1]) -> :func:`to_input_size`."""
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ValueError(f"expected an RGB batch of shape [B, 3, H, W], got {tuple(rgb.shape)}")
    rgb = rgb.to(device, non_blocking=True).contiguous(memory_format=memory_format)
    return to_input_size(model_pass(normalise(rgb, processing_res, device, dtype)), rgb.shape[-2:])


def as_rgb_uint8(image, index: int = 0) -> np.ndarray:
    """Validate one input image: an ``H x W x 3`` uint8 RGB array (a PIL image is converted)."""
    if hasattr(image, "convert"):
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image {index}: expected an H x W x 3 uint8 RGB numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image {index}: expected an H x W x 3 uint8 RGB array, got {image.dtype} array of shape {image.shape}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image {index}: empty image of shape {image.shape}")
    return np.ascontiguousarray(image)
