"""The processing configuration of one stream: every live parameter (the engine's, the scale sources' and the
stages'), validated against the parameter table, immutable, read as attributes (``config.scale_mode``)."""

from __future__ import annotations

import math
from typing import Any, Mapping

from .parameters import check_values, live_names, normalize, spec
from .scale.robust_fit import FitSettings


class ProcessingConfig:
    """``ProcessingConfig(scale_mode="fixed", scale=0.6)``: the defaults with these values; any live parameter
    of the table may be given (``ValueError`` naming the problems otherwise). Lists are stored as tuples."""

    __slots__ = ("_values",)

    def __init__(self, **values: Any):
        names = live_names()
        unknown = [name for name in values if name not in names]
        if unknown:
            raise ValueError("not processing parameters: " + ", ".join(
                f"{name} (read-only: set at start-up)" if spec(name) is not None else repr(name) for name in unknown))
        problems = check_values(values)
        if problems:
            raise ValueError("; ".join(problems))
        merged = {name: spec(name).default for name in names}
        merged.update({name: normalize(name, value, ()) for name, value in values.items()})
        object.__setattr__(self, "_values", {k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()})

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any]) -> "ProcessingConfig":
        """Pick this config's fields out of a full parameter dict (read-only and per-camera names are ignored)."""
        names = set(live_names())
        return cls(**{name: value for name, value in values.items() if name in names})

    def updated(self, **changes: Any) -> "ProcessingConfig":
        return ProcessingConfig(**{**self._values, **changes})

    def with_measured(self, **changes: Any) -> "ProcessingConfig":
        """This config with values measured rather than typed (extrinsics from TF): they must have the parameter's
        type and be finite, but the parameter's bounds, which catch typing mistakes, do not apply (a LiDAR cloud
        in the map frame is hundreds of meters from the camera)."""
        values = dict(self._values)
        for name, value in changes.items():
            value = normalize(name, value, ())
            if not isinstance(value, list) or not all(isinstance(v, float) and math.isfinite(v) for v in value) \
                    or spec(name) is None or len(value) != len(spec(name).default):
                raise ValueError(f"{name}: a measured value must be {len(spec(name).default) if spec(name) else ''} "
                                 f"finite numbers, got {value!r}")
            values[name] = tuple(value)
        return _restore(values)

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self._values.items()}

    def __reduce__(self):  # pickling (the fleet runner sends configs to other processes)
        return (_restore, (self._values,))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no processing parameter {name!r}") from None

    def __setattr__(self, name, value):
        raise AttributeError("ProcessingConfig is immutable: use updated()")

    def __eq__(self, other) -> bool:
        return isinstance(other, ProcessingConfig) and self._values == other._values

    def __repr__(self) -> str:
        return "ProcessingConfig(" + ", ".join(f"{k}={v!r}" for k, v in self._values.items()) + ")"

    @property
    def fit_settings(self) -> FitSettings:
        return FitSettings(min_pairs=self.scale_min_pairs, min_p_spread=self.scale_min_p_spread,
                           inlier_threshold=self.scale_inlier_threshold, min_inlier_ratio=self.scale_min_inlier_ratio)


def _restore(values: dict) -> ProcessingConfig:
    config = object.__new__(ProcessingConfig)
    object.__setattr__(config, "_values", dict(values))
    return config
