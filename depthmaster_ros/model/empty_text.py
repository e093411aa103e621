"""The empty-prompt text embedding that conditions DepthMaster's U-Net.

The tokenizer turns ``""`` into ``[BOS, EOS]`` (no padding to 77 tokens) and the CLIP text encoder's last hidden
state gives a ``[1, 2, D]`` embedding (D = 1024 for SD2). It never changes for a checkpoint, so it is computed once
in float32 and cached as a safetensors file; later loads read the cache and never load the 1.4 GB text encoder.

The cache file is ``empty_text_embedding.safetensors`` in the checkpoint folder when that folder is writable and
not inside the Hugging Face cache, else in ``$XDG_CACHE_HOME/depthmaster_ros`` (``~/.cache/depthmaster_ros``).
It records a fingerprint of the text encoder and tokenizer files it came from and is recomputed when they change.
A checkpoint folder without ``text_encoder/`` and ``tokenizer/`` still loads if its cache file is present.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .checkpoint import TOKENIZER_FILES, CheckpointError, load_text_encoder, weight_files

CACHE_FILE_NAME = "empty_text_embedding.safetensors"
_TENSOR_KEY = "empty_text_embedding"
_SAMPLE_BYTES = 1 << 20


def user_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "depthmaster_ros"


def text_encoder_fingerprint(root: Path) -> str | None:
    """A digest of the tokenizer files, the text-encoder config and its weight files (name, size and the first
    and last MiB: enough to tell checkpoints apart without reading 1.4 GB). None if there is no text encoder."""
    weights = weight_files(root / "text_encoder", "transformers")
    config = root / "text_encoder" / "config.json"
    if not weights or not config.is_file():
        return None
    digest = hashlib.sha256()
    for path in [config] + [root / "tokenizer" / n for n in TOKENIZER_FILES]:
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    for path in weights:
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}".encode())
        with open(path, "rb") as fh:
            digest.update(fh.read(_SAMPLE_BYTES))
            fh.seek(max(size - _SAMPLE_BYTES, 0))
            digest.update(fh.read(_SAMPLE_BYTES))
    return digest.hexdigest()


def cache_locations(root: Path) -> list[Path]:
    """Where the cached embedding of checkpoint ``root`` may live, in the order they are tried."""
    resolved = root.resolve()
    key = hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    in_hub_cache = any(part.startswith("models--") for part in resolved.parts)
    shared = user_cache_dir() / f"{key}-{CACHE_FILE_NAME}"
    return [shared] if in_hub_cache else [root / CACHE_FILE_NAME, shared]


def read_cached(path: Path, fingerprint: str | None) -> torch.Tensor | None:
    """The cached embedding, or None if absent, unreadable or made from other text-encoder files."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as fh:
            stored = (fh.metadata() or {}).get("fingerprint")
            if fingerprint is not None and stored != fingerprint:
                return None
            return fh.get_tensor(_TENSOR_KEY)
    except Exception:
        return None


def write_cache(path: Path, embedding: torch.Tensor, fingerprint: str) -> bool:
    """Write atomically; False (and nothing written) where the location is not writable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".safetensors")
        os.close(fd)
        save_file({_TENSOR_KEY: embedding.contiguous()}, tmp, metadata={"fingerprint": fingerprint})
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        return True
    except OSError:
        if "tmp" in locals() and os.path.exists(tmp):
            os.unlink(tmp)
        return False


def compute_empty_text_embedding(root: Path) -> torch.Tensor:
    """Run the tokenizer and text encoder of checkpoint ``root`` on the empty prompt: float32 ``[1, 2, D]``."""
    from transformers import CLIPTokenizer

    try:
        tokenizer = CLIPTokenizer.from_pretrained(root / "tokenizer", local_files_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot load the tokenizer from {root / 'tokenizer'}: {exc}") from exc
    encoder = load_text_encoder(root / "text_encoder").float()
    ids = tokenizer(
        "", padding="do_not_pad", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
    with torch.inference_mode():
        return encoder(ids)[0].float().clone()


def load_empty_text_embedding(root: Path) -> tuple[torch.Tensor, str]:
    """The embedding and where it came from: ``"cache:<path>"`` or ``"text_encoder"`` (freshly computed)."""
    fingerprint = text_encoder_fingerprint(root)
    locations = cache_locations(root)
    for path in locations:
        cached = read_cached(path, fingerprint)
        if cached is not None:
            return cached, f"cache:{path}"
    if fingerprint is None:
        raise CheckpointError(
            f"checkpoint {root} has no text_encoder/ (config.json + model.safetensors) and no cached "
            f"{CACHE_FILE_NAME}; one of them is needed for the empty-prompt embedding"
        )
    embedding = compute_empty_text_embedding(root)
    for path in locations:
        if write_cache(path, embedding, fingerprint):
            break
    return embedding, "text_encoder"
