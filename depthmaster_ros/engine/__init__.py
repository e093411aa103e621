"""One frame's life, for every adapter (the node, depthmaster-bag, the fleet runner, the benchmark): frame jobs in,
batched model passes, per-stream stages in order, typed products out. No ROS here.

    from depthmaster_ros.engine import FrameEngine, FrameJob, ProcessingConfig
"""

_EXPORTS = {"FrameEngine": ".engine", "FrameJob": ".job", "FrameProducts": ".job", "Missing": ".job", "Why": ".job",
            "OUTPUTS": ".job", "ProcessingConfig": ".config"}


def __getattr__(name):  # lazy: importing the package does not import torch
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(name)
