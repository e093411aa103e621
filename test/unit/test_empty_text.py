"""The empty-prompt embedding: what it is, and that it is cached so the text encoder is loaded only once."""

import shutil

import pytest
import torch
from transformers import CLIPTextModel, CLIPTokenizer

from depthmaster_ros.model import CheckpointError, DepthMasterPipeline
from depthmaster_ros.model import empty_text
from depthmaster_ros.model.empty_text import CACHE_FILE_NAME, user_cache_dir
from depthmaster_ros.samples.tiny_checkpoint import write_tiny_checkpoint


@pytest.fixture
def checkpoint(tmp_path):
    return write_tiny_checkpoint(tmp_path / "ckpt", seed=11)


def load(path):
    return DepthMasterPipeline.from_pretrained(path, device="cpu")


def forbid_text_encoder(monkeypatch):
    def fail(*_args, **_kwargs):
        raise AssertionError("the text encoder was loaded although a cached embedding exists")

    monkeypatch.setattr(empty_text, "load_text_encoder", fail)


def test_embedding_is_last_hidden_state_of_bos_eos(checkpoint):
    tokenizer = CLIPTokenizer.from_pretrained(checkpoint / "tokenizer")
    encoder = CLIPTextModel.from_pretrained(checkpoint / "text_encoder")
    ids = torch.tensor([[tokenizer.bos_token_id, tokenizer.eos_token_id]])
    with torch.no_grad():
        expected = encoder(ids).last_hidden_state
    embedding = load(checkpoint).empty_text_embedding
    assert embedding.shape == (1, 2, 32)  # 2 tokens, no padding to 77
    assert torch.allclose(embedding, expected, atol=1e-6)


def test_second_load_uses_cache_without_text_encoder(checkpoint, monkeypatch):
    first = load(checkpoint)
    assert first.text_encoder_loaded
    assert (checkpoint / CACHE_FILE_NAME).is_file()
    forbid_text_encoder(monkeypatch)
    second = load(checkpoint)
    assert not second.text_encoder_loaded
    assert torch.equal(first.empty_text_embedding, second.empty_text_embedding)


def test_slim_checkpoint_without_text_encoder_loads_from_cache(checkpoint, monkeypatch):
    reference = load(checkpoint).empty_text_embedding
    shutil.rmtree(checkpoint / "text_encoder")
    shutil.rmtree(checkpoint / "tokenizer")
    forbid_text_encoder(monkeypatch)
    assert torch.equal(load(checkpoint).empty_text_embedding, reference)


def test_cache_is_recomputed_when_text_encoder_changes(checkpoint, tmp_path):
    load(checkpoint)
    other = write_tiny_checkpoint(tmp_path / "other", seed=12)
    shutil.rmtree(checkpoint / "text_encoder")
    shutil.copytree(other / "text_encoder", checkpoint / "text_encoder")
    reloaded = load(checkpoint)
    assert reloaded.text_encoder_loaded
    assert torch.equal(reloaded.empty_text_embedding, load(other).empty_text_embedding)


def test_unwritable_checkpoint_folder_caches_in_user_dir(checkpoint, monkeypatch):
    real_write = empty_text.write_cache
    monkeypatch.setattr(
        empty_text, "write_cache", lambda path, *a: False if path.parent == checkpoint else real_write(path, *a)
    )
    reference = load(checkpoint).empty_text_embedding
    assert not (checkpoint / CACHE_FILE_NAME).exists()
    assert any(p.read_bytes() for p in user_cache_dir().glob(f"*-{CACHE_FILE_NAME}"))
    forbid_text_encoder(monkeypatch)
    assert torch.equal(load(checkpoint).empty_text_embedding, reference)


def test_no_text_encoder_and_no_cache_is_an_error(checkpoint):
    shutil.rmtree(checkpoint / "text_encoder")
    with pytest.raises(CheckpointError, match="missing: text_encoder/config.json, text_encoder/model.safetensors"):
        load(checkpoint)
