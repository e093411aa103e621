"""Training data: Hypersim and Virtual KITTI 2 in the layouts of the paper's preprocessing, and a robot's own
RGB-D rosbags, mixed by probability with one dataset per micro-batch (depthmaster-method.md 4.1).

Samples are read with the evaluation readers (same archives-or-folders, file lists, decoders and KITTI benchmark
crop), then: horizontal flip (p = 0.5), target normalisation (``targets.py``), resize of every raster with
nearest-exact when the dataset asks for it (Hypersim: 480x640). The order of micro-batches is a pure function of
(seed, micro-step), so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from ..eval.datasets import DatasetError, DatasetSpec, EvalDataset
from .targets import normalized_sqrt_disparity

TRAIN_SPECS = {
    "hypersim": DatasetSpec("hypersim", "hypersim/hypersim_processed_train.tar",
                            "hypersim/filename_list_train_filtered.txt", 0, 1e-5, 65.0, "png_1000"),
    "vkitti": DatasetSpec("vkitti", "vkitti/vkitti.tar", "vkitti/vkitti_train.txt", 0, 1e-5, 80.0, "png_100",
                          kitti_crop=True),
}
DEFAULT_RESIZE = {"hypersim": (480, 640)}


@dataclass
class SourceConfig:
    """One training source of the config file's ``datasets`` list."""

    kind: str  # hypersim | vkitti | rgbd_bag
    probability: float
    data_root: str
    filenames: str | None = None
    resize: tuple[int, int] | None = None  # (height, width), nearest-exact; default per dataset
    min_depth: float | None = None  # override the dataset's valid range
    max_depth: float | None = None
    # rgbd_bag only
    color_topic: str | None = None
    depth_topic: str | None = None
    every_n: int = 1


class TrainingSource:
    """One dataset as training samples: dict(rgb [3, H, W] in [-1, 1], depth [1, H, W] target in [-1, 1],
    valid [1, H, W] bool)."""

    def __init__(self, config: SourceConfig, cache_dir: Path | None = None):
        spec, root, filelist = self._resolve(config, cache_dir)
        if config.min_depth is not None or config.max_depth is not None:
            spec = DatasetSpec(**{**spec.__dict__, "min_depth": config.min_depth if config.min_depth is not None
                                  else spec.min_depth,
                                  "max_depth": config.max_depth if config.max_depth is not None else spec.max_depth})
        try:
            self.reader = EvalDataset(spec, root, filelist)
        except DatasetError as exc:
            if config.kind not in TRAIN_SPECS:
                raise
            raise DatasetError(f"{config.kind} training data: {exc}. Hypersim comes from Marigold's preprocessing "
                               "(script/depth/dataset_preprocess/hypersim/), Virtual KITTI 2 from its original "
                               "download; the file lists from Marigold's data_split/") from exc
        self.resize = tuple(config.resize) if config.resize else DEFAULT_RESIZE.get(config.kind)

    @staticmethod
    def _resolve(config: SourceConfig, cache_dir: Path | None):
        if config.kind in TRAIN_SPECS:
            return TRAIN_SPECS[config.kind], Path(config.data_root), config.filenames
        if config.kind == "rgbd_bag":
            from .rgbd_bag import RGBD_SPEC, extract_rgbd_bag

            if not config.color_topic or not config.depth_topic:
                raise ValueError("an rgbd_bag source needs color_topic and depth_topic")
            folder = extract_rgbd_bag(Path(config.data_root), (cache_dir or Path(".")) / "rgbd_bag_cache",
                                      config.color_topic, config.depth_topic, config.every_n)
            return RGBD_SPEC, folder, folder / "filenames.txt"
        raise ValueError(f"unknown training dataset kind {config.kind!r}; expected hypersim, vkitti or rgbd_bag")

    def __len__(self) -> int:
        return len(self.reader)

    def sample(self, index: int, flip: bool) -> dict:
        sample = self.reader.load(index)
        spec = self.reader.spec
        rgb = torch.from_numpy(np.array(sample.rgb)).permute(2, 0, 1).float() / 255.0 * 2.0 - 1.0
        depth = torch.from_numpy(np.array(sample.depth, dtype=np.float32))[None]
        valid = torch.from_numpy((sample.depth > spec.min_depth) & (sample.depth < spec.max_depth))[None]
        if flip:
            rgb, depth, valid = rgb.flip(-1), depth.flip(-1), valid.flip(-1)
        target = normalized_sqrt_disparity(depth, valid)
        if self.resize is not None and tuple(rgb.shape[-2:]) != self.resize:
            rgb, target = (F.interpolate(x[None], size=self.resize, mode="nearest-exact")[0] for x in (rgb, target))
            valid = F.interpolate(valid[None].float(), size=self.resize, mode="nearest-exact")[0] > 0.5
        return {"rgb": rgb, "depth": target, "valid": valid}


class MixedTrainingData(Dataset):
    """Indexed by (source, sample, flip) keys from :class:`MixedBatchSampler`."""

    def __init__(self, sources: list[TrainingSource]):
        self.sources = sources

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def __getitem__(self, key) -> dict:
        source, index, flip = key
        return self.sources[source].sample(index, flip)


class MixedBatchSampler(Sampler):
    """Micro-batches of keys: each from one source picked by probability, samples and flips at random, all drawn
    from a generator seeded by (seed, micro-step) so any stretch of the sequence can be regenerated."""

    def __init__(self, sizes: list[int], probabilities: list[float], batch_size: int, seed: int,
                 flip_probability: float = 0.5, start: int = 0, count: int | None = None):
        total = sum(probabilities)
        if total <= 0 or any(p < 0 for p in probabilities) or len(sizes) != len(probabilities):
            raise ValueError(f"dataset probabilities must be >= 0 with a positive sum, got {probabilities}")
        self.sizes, self.probabilities = sizes, [p / total for p in probabilities]
        self.batch_size, self.seed, self.flip_probability = batch_size, seed, flip_probability
        self.start, self.count = start, count

    def batch(self, micro_step: int) -> list[tuple[int, int, bool]]:
        rng = np.random.default_rng([self.seed, micro_step])
        source = int(rng.choice(len(self.sizes), p=self.probabilities))
        indices = rng.integers(0, self.sizes[source], self.batch_size)
        flips = rng.random(self.batch_size) < self.flip_probability
        return [(source, int(i), bool(f)) for i, f in zip(indices, flips)]

    def __iter__(self):
        step = self.start
        while self.count is None or step < self.start + self.count:
            yield self.batch(step)
            step += 1

    def __len__(self) -> int:
        if self.count is None:
            raise TypeError("an endless sampler has no length")
        return self.count
