"""depthmaster-train as a command: a short run with TensorBoard logs and validation (tiny models, CPU)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from depthmaster_ros.samples.tiny_checkpoint import write_tiny_checkpoint
from depthmaster_ros.train.config import load_config

from eval_fixtures import write_hypersim

SIZE = (64, 96)  # training resolution of the tests (H, W)


# ---------------------------------------------------------------------------------------------- losses
# ---------------------------------------------------------------------------------------------- data
def write_train_hypersim(root: Path, frames: int = 3) -> Path:
    write_hypersim(root, "hypersim/hypersim_processed_train.tar", "hypersim/filename_list_train_filtered.txt",
                   SIZE[1], SIZE[0], frames, as_tar=False, t_step=0.5)
    return root


# ---------------------------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from transformers import Dinov2Config, Dinov2Model

    root = tmp_path_factory.mktemp("train")
    base = write_tiny_checkpoint(root / "sd2_like", seed=1, fourier_enhancement=False)
    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=48,
                             patch_size=14, image_size=56)).save_pretrained(root / "dino")
    return {"base": base, "dino": root / "dino", "data": write_train_hypersim(root / "data"), "root": root}


def config_file(path: Path, **values) -> Path:
    path.write_text(yaml.safe_dump(values))
    return path


def base_config(assets, stage, base, output, **extra):
    config = {"stage": stage, "base": str(base), "output": str(output), "max_steps": 4, "batch_size": 2,
              "effective_batch_size": 2, "lr": 1.0e-3, "num_workers": 0, "log_every": 1, "checkpoint_every": 4,
              "schedule": {"total_steps": 100, "warmup_steps": 1, "final_ratio": 0.5},
              "datasets": [{"kind": "hypersim", "probability": 1.0, "data_root": str(assets["data"]),
                            "resize": list(SIZE)}]}
    if stage == 1:
        config["feature_alignment"] = {"encoder": str(assets["dino"]), "projector_dim": 16}
    config.update(extra)
    return config


def fixed_batch_loss(trainer):
    batch = next(trainer.batches(0, 1))
    with torch.no_grad():
        return {k: float(v) for k, v in trainer.losses(batch, trainer._pipe()).items()}


@pytest.fixture(scope="module")
def stage1(assets):
    from depthmaster_ros.train.trainer import Trainer

    output = assets["root"] / "stage1"
    config = load_config(config_file(assets["root"] / "s1.yaml", **base_config(assets, 1, assets["base"], output,
                                                                                max_steps=6, checkpoint_every=6)))
    trainer = Trainer(config)
    before = fixed_batch_loss(trainer)
    trainer.train()
    return {"before": before, "after": fixed_batch_loss(trainer), "checkpoint": trainer.checkpoint_dir(6),
            "trainer": trainer}


def test_command_line_run_with_tensorboard_logs_and_validation(assets, stage1, tmp_path):
    write_hypersim(tmp_path / "val", "hypersim/hypersim_processed_val.tar",
                   "hypersim/filename_list_val_filtered_small_80.txt", 64, 48, 2, as_tar=True)
    validation = {"dataset": "hypersim", "data_root": str(tmp_path / "val"), "every": 2, "limit": 2}
    path = config_file(tmp_path / "cli.yaml", **base_config(assets, 2, stage1["checkpoint"], tmp_path / "run",
                                                            max_steps=2, checkpoint_every=2, validation=validation))
    result = subprocess.run([str(Path(sys.executable).parent / "depthmaster-train"), "--config", str(path)],
                            capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    assert "done at step 2" in result.stderr
    assert list((tmp_path / "run" / "logs").glob("events.out.tfevents.*"))
    assert (tmp_path / "run" / "checkpoints" / "step_000002" / "unet" / "config.json").is_file()
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    validated = [r for r in records if r.get("validation") == "hypersim"]
    summary = json.loads((tmp_path / "run" / "validation" / "step_000002" / "summary.json").read_text())
    assert len(validated) == 1 and validated[0]["step"] == 2 and summary["images"] == 2
    assert validated[0]["abs_rel"] == pytest.approx(summary["metrics"]["abs_rel"]) and validated[0]["abs_rel"] > 0
    result = subprocess.run([str(Path(sys.executable).parent / "depthmaster-train"), "--config",
                             str(config_file(tmp_path / "bad.yaml", stage=3, base="b", output="o", datasets=[]))],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "stage must be 1 or 2" in result.stderr
