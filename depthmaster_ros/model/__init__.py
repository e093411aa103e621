"""DepthMaster itself (torch + diffusers only): the FE block, the U-Net with FE, checkpoints, the pipeline."""

from .checkpoint import DEFAULT_REPO_ID, CheckpointError
from .fourier_enhancement import FourierEnhancement
from .pipeline import DepthMasterPipeline
from .unet import attach_fourier_enhancement, build_depthmaster_unet

__all__ = [
    "DEFAULT_REPO_ID",
    "CheckpointError",
    "DepthMasterPipeline",
    "FourierEnhancement",
    "attach_fourier_enhancement",
    "build_depthmaster_unet",
]
