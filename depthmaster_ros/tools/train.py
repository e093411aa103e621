"""depthmaster-train: the two-stage DepthMaster training, or fine-tuning on a robot's RGB-D bags.

    depthmaster-train --config config/train/stage1.yaml           # one GPU
    accelerate launch depthmaster-train --config CONFIG.yaml      # several GPUs (DDP), the same script
    depthmaster-train --config CONFIG.yaml --resume               # continue from the last checkpoint
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="depthmaster-train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="training YAML (examples in config/train/)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of the output")
    args = parser.parse_args(argv)

    from tqdm import tqdm

    from ..eval.datasets import DatasetError
    from ..model.checkpoint import CheckpointError
    from ..train.config import load_config
    from ..train.trainer import Trainer

    try:
        config = load_config(args.config)
        trainer = Trainer(config, resume=args.resume)
    except (ValueError, CheckpointError, DatasetError, OSError) as exc:
        print(f"depthmaster-train: {exc}", file=sys.stderr)
        return 2
    main_process = trainer.accelerator.is_main_process
    if main_process:
        print(f"depthmaster-train: stage {config.stage} from {config.base}: {config.max_steps} steps of "
              f"{config.effective_batch_size} samples ({config.batch_size} x {config.accumulation_steps} accumulated), "
              f"lr {config.lr}, on {trainer.accelerator.device} x {trainer.accelerator.num_processes}; "
              f"starting at step {trainer.step}; output {config.output}", file=sys.stderr)
    with tqdm(total=config.max_steps, initial=trainer.step, desc=f"stage {config.stage}", unit="step",
              disable=not main_process, file=sys.stderr) as progress:
        last = trainer.train(progress)
    if main_process:
        final = trainer.checkpoint_dir(trainer.step)
        print(f"depthmaster-train: done at step {trainer.step}; last losses {last}; checkpoint {final} "
              "(loads with DepthMasterPipeline.from_pretrained / the node's checkpoint parameter"
              + (" after stage 2" if config.stage == 1 else "") + ")", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
