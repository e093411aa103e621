"""Engine stages: the per-stream steps between the model and the outputs, with state that saves and restores.

A stage is a subclass of :class:`Stage`; the engine gives every stream its own instance of each registered stage
and calls :meth:`Stage.process` on each frame of that stream, in order. Stages may read and change the frame
(:class:`~depthmaster_ros.engine.engine.FrameState`): its relative map, its scale, its missing outputs. Their
``parameters`` join the parameter table (node, params files, CLIs) like the scale sources'. What a stage did with a
frame is its report (``frame.reports[name]``, a :class:`StageReport`): the report adds its own fields to the
frame's ``depth/scale`` message, and the stage its own key/values to the camera's ``/diagnostics`` status
(:meth:`Stage.diagnostics`), so no consumer names a stage. A new stage is one module plus its test: define the
class and call :func:`register_stage` (the built-in ones are registered in ``_ensure_builtins`` below, in
processing order), or publish it as an entry point of another package (``plugins.py``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..parameter_spec import ParameterSpec


class StageReport:
    """What a stage did with one frame (subclass it, e.g. as a frozen dataclass)."""

    def scale_fields(self) -> tuple[tuple[str, float], ...]:
        """(name, value) pairs appended to the frame's ``depth/scale`` message after the fit's own fields (the
        names go into its layout label), in a fixed order; () for none."""
        return ()


class Stage:
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""  # the heading of its parameters in config/depthmaster.yaml
    parameters: ClassVar[tuple[ParameterSpec, ...]] = ()
    before: ClassVar[str | None] = "scale"  # an entry point's stage runs before this stage (None: last)

    def process(self, frame) -> None:
        raise NotImplementedError

    @classmethod
    def diagnostics(cls, config, report) -> dict[str, Any]:
        """Key/values this stage adds to a camera's ``/diagnostics`` status: from the stream's configuration and
        the stage's report on the camera's last frame (None when it made none)."""
        return {}

    def state(self) -> dict:
        """What a later run needs to continue exactly from here (JSON-serialisable)."""
        return {}

    def restore(self, state: dict) -> None:
        pass


_stages: list[type[Stage]] = []
_loaded = False
_plugins_loaded = False
_version = 0


def _ensure_builtins() -> None:
    """The built-in stages, then the installed plug-ins' (entry points), once."""
    global _loaded, _plugins_loaded
    if not _loaded:
        _loaded = True
        held, _plugins_loaded = _plugins_loaded, True  # no plug-in before the built-ins are all in
        from .scale_stage import ScaleStage
        from .temporal_stage import TemporalStage

        register_stage(TemporalStage)
        register_stage(ScaleStage)
        _plugins_loaded = held
    if not _plugins_loaded:
        _plugins_loaded = True
        from ..plugins import load_plugins

        load_plugins("stages", _register_plugin)


def _register_plugin(name: str, stage) -> None:
    """An entry point of ``depthmaster_ros.stages``: a :class:`Stage` subclass, placed before its ``before``."""
    if not (isinstance(stage, type) and issubclass(stage, Stage)):
        raise TypeError(f"expected a subclass of depthmaster_ros.engine.stage.Stage, got {stage!r}")
    register_stage(stage, before=stage.before)


def register_stage(stage: type[Stage], before: str | None = None) -> type[Stage]:
    """Add a stage to every stream (new streams; existing engines keep their stages), last or ``before`` the
    stage of that name."""
    global _version
    _ensure_builtins()
    if not stage.name or not stage.name.replace("_", "").isalnum():
        raise ValueError(f"a stage needs a name of letters, digits and '_'; got {stage.name!r}")
    if any(existing.name == stage.name for existing in _stages):
        raise ValueError(f"stage {stage.name!r} is already registered")
    index = len(_stages)
    if before is not None:
        names = [existing.name for existing in _stages]
        if before not in names:
            raise ValueError(f"no stage {before!r} to insert {stage.name!r} before; stages: {names}")
        index = names.index(before)
    _stages.insert(index, stage)
    _version += 1
    return stage


def unregister_stage(name: str) -> None:
    global _version
    _stages[:] = [s for s in _stages if s.name != name]
    _version += 1


def stage_classes() -> tuple[type[Stage], ...]:
    _ensure_builtins()
    return tuple(_stages)


def stages_version() -> int:
    _ensure_builtins()
    return _version


def restore_stages(stages: list[Stage], state: dict[str, Any]) -> None:
    for stage in stages:
        if stage.name in state:
            stage.restore(state[stage.name])
