"""Training: the losses against independent restatements, the schedule, the data, and short real runs of both
stages on a tiny synthetic dataset with tiny models (CPU)."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from depthmaster_ros.model import DepthMasterPipeline
from depthmaster_ros.samples.tiny_checkpoint import write_tiny_checkpoint
from depthmaster_ros.samples.sample_scene import PinholeCamera, render
from depthmaster_ros.train.config import load_config
from depthmaster_ros.train.data import MixedBatchSampler, SourceConfig, TrainingSource
from depthmaster_ros.train.losses import (
    feature_alignment_kl,
    gradient_loss,
    latent_valid_mask,
    reversed_huber,
)
from depthmaster_ros.train.schedule import lr_factor
from depthmaster_ros.train.targets import normalized_sqrt_disparity

from eval_fixtures import write_hypersim

SIZE = (64, 96)  # training resolution of the tests (H, W)


# ---------------------------------------------------------------------------------------------- losses
def test_latent_mask_is_maxpooled_validity():
    rng = np.random.default_rng(0)
    valid = rng.random((2, 1, 32, 48)) > 0.02
    mask = latent_valid_mask(torch.from_numpy(valid))
    assert mask.shape == (2, 4, 4, 6)
    for b in range(2):
        for i in range(4):
            for j in range(6):
                assert bool(mask[b, 0, i, j]) == bool(valid[b, 0, 8 * i:8 * i + 8, 8 * j:8 * j + 8].all())
    assert torch.equal(mask[:, 0], mask[:, 3])


def test_feature_alignment_kl_is_mean_over_all_elements():
    rng = np.random.default_rng(1)
    unet, dino = rng.normal(size=(2, 5, 7)), rng.normal(size=(2, 5, 7))
    p = np.exp(dino) / np.exp(dino).sum(-1, keepdims=True)
    log_q = unet - np.log(np.exp(unet).sum(-1, keepdims=True))
    expected = np.mean(p * (np.log(p) - log_q))
    assert feature_alignment_kl(torch.from_numpy(unet), torch.from_numpy(dino)).item() == pytest.approx(expected)


def test_gradient_loss_against_loops():
    rng = np.random.default_rng(2)
    pred, target = rng.normal(size=(1, 1, 6, 7)), rng.normal(size=(1, 1, 6, 7))
    valid = rng.random((1, 1, 6, 7)) > 0.3
    p, t = np.where(valid, pred, 0.0)[0, 0], np.where(valid, target, 0.0)[0, 0]
    total, count = 0.0, 0
    for i in range(5):
        for j in range(6):
            pairs = [((i + 1, j + 1), (i + 1, j)), ((i + 1, j + 1), (i, j + 1)), ((i, j + 1), (i + 1, j)),
                     ((i + 1, j + 1), (i, j))]
            for a, b in pairs:
                e = (p[a] - p[b]) - (t[a] - t[b])
                total += 0.5 * e * e if abs(e) > 0.2 else 0.2 * abs(e) + 0.5 * 0.2**2
                count += 1
    loss = gradient_loss(torch.from_numpy(pred), torch.from_numpy(target), torch.from_numpy(valid))
    assert loss.item() == pytest.approx(total / count)
    # linear below delta, quadratic above, the same slope at delta
    e = torch.tensor([0.1, 0.3], requires_grad=True)
    reversed_huber(e).sum().backward()
    assert e.grad.tolist() == pytest.approx([0.2, 0.3])


def test_quantile_normalisation():
    rng = np.random.default_rng(3)
    depth = rng.uniform(0.5, 20.0, (40, 50))
    valid = rng.random(depth.shape) > 0.2
    s = np.sqrt(1.0 / depth)
    low, high = np.quantile(s[valid], [0.02, 0.98])
    expected = np.clip((np.where(valid, s, 0.0) - low) / (high - low) * 2 - 1, -1, 1)
    got = normalized_sqrt_disparity(torch.from_numpy(depth), torch.from_numpy(valid)).numpy()
    assert np.allclose(got, expected, atol=1e-6)
    assert (got[~valid] == -1).all()  # invalid pixels end at -1 (far)


@pytest.mark.parametrize("step, factor", [(0, 0.0), (50, 0.5), (100, 1.0), (12550, 0.1),
                                          (20000, math.exp(19900 / 24900 * math.log(0.01))), (30000, 0.01)])
def test_lr_schedule(step, factor):
    assert lr_factor(step) == pytest.approx(factor)


def test_sampler_is_a_function_of_the_micro_step():
    sampler = MixedBatchSampler([10, 20], [0.9, 0.1], 4, seed=7)
    assert sampler.batch(5) == sampler.batch(5) and sampler.batch(5) != sampler.batch(6)
    assert list(MixedBatchSampler([10, 20], [0.9, 0.1], 4, seed=7, start=3, count=2)) == [sampler.batch(3),
                                                                                           sampler.batch(4)]
    sources = [sampler.batch(i)[0][0] for i in range(400)]
    assert 0.85 < sources.count(0) / 400 < 0.95 and len({len(set(k[0] for k in sampler.batch(i))) for i in
                                                         range(50)}) == 1  # one source per micro-batch


# ---------------------------------------------------------------------------------------------- data
def write_train_hypersim(root: Path, frames: int = 3) -> Path:
    write_hypersim(root, "hypersim/hypersim_processed_train.tar", "hypersim/filename_list_train_filtered.txt",
                   SIZE[1], SIZE[0], frames, as_tar=False, t_step=0.5)
    return root


def test_training_source_reads_hypersim_and_vkitti_layouts(tmp_path):
    root = write_train_hypersim(tmp_path)
    source = TrainingSource(SourceConfig("hypersim", 1.0, str(root), resize=(32, 48)))
    sample = source.sample(1, flip=False)
    assert sample["rgb"].shape == (3, 32, 48) and sample["depth"].shape == (1, 32, 48)
    assert sample["rgb"].min() >= -1 and sample["rgb"].max() <= 1
    assert sample["depth"].min() == -1 and sample["depth"].max() == 1 and sample["valid"].dtype == torch.bool
    flipped = TrainingSource(SourceConfig("hypersim", 1.0, str(root))).sample(1, flip=True)
    plain = TrainingSource(SourceConfig("hypersim", 1.0, str(root))).sample(1, flip=False)
    assert flipped["rgb"].shape[-2:] == (480, 640)  # Hypersim's default training resize
    assert torch.equal(flipped["depth"], plain["depth"].flip(-1))

    # Virtual KITTI 2: depth PNG in centimeters, KITTI benchmark crop to 352x1216.
    vk = tmp_path / "vk"
    scene = vk / "vkitti" / "vkitti" / "Scene01" / "clone" / "frames"
    (scene / "rgb" / "Camera_0").mkdir(parents=True)
    (scene / "depth" / "Camera_0").mkdir(parents=True)
    rgb, depth = render(PinholeCamera.with_size(1242, 375))
    Image.fromarray(rgb).save(scene / "rgb/Camera_0/rgb_00000.jpg")
    cm = np.round(np.nan_to_num(depth, posinf=655.35) * 100).astype(np.uint16)
    Image.fromarray(cm).save(scene / "depth/Camera_0/depth_00000.png")
    (vk / "data_split" / "vkitti").mkdir(parents=True)
    (vk / "data_split" / "vkitti" / "vkitti_train.txt").write_text(
        "Scene01/clone/frames/rgb/Camera_0/rgb_00000.jpg Scene01/clone/frames/depth/Camera_0/depth_00000.png\n")
    sample = TrainingSource(SourceConfig("vkitti", 1.0, str(vk))).sample(0, flip=False)
    assert sample["depth"].shape == (1, 352, 1216)
    expected_valid = (cm[375 - 352:, 13:13 + 1216] / 100.0 < 80)
    assert np.array_equal(sample["valid"][0].numpy(), expected_valid)  # the 655.35 m sky is invalid


def test_rgbd_bag_pairs_and_masks(tmp_path):
    from depthmaster_ros.samples.sample_bag import TOPICS, write_sample_bag
    from depthmaster_ros.train.rgbd_bag import extract_rgbd_bag

    bag = write_sample_bag(tmp_path / "bag", frames=5, width=64, height=48)
    folder = extract_rgbd_bag(bag, tmp_path / "cache", TOPICS["image"], TOPICS["truth"], every_n=2)
    lines = (folder / "filenames.txt").read_text().split("\n")[:-1]
    assert len(lines) == 3  # pairs 0, 2, 4
    for number, line in enumerate(lines):
        rgb_path, depth_path = line.split()
        expected_rgb, truth = render(PinholeCamera.with_size(64, 48), t=2 * number / 10.0)
        assert np.array_equal(np.asarray(Image.open(folder / rgb_path)), expected_rgb)
        mm = np.asarray(Image.open(folder / depth_path)).astype(np.float64)
        assert np.array_equal(mm == 0, ~np.isfinite(truth))  # sky: no measurement
        assert np.allclose(mm[np.isfinite(truth)] / 1000, truth[np.isfinite(truth)], atol=5e-4)
    assert extract_rgbd_bag(bag, tmp_path / "cache", TOPICS["image"], TOPICS["truth"], every_n=2) == folder
    source = TrainingSource(SourceConfig("rgbd_bag", 1.0, str(bag), color_topic=TOPICS["image"],
                                         depth_topic=TOPICS["truth"], every_n=2, max_depth=8.0), tmp_path)
    sample = source.sample(0, flip=False)
    mm = np.asarray(Image.open(folder / lines[0].split()[1])).astype(np.float64) / 1000
    assert np.array_equal(sample["valid"][0].numpy(), (mm > 1e-3) & (mm < 8.0))
    with pytest.raises(ValueError, match="topic /nope is not in"):
        extract_rgbd_bag(bag, tmp_path / "other", "/nope", TOPICS["truth"])


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


def test_stage1_lowers_the_loss_and_saves_the_official_layout(stage1):
    assert stage1["after"]["loss"] < stage1["before"]["loss"]
    assert stage1["before"]["feature_alignment"] > 0 and stage1["before"]["latent_mse"] > 0
    checkpoint = stage1["checkpoint"]
    for name in ("model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                 "vae/config.json", "text_encoder/config.json", "tokenizer/vocab.json",
                 "empty_text_embedding.safetensors", "feature_adapter.safetensors", "training.json"):
        assert (checkpoint / name).is_file(), name
    from safetensors import safe_open

    with safe_open(str(checkpoint / "unet/diffusion_pytorch_model.safetensors"), "pt") as handle:
        assert not any(key.startswith("fftblock.") for key in handle.keys())  # stage 1: no FE


def test_stage2_from_stage1_adds_a_new_fe_and_loads_in_the_pipeline(assets, stage1):
    from depthmaster_ros.model.checkpoint import read_state_dict, weight_files
    from depthmaster_ros.train.trainer import Trainer

    output = assets["root"] / "stage2"
    config = load_config(config_file(assets["root"] / "s2.yaml", **base_config(assets, 2, stage1["checkpoint"],
                                                                                output, max_steps=5,
                                                                                checkpoint_every=5)))
    trainer = Trainer(config)
    unet = trainer.accelerator.unwrap_model(trainer.unet)
    stage1_weights = read_state_dict(weight_files(stage1["checkpoint"] / "unet"))
    assert hasattr(unet, "fftblock") and all(torch.equal(unet.state_dict()[k], v) for k, v in stage1_weights.items())
    before = fixed_batch_loss(trainer)
    trainer.train()
    after = fixed_batch_loss(trainer)
    assert after["loss"] < before["loss"] and before["gradient"] > 0
    pipe = DepthMasterPipeline.from_pretrained(trainer.checkpoint_dir(5), device="cpu")
    assert not pipe.text_encoder_loaded  # the embedding cache was saved with the checkpoint
    prediction = pipe(render(PinholeCamera.with_size(96, 64))[0], processing_res=0)
    assert prediction.shape == (64, 96) and 0 <= prediction.min() and prediction.max() <= 1


def test_resume_equals_an_uninterrupted_run(assets, stage1):
    from depthmaster_ros.train.trainer import Trainer

    def final_weights(trainer):
        return {k: v.clone() for k, v in trainer.accelerator.unwrap_model(trainer.unet).state_dict().items()}

    common = dict(max_steps=4, checkpoint_every=2, batch_size=1, effective_batch_size=2)
    whole = Trainer(load_config(config_file(assets["root"] / "w.yaml", **base_config(
        assets, 2, stage1["checkpoint"], assets["root"] / "whole", **common))))
    whole.train()
    expected = final_weights(whole)

    first = Trainer(load_config(config_file(assets["root"] / "a.yaml", **base_config(
        assets, 2, stage1["checkpoint"], assets["root"] / "split", **{**common, "max_steps": 2}))))
    first.train()
    resumed = Trainer(load_config(config_file(assets["root"] / "b.yaml", **base_config(
        assets, 2, stage1["checkpoint"], assets["root"] / "split", **common))), resume=True)
    assert resumed.step == 2
    resumed.train()
    assert resumed.step == 4
    got = final_weights(resumed)
    assert all(torch.allclose(got[k], expected[k], atol=1e-6) for k in expected)
    assert resumed.scheduler.get_last_lr() == whole.scheduler.get_last_lr()


def test_config_errors(tmp_path):
    good = {"stage": 2, "base": "b", "output": "o", "datasets": [{"kind": "hypersim", "probability": 1.0,
                                                                   "data_root": "d"}]}
    with pytest.raises(ValueError, match="unknown key.*learning_rate"):
        load_config(config_file(tmp_path / "c.yaml", **good, learning_rate=1.0))
    with pytest.raises(ValueError, match="datasets\\[0\\]: unknown key.*prob"):
        load_config(config_file(tmp_path / "c.yaml", **{**good, "datasets": [{"kind": "hypersim", "prob": 1.0,
                                                                               "data_root": "d"}]}))
    with pytest.raises(ValueError, match="not a multiple of batch_size"):
        load_config(config_file(tmp_path / "c.yaml", **good, batch_size=3))
    config = load_config(config_file(tmp_path / "c.yaml", **good))
    assert (config.batch_size, config.lr, config.accumulation_steps) == (1, 3.0e-6, 32)  # the paper's stage 2


def test_missing_weights_and_data_say_what_to_get(assets, tmp_path):
    from depthmaster_ros.model.checkpoint import CheckpointError
    from depthmaster_ros.eval.datasets import DatasetError
    from depthmaster_ros.train.trainer import Trainer

    config = base_config(assets, 1, tmp_path / "no_sd2", tmp_path / "run")
    with pytest.raises(CheckpointError, match="no_sd2.*stabilityai/stable-diffusion-2"):
        Trainer(load_config(config_file(tmp_path / "a.yaml", **config)))
    config = base_config(assets, 1, assets["base"], tmp_path / "run",
                         datasets=[{"kind": "vkitti", "probability": 1.0, "data_root": str(tmp_path / "nodata")}])
    with pytest.raises(DatasetError, match="vkitti training data:.*nodata.*Virtual KITTI 2"):
        Trainer(load_config(config_file(tmp_path / "b.yaml", **config)))


