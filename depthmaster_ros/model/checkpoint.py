"""Finding a DepthMaster checkpoint and loading its weights strictly.

A checkpoint is a folder in the official layout of the Hugging Face repo ``zysong212/DepthMaster``
(``checkpoint_layout.py`` names its files).

Every weight is accounted for: a missing, unexpected or mis-shaped tensor is an error that lists them.
``.bin`` files are read with ``torch.load(weights_only=True)``, which never runs pickled code.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file as load_safetensors

from .checkpoint_layout import DEFAULT_REPO_ID, TOKENIZER_FILES, WEIGHT_NAMES as _WEIGHT_NAMES
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

HOW_TO_GET_WEIGHTS = (
    "Get the published weights with `hf download zysong212/DepthMaster` (package huggingface_hub; into the Hugging "
    "Face cache, where the default checkpoint zysong212/DepthMaster finds them), or with `--local-dir DIR` and set "
    "the checkpoint to DIR (node: -p checkpoint:=DIR; tools: --checkpoint DIR); or let it download at start "
    "(node: -p allow_download:=true; tools: --allow-download). For a smoke test without weights: "
    "`depthmaster-make-tiny-checkpoint DIR`."
)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not match the DepthMaster architecture."""


def resolve_checkpoint(path_or_repo_id: str | os.PathLike, allow_download: bool = False) -> Path:
    """Return the local folder of a checkpoint given as a folder or a Hugging Face repo id.

    A repo id is looked up in the local Hugging Face cache; it is downloaded only when ``allow_download``.
    """
    text = os.fspath(path_or_repo_id)
    local = Path(text).expanduser()
    if local.is_dir():
        return local
    if local.exists():
        raise CheckpointError(f"checkpoint '{text}' is a file; expected a checkpoint folder. {HOW_TO_GET_WEIGHTS}")
    if not _REPO_ID_RE.match(text) or text.startswith((".", "~")):
        raise CheckpointError(f"checkpoint folder '{text}' does not exist. {HOW_TO_GET_WEIGHTS}")

    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    patterns = ["model_index.json", "unet/*", "vae/*", "text_encoder/*", "tokenizer/*"]
    try:
        return Path(snapshot_download(text, allow_patterns=patterns, local_files_only=not allow_download))
    except LocalEntryNotFoundError as exc:
        if allow_download:
            reason = "the Hugging Face Hub could not be reached (offline, or HF_HUB_OFFLINE=1 is set)"
        else:
            reason = "it is not a local folder and not in the Hugging Face cache, and downloading is off"
        raise CheckpointError(f"cannot load checkpoint '{text}': {reason}. {HOW_TO_GET_WEIGHTS}") from exc
    except Exception as exc:  # repository not found, gated, network failures, ...
        raise CheckpointError(f"cannot fetch checkpoint '{text}' from the Hugging Face Hub: {exc}") from exc


def weight_files(folder: Path, kind: str = "diffusers") -> list[Path]:
    """The weight file(s) of one component folder: a single file or the shards named by an index file."""
    for name in _WEIGHT_NAMES[kind]:
        index = folder / f"{name}.index.json"
        if index.is_file():
            shard_names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return [folder / shard for shard in shard_names]
        if (folder / name).is_file():
            return [folder / name]
    return []


def missing_files(root: Path, need_text_encoder: bool) -> list[str]:
    """Relative paths of required checkpoint files that are absent (empty list: layout complete)."""
    missing = []
    for component in ("unet", "vae"):
        if not (root / component / "config.json").is_file():
            missing.append(f"{component}/config.json")
        if not weight_files(root / component):
            missing.append(f"{component}/{' or '.join(_WEIGHT_NAMES['diffusers'])}")
    if need_text_encoder:
        if not (root / "text_encoder" / "config.json").is_file():
            missing.append("text_encoder/config.json")
        if not weight_files(root / "text_encoder", "transformers"):
            missing.append(f"text_encoder/{' or '.join(_WEIGHT_NAMES['transformers'])}")
        missing += [f"tokenizer/{n}" for n in TOKENIZER_FILES[:3] if not (root / "tokenizer" / n).is_file()]
    return missing


