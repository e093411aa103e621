"""scale_mode fixed: a scale and shift the user calibrated once (``depthmaster-calibrate``); no measurement."""

from __future__ import annotations

from ...parameter_spec import ParameterSpec
from ..robust_fit import ScaleFit
from ..source import ScaleSource


class FixedScale(ScaleSource):
    name = "fixed"
    description = "fixed (scale and shift, e.g. from depthmaster-calibrate)"
    parameters = (
        ParameterSpec("scale", 1.0, "Fixed mode: s in sqrt-disparity space, depth = 1 / max((s*p + t)^2, eps). "
                      "Calibrations give 0.1-10; 100 already puts the nearest pixel at 0.1 mm.", min_value=0.0,
                      max_value=100.0, per_camera=True),
        ParameterSpec("shift", 0.0, "Fixed mode: t in sqrt-disparity space (1/sqrt(m)).", min_value=-100.0,
                      max_value=100.0, per_camera=True),
    )

    def known_scale(self, config) -> ScaleFit:
        return ScaleFit(float(config.scale), float(config.shift), self.name)
