"""The official checkpoint layout of ``zysong212/DepthMaster``, written down once: its file names (which the
loader looks for) and the one writer of checkpoint folders (used by training and by the random test
checkpoints)::

    model_index.json
    unet/config.json           unet/diffusion_pytorch_model.{bin,safetensors}   (SD2 U-Net + fftblock.*)
    vae/config.json            vae/diffusion_pytorch_model.{safetensors,bin}
    text_encoder/config.json   text_encoder/model.safetensors                    (only for the empty prompt)
    tokenizer/vocab.json merges.txt special_tokens_map.json tokenizer_config.json

Plus, written by this package: ``empty_text_embedding.safetensors`` (the cached empty-prompt embedding, see
``empty_text.py``) and ``random_weights.json`` in random smoke-test checkpoints.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

DEFAULT_REPO_ID = "zysong212/DepthMaster"  # the published model: the default checkpoint everywhere
COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer")
WEIGHT_NAMES = {
    "diffusers": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
    "transformers": ("model.safetensors", "pytorch_model.bin"),
}
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")
RANDOM_WEIGHTS_MARKER = "random_weights.json"
# What every tool and the node say when the model has random weights (the marker file is there).
RANDOM_WEIGHTS_WARNING = ("WARNING: this checkpoint has RANDOM weights: whatever it gives (depth, points, metrics, "
                          "a calibration) is meaningless; a smoke test of the software, not a result")
# The published model_index.json (Marigold v1-0's index; only the processing resolution is used).
MODEL_INDEX = {
    "_class_name": "MarigoldPipeline",
    "_diffusers_version": "0.24.0",
    "default_denoising_steps": 10,
    "default_processing_resolution": 768,
    "scale_invariant": True,
    "shift_invariant": True,
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def write_model_index(root: Path, index: dict | None = None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "model_index.json").write_text(json.dumps(index or MODEL_INDEX, indent=2))


def write_diffusers_component(folder: Path, class_name: str, config: dict, state: dict, weights: str = "safetensors",
                              diffusers_version: str = "0.24.0") -> None:
    """``folder/config.json`` (as diffusers' ``save_config`` writes it) and the weights as ``safetensors`` or as a
    ``bin`` pickle of the state dict (the published U-Net's format)."""
    import torch
    from safetensors.torch import save_file

    if weights not in ("safetensors", "bin"):
        raise ValueError(f"weights must be 'safetensors' or 'bin', got {weights!r}")
    folder.mkdir(parents=True, exist_ok=True)
    plain = {k: v for k, v in dict(config).items() if not k.startswith("_")}
    (folder / "config.json").write_text(json.dumps({"_class_name": class_name,
                                                    "_diffusers_version": diffusers_version, **plain}, indent=2))
    state = {k: v.detach().contiguous() for k, v in state.items()}
    if weights == "bin":
        torch.save(state, folder / WEIGHT_NAMES["diffusers"][1])
    else:
        save_file(state, folder / WEIGHT_NAMES["diffusers"][0], metadata={"format": "pt"})


def link_component(source_root: Path, target_root: Path, component: str) -> bool:
    """Hard-link (or copy, across file systems) one component folder's files from another checkpoint; False if
    the source has no such folder."""
    source = source_root / component
    if not source.is_dir():
        return False
    for path in source.iterdir():
        if path.is_file():
            target = target_root / component / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path.resolve(), target)
            except OSError:
                shutil.copy2(path.resolve(), target)
    return True


def mark_random(root: Path, seed: int, written_by: str) -> None:
    """The marker that makes every tool say the weights are random, and a README saying so."""
    (root / RANDOM_WEIGHTS_MARKER).write_text(
        json.dumps({"random_weights": True, "seed": seed, "written_by": written_by}) + "\n")
    (root / "README.md").write_text(
        "# DepthMaster checkpoint with RANDOM weights\n\n"
        f"Written by `{written_by}` in the layout of `zysong212/DepthMaster`.\n"
        "Its predictions are meaningless: it exists to test the software without the real weights.\n")