def require_complete(root: Path, need_text_encoder: bool) -> None:
    """CheckpointError naming the missing files (:func:`missing_files`) and how to get the weights, if any."""
    missing = missing_files(root, need_text_encoder)
    if missing:
        raise CheckpointError(f"checkpoint {root} is incomplete; missing: {', '.join(missing)}. {HOW_TO_GET_WEIGHTS}")


def default_processing_resolution(root: Path, fallback: int) -> int:
    """The checkpoint's ``default_processing_resolution`` (``model_index.json``), or ``fallback`` without one."""
    index = root / "model_index.json"
    if not index.is_file():
        return fallback
    try:
        return int(json.loads(index.read_text()).get("default_processing_resolution", fallback))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"cannot read {index}: {exc}") from exc


def read_state_dict(files: list[Path]) -> dict[str, torch.Tensor]:
    """All tensors of the given ``.safetensors`` / ``.bin`` files, on the CPU."""
    state: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            if path.suffix == ".safetensors":
                part = load_safetensors(str(path), device="cpu")
            else:
                part = _torch_load(path)
        except Exception as exc:
            raise CheckpointError(f"cannot read weights file {path}: {exc}") from exc
        if not isinstance(part, dict) or not all(isinstance(v, torch.Tensor) for v in part.values()):
            raise CheckpointError(f"{path} is not a plain state dict of tensors")
        state.update(part)
    return state


def _torch_load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``module`` (possibly built on the meta device); any key or shape mismatch is an error."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(state)
        if state[k].shape != expected[k].shape
    )
    if missing or unexpected or mismatched:
        lines = [f"weights in {where} do not match the model architecture built from its config:"]
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
            if keys:
                shown = ", ".join(keys[:12]) + (f", ... ({len(keys)} in all)" if len(keys) > 12 else "")
                lines.append(f"  {title} ({len(keys)}): {shown}")
        raise CheckpointError("\n".join(lines))
    module.load_state_dict(state, strict=True, assign=True)
    left_on_meta = [n for n, t in list(module.named_parameters()) + list(module.named_buffers()) if t.is_meta]
    if left_on_meta:
        raise CheckpointError(f"weights in {where} left uninitialised tensors: {', '.join(left_on_meta[:12])}")


def load_diffusers_component(
    cls, folder: Path, extend: Callable[[torch.nn.Module], object] | None = None
) -> torch.nn.Module:
    """Build a diffusers model from ``folder/config.json`` and load its weights strictly.

    ``extend(model)`` may add modules (the FE block) before loading. Old attention key names
    (``query``/``key``/``value``/``proj_attn`` in early SD VAEs) are renamed the way diffusers does.
    """
    from accelerate import init_empty_weights

    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {config_path}: {exc}") from exc
    files = weight_files(folder)
    if not files:
        raise CheckpointError(f"no weights in {folder}: expected {' or '.join(_WEIGHT_NAMES['diffusers'])}")
    try:
        with init_empty_weights():
            model = cls.from_config(config)
            if extend is not None:
                extend(model)
    except Exception as exc:
        raise CheckpointError(f"{config_path} does not describe a valid {cls.__name__}: {exc}") from exc
    state = read_state_dict(files)
    model._fix_state_dict_keys_on_load(state)
    load_strict(model, state, str(folder))
    return model.eval()


def load_text_encoder(folder: Path):
    """The CLIP text encoder, loaded strictly. Both key layouts load: ``text_model.*`` (transformers 4, as
    published) and unprefixed (transformers 5)."""
    from transformers import CLIPTextModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        model, info = CLIPTextModel.from_pretrained(folder, output_loading_info=True, local_files_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot load the text encoder from {folder}: {exc}") from exc
    finally:
        hf_logging.enable_progress_bar()
    problems = {k: sorted(v) for k, v in info.items() if k != "error_msgs" and v}
    if problems or info.get("error_msgs"):
        raise CheckpointError(f"weights in {folder} do not match CLIPTextModel: {problems or info['error_msgs']}")
    return model.eval()
