"""The training loop of both stages, on one device or many through ``accelerate launch`` (DDP, same script).

Stage 1 (latent space): image latent -> U-Net (no FE) at timestep 1 -> latent MSE against the target's latent on
the 8x8 max-pooled valid mask, + the Feature Alignment KL of the mid-block features (adapter) against DINOv2.
Stage 2 (pixel space): the stage-1 U-Net + a fresh FE block (or an existing DepthMaster to fine-tune); decoded
through the frozen VAE decoder with gradients; pixel MSE on valid pixels + 1e-3 x the 4-direction gradient loss.

Adam, the warm-up + exponential schedule stepped per optimizer step, gradient accumulation to the effective batch,
optional bf16 autocast and gradient checkpointing. Checkpoints (``output/checkpoints/step_NNNNNN``) are in the
official layout, which the node and the CLIs load as they are, plus the optimizer/scheduler/RNG state for
``resume``. TensorBoard logs in ``output/logs`` (and ``output/log.jsonl``); validation with the evaluation code.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..model.checkpoint import CheckpointError, load_diffusers_component, read_state_dict, weight_files
from ..model.empty_text import CACHE_FILE_NAME, load_empty_text_embedding, text_encoder_fingerprint, write_cache
from ..model.pipeline import DepthMasterPipeline
from ..model.checkpoint_layout import link_component, write_diffusers_component, write_model_index
from ..model.unet import attach_fourier_enhancement
from .config import TrainConfig
from .data import MixedBatchSampler, MixedTrainingData, TrainingSource
from .feature_alignment import FeatureAdapter, MidBlockCapture, load_dino
from .losses import feature_alignment_kl, gradient_loss, latent_valid_mask, masked_mse
from .schedule import lr_factor

STATE_FILE = "trainer_state.json"


def has_fourier_enhancement(unet_folder: Path) -> bool:
    files = weight_files(unet_folder)
    if files and all(f.suffix == ".safetensors" for f in files):
        from safetensors import safe_open

        for path in files:
            with safe_open(str(path), framework="pt") as handle:
                if any(key.startswith("fftblock.") for key in handle.keys()):
                    return True
        return False
    return any(key.startswith("fftblock.") for key in read_state_dict(files))


def collate(samples: list[dict]) -> dict:
    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


class Trainer:
    def __init__(self, config: TrainConfig, resume: bool = False):
        from accelerate import Accelerator
        from diffusers import AutoencoderKL, UNet2DConditionModel

        self.config = config
        self.output = Path(config.output)
        self.base = Path(config.base)
        if not (self.base / "unet" / "config.json").is_file():
            raise CheckpointError(
                f"base {self.base} is not a diffusers pipeline folder (no unet/config.json); stage 1 starts from "
                "Stable Diffusion 2 (hf download stabilityai/stable-diffusion-2 --local-dir <folder>), stage 2 "
                "and fine-tuning from a DepthMaster checkpoint (hf download zysong212/DepthMaster --local-dir <folder>)")
        self.accelerator = Accelerator(gradient_accumulation_steps=config.accumulation_steps,
                                       mixed_precision=config.mixed_precision)
        torch.manual_seed(config.seed)
        device = self.accelerator.device

        self.vae = load_diffusers_component(AutoencoderKL, self.base / "vae").to(device).requires_grad_(False)
        with_fe = has_fourier_enhancement(self.base / "unet")
        if config.stage == 1 and with_fe:
            raise CheckpointError(f"stage 1 starts from a plain Stable Diffusion 2 U-Net; {self.base} has a Fourier "
                                  "Enhancement block (fine-tune it with stage 2)")
        self.unet = load_diffusers_component(UNet2DConditionModel, self.base / "unet",
                                             extend=attach_fourier_enhancement if with_fe else None)
        if config.stage == 2 and not with_fe:
            attach_fourier_enhancement(self.unet)  # freshly initialised, as in the paper's stage 2
        self.unet.train()
        if config.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            if config.stage == 2:
                self.vae.enable_gradient_checkpointing()
        self.embedding = load_empty_text_embedding(self.base)[0].to(device)

        trainable = list(self.unet.parameters())
        self.adapter = self.dino = self.capture = None
        if config.stage == 1:
            self.dino = load_dino(config.feature_alignment.encoder, config.feature_alignment.allow_download).to(device)
            self.adapter = FeatureAdapter(self.unet.config.block_out_channels[-1], config.feature_alignment.projector_dim,
                                          self.dino.width)
            trainable += list(self.adapter.parameters())
            self.capture = MidBlockCapture(self.unet)
        optimizer = torch.optim.Adam(trainable, lr=config.lr)
        schedule = config.schedule
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, schedule.total_steps, schedule.warmup_steps, schedule.final_ratio))
        if self.adapter is not None:
            self.unet, self.adapter, self.optimizer = self.accelerator.prepare(self.unet, self.adapter, optimizer)
        else:
            self.unet, self.optimizer = self.accelerator.prepare(self.unet, optimizer)
        self.accelerator.register_for_checkpointing(self.scheduler)

        self.sources = [TrainingSource(d, self.output) for d in config.datasets]
        self.step = 0
        if resume:
            self._resume()
        self.writer = None
        if self.accelerator.is_main_process:
            self.output.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.output / "logs"))
            except ImportError:  # tensorboard is in requirements.txt; without it, log.jsonl still records
                pass

    # ------------------------------------------------------------------ data
    def batches(self, start_micro_step: int, count: int):
        sampler = MixedBatchSampler([len(s) for s in self.sources], [d.probability for d in self.config.datasets],
                                    self.config.batch_size, self.config.seed * 1000 + self.accelerator.process_index,
                                    self.config.flip_probability, start=start_micro_step, count=count)
        loader = DataLoader(MixedTrainingData(self.sources), batch_sampler=sampler, collate_fn=collate,
                            num_workers=self.config.num_workers)
        for batch in loader:
            yield {k: v.to(self.accelerator.device) for k, v in batch.items()}

    # ------------------------------------------------------------------ losses
    def _pipe(self) -> DepthMasterPipeline:
        """The stages of the model being trained, without moving, casting or freezing it."""
        return DepthMasterPipeline(self.accelerator.unwrap_model(self.unet), self.vae, self.embedding,
                                   device=self.accelerator.device, dtype=torch.float32, prepare=False)

    def losses(self, batch: dict, pipe: DepthMasterPipeline) -> dict[str, torch.Tensor]:
        rgb, target, valid = batch["rgb"], batch["depth"], batch["valid"]
        with torch.no_grad():
            z_rgb = pipe.encode(rgb)
        text = self.embedding.expand(rgb.shape[0], -1, -1)
        prediction = self.unet(z_rgb, 1, encoder_hidden_states=text, return_dict=False)[0]
        if self.config.stage == 1:
            with torch.no_grad():
                z_target = pipe.encode(target.expand(-1, 3, -1, -1))
            latent = masked_mse(prediction, z_target, latent_valid_mask(valid, prediction.shape[1]))
            features = self.capture.features
            alignment = feature_alignment_kl(self.adapter(features), self.dino(rgb, tuple(features.shape[-2:])))
            return {"loss": latent + self.config.feature_alignment.weight * alignment, "latent_mse": latent,
                    "feature_alignment": alignment}
        decoded = pipe.decode_mean(prediction)
        pixel = masked_mse(decoded, target, valid)
        gradient = gradient_loss(decoded.float(), target, valid, self.config.gradient_loss.delta)
        return {"loss": pixel + self.config.gradient_loss.weight * gradient, "pixel_mse": pixel,
                "gradient": gradient}

    # ------------------------------------------------------------------ the loop
    def train(self, progress=None) -> dict:
        config, accelerator = self.config, self.accelerator
        accumulation = config.accumulation_steps
        pipe = self._pipe()
        last = {}
        remaining = config.max_steps - self.step
        micro = 0
        started = time.perf_counter()
        for batch in self.batches(self.step * accumulation, remaining * accumulation):
            with accelerator.accumulate(self.unet):
                with accelerator.autocast():
                    losses = self.losses(batch, pipe)
                accelerator.backward(losses["loss"])
                self.optimizer.step()
                self.optimizer.zero_grad()
            micro += 1
            if not accelerator.sync_gradients:
                continue
            self.scheduler.step()
            self.step += 1
            last = {k: float(v.detach()) for k, v in losses.items()}
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{last['loss']:.4f}")
            if self.step % config.log_every == 0 or self.step == config.max_steps:
                self._log({**last, "lr": self.scheduler.get_last_lr()[0],
                           "seconds_per_step": (time.perf_counter() - started) / max(micro / accumulation, 1)})
            validation = config.validation
            if validation is not None and validation.data_root and self.step % validation.every == 0:
                self.validate()
            if self.step % config.checkpoint_every == 0 or self.step == config.max_steps:
                self.save()
        if self.writer is not None:
            self.writer.flush()
        return last

    def _append_log(self, record: dict) -> None:
        with open(self.output / "log.jsonl", "a") as handle:
            handle.write(json.dumps({"step": self.step, **record}) + "\n")

    def _log(self, values: dict) -> None:
        if not self.accelerator.is_main_process:
            return
        self._append_log(values)
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"train/{key}", value, self.step)

    def validate(self) -> dict | None:
        """The evaluation protocol on the validation split with the current weights; logged, returned."""
        from ..eval.datasets import SPECS, EvalDataset
        from ..eval.evaluation import evaluate
        from ..model.backends import PipelineBackend

        if not self.accelerator.is_main_process:
            return None
        validation = self.config.validation
        dataset = EvalDataset(SPECS[validation.dataset], validation.data_root, validation.filenames)
        unet = self.accelerator.unwrap_model(self.unet)
        unet.eval()
        try:
            summary = evaluate(PipelineBackend(self._pipe()), dataset, self.output / "validation" / f"step_{self.step:06d}",
                               processing_res=validation.processing_res, limit=validation.limit)
        finally:
            dataset.close()
            unet.train()
        metrics = summary["metrics"]
        if self.writer is not None:
            for key in ("abs_rel", "delta1"):
                self.writer.add_scalar(f"validation/{validation.dataset}/{key}", metrics[key], self.step)
        self._append_log({"validation": validation.dataset, **metrics})
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_dir(self, step: int) -> Path:
        return self.output / "checkpoints" / f"step_{step:06d}"

    def save(self) -> Path:
        """The checkpoint of this step in the official layout (+ training state)."""
        accelerator = self.accelerator
        folder = self.checkpoint_dir(self.step)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            unet = accelerator.unwrap_model(self.unet)
            import diffusers

            write_diffusers_component(folder / "unet", "UNet2DConditionModel", unet.config, unet.state_dict(),
                                      diffusers_version=diffusers.__version__)
            for component in ("vae", "text_encoder", "tokenizer"):
                link_component(self.base, folder, component)
            index = self.base / "model_index.json"
            base_index = json.loads(index.read_text()) if index.is_file() else {}
            # A Stable Diffusion base has no processing resolution: DepthMaster's index then.
            write_model_index(folder, base_index if "default_processing_resolution" in base_index else None)
            write_cache(folder / CACHE_FILE_NAME, self.embedding.detach().cpu().float(),
                        text_encoder_fingerprint(folder) or "")
            if self.adapter is not None:
                from safetensors.torch import save_file

                save_file(accelerator.unwrap_model(self.adapter).state_dict(), folder / "feature_adapter.safetensors")
            (folder / "training.json").write_text(json.dumps({"stage": self.config.stage, "step": self.step,
                                                              "base": str(self.base)}, indent=2))
        accelerator.save_state(str(folder / "training_state"))
        if accelerator.is_main_process:
            (folder / STATE_FILE).write_text(json.dumps({"step": self.step}))
        return folder

    def _resume(self) -> None:
        saved = sorted(p for p in (self.output / "checkpoints").glob("step_*") if (p / STATE_FILE).is_file())
        if not saved:
            raise CheckpointError(f"--resume: no saved training state under {self.output / 'checkpoints'}")
        latest = saved[-1]
        self.accelerator.load_state(str(latest / "training_state"))
        self.step = json.loads((latest / STATE_FILE).read_text())["step"]
