"""One frame's life, for every adapter (the node, depthmaster-bag, the fleet runner, the benchmark): frame jobs in,
batched model passes, per-stream stages in order, typed products out. No ROS here. The processing configuration
a job carries is :class:`depthmaster_ros.processing_config.ProcessingConfig` (validated against the parameter
table, which sits above the engine: the engine only reads its attributes).

    from depthmaster_ros.engine import FrameEngine, FrameJob
    from depthmaster_ros.processing_config import ProcessingConfig
"""

_EXPORTS = {"FrameEngine": ".engine", "FrameJob": ".job", "FrameProducts": ".job", "Missing": ".job", "Why": ".job",
            "OUTPUTS": ".job"}


def __getattr__(name):  # lazy: importing the package does not import torch
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    if name == "ProcessingConfig":  # its home until 2026-12: `from depthmaster_ros.engine import ProcessingConfig`
        from ..processing_config import ProcessingConfig  # was documented, so it keeps working

        return ProcessingConfig
    raise AttributeError(name)
