"""The training configuration: one YAML with the stage, paths, data and every hyper-parameter. Defaults are the
paper's (depthmaster-method.md 4.3 to 4.6); unknown keys are an error, so a typo never trains silently with a
default."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .data import SourceConfig

STAGE_DEFAULTS = {1: {"batch_size": 8, "lr": 3.0e-5}, 2: {"batch_size": 1, "lr": 3.0e-6}}


@dataclass
class FeatureAlignmentConfig:
    encoder: str = "facebook/dinov2-giant"  # the paper's Depth-Anything-V2-Giant encoder is not public
    weight: float = 1.0
    projector_dim: int = 1536
    allow_download: bool = False


@dataclass
class GradientLossConfig:
    weight: float = 1.0e-3
    delta: float = 0.2


@dataclass
class ScheduleConfig:
    total_steps: int = 25000
    warmup_steps: int = 100
    final_ratio: float = 0.01


@dataclass
class ValidationConfig:
    dataset: str = "hypersim"  # an evaluation dataset name (depthmaster_ros.eval.datasets.SPECS)
    data_root: str = ""
    filenames: str | None = None
    limit: int = 80
    every: int = 2000
    processing_res: int = 0


@dataclass
class TrainConfig:
    stage: int
    base: str  # stage 1: a Stable Diffusion 2 pipeline folder; stage 2: a stage-1 output (or DepthMaster to fine-tune)
    output: str
    datasets: list[SourceConfig]
    max_steps: int = 20000
    batch_size: int | None = None  # micro-batch; default per stage (8 / 1)
    effective_batch_size: int = 32
    lr: float | None = None  # default per stage (3e-5 / 3e-6)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    seed: int = 2024
    flip_probability: float = 0.5
    mixed_precision: str = "no"  # no | bf16
    gradient_checkpointing: bool = False
    num_workers: int = 2
    log_every: int = 10
    checkpoint_every: int = 2000
    feature_alignment: FeatureAlignmentConfig = field(default_factory=FeatureAlignmentConfig)
    gradient_loss: GradientLossConfig = field(default_factory=GradientLossConfig)
    validation: ValidationConfig | None = None

    def __post_init__(self):
        if self.stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {self.stage}")
        defaults = STAGE_DEFAULTS[self.stage]
        self.batch_size = self.batch_size or defaults["batch_size"]
        self.lr = self.lr if self.lr is not None else defaults["lr"]
        if self.effective_batch_size % self.batch_size:
            raise ValueError(f"effective_batch_size {self.effective_batch_size} is not a multiple of batch_size "
                             f"{self.batch_size}")
        if self.mixed_precision not in ("no", "bf16"):
            raise ValueError(f"mixed_precision must be 'no' or 'bf16', got {self.mixed_precision!r}")
        if not self.datasets:
            raise ValueError("datasets: at least one training source is needed")
        for name in ("max_steps", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")

    @property
    def accumulation_steps(self) -> int:
        return self.effective_batch_size // self.batch_size


def _build(cls, values: Any, where: str):
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping, got {values!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**values)


def load_config(path: str | Path) -> TrainConfig:
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read the training config {path}: {exc}") from exc
    raw = dict(raw)
    try:
        raw["datasets"] = [_build(SourceConfig, d, f"datasets[{i}]") for i, d in enumerate(raw.get("datasets", []))]
        for key, cls in (("schedule", ScheduleConfig), ("feature_alignment", FeatureAlignmentConfig),
                         ("gradient_loss", GradientLossConfig), ("validation", ValidationConfig)):
            if raw.get(key) is not None:
                raw[key] = _build(cls, raw[key], key)
        return _build(TrainConfig, raw, str(path))
    except TypeError as exc:  # a missing required key
        raise ValueError(f"{path}: {exc}") from exc
