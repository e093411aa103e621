"""An engine stage defined outside the package (the stage seam's test): it lifts the relative map by a parameter
and reports the map's mean and its frame count, which it adds to depth/scale and /diagnostics itself. Registered in
the tests' process by test/unit/test_stage_plugin.py, and published as an entry point by the test plug-in package
(test/plugin_package.py, which ships this file as its stage module)."""

from dataclasses import dataclass

import numpy as np

from depthmaster_ros.engine.stage import Stage, StageReport
from depthmaster_ros.parameter_spec import ParameterSpec


@dataclass(frozen=True)
class ToyReport(StageReport):
    mean: float  # of the relative map after the lift
    frames: int  # of the stream so far

    def scale_fields(self):
        return (("toy_mean", self.mean), ("toy_frames", float(self.frames)))


class ToyStage(Stage):
    name = "toy"
    title = "Toy stage (a test plug-in; live)"
    parameters = (ParameterSpec("toy_lift", 0.0, "Added to the relative map.", min_value=-1.0, max_value=1.0),)

    def __init__(self):
        self.frames = 0

    def process(self, frame):
        self.frames += 1
        frame.relative = frame.relative + frame.job.config.toy_lift
        frame.reports[self.name] = ToyReport(float(np.mean(frame.relative_numpy())), self.frames)

    def state(self):
        return {"frames": self.frames}

    def restore(self, state):
        self.frames = state["frames"]

    @classmethod
    def diagnostics(cls, config, report):
        return {"toy_lift": config.toy_lift, **({"toy_frames": report.frames} if report is not None else {})}

