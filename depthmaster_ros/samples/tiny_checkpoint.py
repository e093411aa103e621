"""Random-weight checkpoints in exactly the official ``zysong212/DepthMaster`` layout.

Used by the tests, the demo and anyone without the real weights. The files are what the published checkpoint
has, at toy sizes: ``model_index.json`` (Marigold's index, as published), ``unet/`` (a diffusers 0.24-era config
dump without FE keys, a ``.bin`` pickle state dict including ``fftblock.*``), ``vae/`` (safetensors),
``text_encoder/`` (transformers-4 key layout ``text_model.*``) and ``tokenizer/`` (a working byte-level BPE CLIP
tokenizer with a tiny vocabulary). A ``random_weights.json`` marker makes every tool say the weights are random.
The checkpoint loads through the very same code path as the real one.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file

from ..model.architectures import TINY_TEXT_ENCODER_CONFIG, TINY_UNET_CONFIG, TINY_VAE_CONFIG
from ..model.checkpoint_layout import mark_random, write_diffusers_component, write_model_index
from ..model.unet import build_depthmaster_unet

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _bytes_to_unicode() -> list[str]:
    """The 256 printable stand-ins for bytes used by byte-level BPE (GPT-2 / CLIP), in vocabulary order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + n) for n in range(len(extra))]


def write_tokenizer(folder: Path) -> int:
    """A CLIP tokenizer whose vocabulary is the 256 byte symbols, their word-final forms, a few merges and the
    two special tokens. Returns the vocabulary size."""
    symbols = _bytes_to_unicode()
    merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("an", "d</w>")]
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [BOS, EOS]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": "!"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    config = {**special, "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
              "errors": "replace", "add_prefix_space": False}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return len(vocab)


def write_tiny_checkpoint(
    out_dir: str | Path,
    seed: int = 0,
    unet_format: str = "bin",
    text_encoder_layout: str = "transformers4",
    unet_config: dict | None = None,
    fourier_enhancement: bool = True,
) -> Path:
    """Write a random-weight DepthMaster checkpoint to ``out_dir`` and return its path.

    ``unet_format``: ``bin`` (as published) or ``safetensors``. ``text_encoder_layout``: ``transformers4``
    (``text_model.*`` keys, as published) or ``transformers5`` (unprefixed keys). ``fourier_enhancement=False``
    writes a plain SD2-like U-Net: the starting point of stage-1 training.
    """
    from transformers import CLIPTextConfig, CLIPTextModel

    if unet_format not in ("bin", "safetensors"):
        raise ValueError(f"unet_format must be 'bin' or 'safetensors', got {unet_format!r}")
    if text_encoder_layout not in ("transformers4", "transformers5"):
        raise ValueError(f"text_encoder_layout must be 'transformers4' or 'transformers5', got {text_encoder_layout!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    unet_config = dict(unet_config or TINY_UNET_CONFIG)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = build_depthmaster_unet(unet_config) if fourier_enhancement else UNet2DConditionModel.from_config(
            unet_config)
        vae = AutoencoderKL.from_config(TINY_VAE_CONFIG)
        vocab_size = write_tokenizer(out / "tokenizer")
        text_config = CLIPTextConfig(
            vocab_size=vocab_size, bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=0,
            **TINY_TEXT_ENCODER_CONFIG,
        )
        text_config.hidden_size = unet_config["cross_attention_dim"]
        text_encoder = CLIPTextModel(text_config)

    write_model_index(out)
    write_diffusers_component(out / "unet", "UNet2DConditionModel", unet_config, unet.state_dict(), unet_format)
    write_diffusers_component(out / "vae", "AutoencoderKL", TINY_VAE_CONFIG, vae.state_dict())

    text_dir = out / "text_encoder"
    text_dir.mkdir(exist_ok=True)
    config = text_config.to_dict()
    config.update(architectures=["CLIPTextModel"], torch_dtype="float32")
    (text_dir / "config.json").write_text(json.dumps(config, indent=2))
    prefix = "text_model." if text_encoder_layout == "transformers4" else ""
    text_state = {prefix + k: v.contiguous() for k, v in text_encoder.state_dict().items()}
    save_file(text_state, text_dir / "model.safetensors", metadata={"format": "pt"})

    mark_random(out, seed, "depthmaster-make-tiny-checkpoint")
    return out
