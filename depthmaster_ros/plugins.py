"""Plug-ins from other installed packages: model backends, scale sources and engine stages published as entry
points, found by the registries the first time they are read, once per process.

    [options.entry_points]                       # the other package's setup.cfg (or pyproject's
    depthmaster_ros.backends =                   # [project.entry-points."depthmaster_ros.backends"])
        toy = my_package.backend:ToyBackend      # backend name = a class or factory: NAME(config) -> backend
    depthmaster_ros.scale_sources =
        surveyed = my_package.source:Surveyed    # a ScaleSource subclass (its ``name`` is the scale_mode)
    depthmaster_ros.stages =
        denoise = my_package.stage:Denoise       # a Stage subclass, placed before its ``before`` stage

A plug-in that cannot be imported or registered (an import error, a name or parameter taken, a wrong type) is
left out with one :class:`PluginWarning` naming its package and the error; the rest of the program runs.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

GROUPS = {
    "backends": "depthmaster_ros.backends",
    "scale_sources": "depthmaster_ros.scale_sources",
    "stages": "depthmaster_ros.stages",
}


class PluginWarning(UserWarning):
    """A plug-in was left out; the message says which, from which package, and why."""


def entry_points(kind: str) -> list:
    """The installed entry points of one kind (a key of ``GROUPS``), by name."""
    from importlib.metadata import entry_points as installed

    return sorted(installed(group=GROUPS[kind]), key=lambda point: point.name)


def load_plugins(kind: str, register: Callable[[str, Any], None]) -> list[str]:
    """Load every plug-in of one kind: ``register(entry point name, loaded object)`` for each, in name order. Returns
    the names registered; each failure is one warning."""
    loaded = []
    for point in entry_points(kind):
        try:
            register(point.name, point.load())
        except Exception as exc:  # noqa: BLE001 - whatever a plug-in does wrong, the program goes on without it
            warnings.warn(f"depthmaster_ros: {kind[:-1].replace('_', ' ')} plug-in {point.name!r} from "
                          f"{_package(point)} ({point.value}) is not loaded: {type(exc).__name__}: {exc}",
                          PluginWarning, stacklevel=2)
        else:
            loaded.append(point.name)
    return loaded


def _package(point) -> str:
    dist = getattr(point, "dist", None)
    return f"package {dist.name} {dist.version}" if dist is not None else "an unknown package"
