"""DepthMaster itself (torch + diffusers only): the FE block, the U-Net with FE, checkpoints, the pipeline, and the
model backends. Importing the package is cheap; the classes load torch and diffusers on first use."""

_EXPORTS = {
    "DEFAULT_REPO_ID": ".checkpoint_layout", "CheckpointError": ".checkpoint", "DepthMasterPipeline": ".pipeline",
    "FourierEnhancement": ".fourier_enhancement", "attach_fourier_enhancement": ".unet",
    "build_depthmaster_unet": ".unet", "ModelConfig": ".backends", "create_backend": ".backends",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
