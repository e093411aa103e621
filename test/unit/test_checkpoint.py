"""Checkpoint layout, strict loading and the errors a user sees."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from depthmaster_ros.model import CheckpointError, DepthMasterPipeline
from depthmaster_ros.model.checkpoint import read_state_dict, resolve_checkpoint
from depthmaster_ros.model.empty_text import CACHE_FILE_NAME, user_cache_dir
from depthmaster_ros.samples.tiny_checkpoint import write_tiny_checkpoint

UNET_BIN = "unet/diffusion_pytorch_model.bin"
VAE_ST = "vae/diffusion_pytorch_model.safetensors"


@pytest.fixture
def checkpoint(tmp_path):
    return write_tiny_checkpoint(tmp_path / "ckpt", seed=5)


def load(path):
    return DepthMasterPipeline.from_pretrained(path, device="cpu")


def assert_same_weights(module, state):
    loaded = module.state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert torch.equal(loaded[key].float(), value.float()), key


def assert_same_vae(vae, state):
    """The pipeline folds the decoder's 3-channel output conv into its channel mean (exact); the rest is as
    stored."""
    state = dict(state)
    for name in ("weight", "bias"):
        stored = state.pop(f"decoder.conv_out.{name}")
        assert torch.allclose(vae.decoder.conv_out.state_dict()[name], stored.mean(dim=0, keepdim=True))
    loaded = {k: v for k, v in vae.state_dict().items() if not k.startswith("decoder.conv_out.")}
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_official_layout_written(checkpoint):
    names = {p.relative_to(checkpoint).as_posix() for p in checkpoint.rglob("*") if p.is_file()}
    assert {"model_index.json", "unet/config.json", UNET_BIN, "vae/config.json", VAE_ST,
            "text_encoder/config.json", "text_encoder/model.safetensors", "tokenizer/vocab.json",
            "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json"} <= names
    index = json.loads((checkpoint / "model_index.json").read_text())
    assert index["_class_name"] == "MarigoldPipeline" and index["default_processing_resolution"] == 768
    unet_config = json.loads((checkpoint / "unet/config.json").read_text())
    assert unet_config["_class_name"] == "UNet2DConditionModel"
    assert not any("fft" in key for key in unet_config)  # FE is not in the config, as published
    assert any(k.startswith("fftblock.") for k in torch.load(checkpoint / UNET_BIN, weights_only=True))
    assert all(k.startswith("text_model.") for k in load_file(checkpoint / "text_encoder/model.safetensors"))


@pytest.mark.parametrize("unet_format", ["bin", "safetensors"])
def test_round_trip_loads_every_weight(tmp_path, unet_format):
    path = write_tiny_checkpoint(tmp_path / "c", seed=2, unet_format=unet_format)
    pipe = load(path)
    unet_file = path / f"unet/diffusion_pytorch_model.{unet_format}"
    assert unet_file.is_file()
    assert_same_weights(pipe.unet, read_state_dict([unet_file]))
    assert_same_vae(pipe.vae, load_file(path / VAE_ST))
    assert pipe.random_weights and pipe.default_processing_resolution == 768


def test_old_vae_attention_key_names_load(checkpoint):
    """Early SD VAEs name the mid-block attention query/key/value/proj_attn; they must load, not be dropped."""
    state = load_file(checkpoint / VAE_ST)
    renames = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    old = {}
    for key, value in state.items():
        for new, legacy in renames.items():
            if ".attentions.0." in key and f".{new}." in key:
                key = key.replace(f".{new}.", f".{legacy}.")
        old[key] = value
    assert any(".query." in k for k in old)
    save_file(old, checkpoint / VAE_ST)
    assert_same_vae(load(checkpoint).vae, state)


def rewrite_unet(checkpoint, edit):
    state = torch.load(checkpoint / UNET_BIN, weights_only=True)
    edit(state)
    torch.save(state, checkpoint / UNET_BIN)


def test_missing_key_is_an_error_listing_it(checkpoint):
    rewrite_unet(checkpoint, lambda s: s.pop("fftblock.conv_f4.weight"))
    with pytest.raises(CheckpointError, match=r"missing \(1\): fftblock\.conv_f4\.weight"):
        load(checkpoint)


def test_unexpected_key_is_an_error_listing_it(checkpoint):
    rewrite_unet(checkpoint, lambda s: s.update({"fftblock.extra.weight": torch.zeros(3)}))
    with pytest.raises(CheckpointError, match=r"unexpected \(1\): fftblock\.extra\.weight"):
        load(checkpoint)


def test_plain_sd_unet_without_fe_is_rejected(checkpoint):
    rewrite_unet(checkpoint, lambda s: [s.pop(k) for k in [k for k in s if k.startswith("fftblock.")]])
    with pytest.raises(CheckpointError, match=r"missing \(16\): fftblock\."):
        load(checkpoint)


def test_wrong_shape_is_an_error(checkpoint):
    rewrite_unet(checkpoint, lambda s: s.update({"conv_in.bias": torch.zeros(7)}))
    with pytest.raises(CheckpointError, match=r"wrong shape.*conv_in\.bias: checkpoint \(7,\)"):
        load(checkpoint)


def test_bin_never_executes_pickled_code(checkpoint, tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"conv_in.bias": Exploit(str(marker))}, checkpoint / UNET_BIN)
    with pytest.raises(CheckpointError, match="cannot read weights file"):
        load(checkpoint)
    assert not marker.exists()


class Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_missing_files_are_listed_with_how_to_get_weights(checkpoint):
    (checkpoint / UNET_BIN).unlink()
    (checkpoint / "vae/config.json").unlink()
    with pytest.raises(CheckpointError) as info:
        load(checkpoint)
    message = str(info.value)
    assert "unet/diffusion_pytorch_model.safetensors or diffusion_pytorch_model.bin" in message
    assert "vae/config.json" in message
    assert "hf download zysong212/DepthMaster" in message


def test_nonexistent_folder_and_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_checkpoint(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        resolve_checkpoint(tmp_path / "f")


def test_repo_id_offline_and_not_cached():
    with pytest.raises(CheckpointError, match="not in the Hugging Face cache.*downloading is off"):
        resolve_checkpoint("zysong212/DepthMaster")
    with pytest.raises(CheckpointError, match="could not be reached.*HF_HUB_OFFLINE"):
        resolve_checkpoint("zysong212/DepthMaster", allow_download=True)


def test_repo_id_found_in_hub_cache(checkpoint, tmp_path, monkeypatch):
    """A repo id resolves to its snapshot in the local Hugging Face cache without network."""
    hub = tmp_path / "hub"
    snapshot = hub / "models--someone--DepthMaster" / "snapshots" / ("a" * 40)
    shutil.copytree(checkpoint, snapshot)
    (hub / "models--someone--DepthMaster" / "refs").mkdir()
    (hub / "models--someone--DepthMaster" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    assert resolve_checkpoint("someone/DepthMaster") == snapshot
    assert not (snapshot / CACHE_FILE_NAME).exists()
    assert load("someone/DepthMaster").text_encoder_loaded
    # The embedding cache goes to the user cache dir, never into the hub's snapshot folder...
    assert not (snapshot / CACHE_FILE_NAME).exists()
    assert list(user_cache_dir().glob(f"*-{CACHE_FILE_NAME}"))
    # ... and serves the next load.
    assert not load("someone/DepthMaster").text_encoder_loaded


@pytest.mark.parametrize("layout", ["transformers4", "transformers5"])
def test_text_encoder_key_layouts_give_same_embedding(tmp_path, layout):
    reference = load(write_tiny_checkpoint(tmp_path / "t4", seed=9)).empty_text_embedding
    other = load(write_tiny_checkpoint(tmp_path / layout, seed=9, text_encoder_layout=layout))
    assert torch.equal(other.empty_text_embedding, reference)


def test_text_encoder_missing_weight_is_an_error(checkpoint):
    path = checkpoint / "text_encoder/model.safetensors"
    state = load_file(path)
    state.pop("text_model.final_layer_norm.weight")
    save_file(state, path)
    with pytest.raises(CheckpointError, match="final_layer_norm.weight"):
        load(checkpoint)
