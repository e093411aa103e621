"""A plug-in package written by the tests: ``depthmaster-toy-plugin`` (module ``depthmaster_toy_plugin``) with a
model backend, a scale source and an engine stage published as entry points, and one entry point that is broken (a
module that does not exist). ``write_package`` writes its source tree (setup.cfg + pyproject.toml, for pip);
``write_installed`` writes it as pip installs it (the module and a .dist-info with entry_points.txt), for tests
that must not start a process.

What it does, for known answers: the backend ``ramp`` returns for every frame a left-to-right ramp from
``ramp_low`` to ``ramp_high``; the source ``surveyed`` sets the scale without a fit (``surveyed_scale``,
``surveyed_shift``); the stage ``toy`` (test/toy_stage.py) adds ``toy_lift`` to the relative map and the map's
mean and the stream's frame count to depth/scale (``toy_mean``, ``toy_frames``) and /diagnostics."""

from pathlib import Path

NAME = "depthmaster-toy-plugin"
MODULE = "depthmaster_toy_plugin"
VERSION = "0.3"

ENTRY_POINTS = {
    "depthmaster_ros.backends": ["ramp = depthmaster_toy_plugin.backend:RampBackend",
                                 "broken = depthmaster_toy_plugin.missing:Backend"],
    "depthmaster_ros.scale_sources": ["surveyed = depthmaster_toy_plugin.source:Surveyed"],
    "depthmaster_ros.stages": ["toy = depthmaster_toy_plugin.stage:ToyStage"],
}

SOURCES = {
    "__init__.py": '"""A depthmaster_ros plug-in package written by its tests."""\n',
    "backend.py": '''
import numpy as np

from depthmaster_ros.parameter_spec import ParameterSpec


class RampBackend:
    """Every frame's relative map: a left-to-right ramp from ramp_low to ramp_high."""

    description = "ramp (a plug-in's test backend: a left-to-right ramp)"
    parameters = (
        ParameterSpec("ramp_low", 0.2, "ramp backend: the map's value at the left edge.", min_value=0.0, max_value=1.0),
        ParameterSpec("ramp_high", 0.8, "ramp backend: the map's value at the right edge.", min_value=0.0,
                      max_value=1.0),
    )
    name = "ramp"
    static_shapes = False
    random_weights = False

    def __init__(self, config):
        import torch  # here: the registry imports this module to list the backends (every tool's --help)

        self.device = torch.device("cpu")
        self.low, self.high = config.options["ramp_low"], config.options["ramp_high"]

    def infer(self, images, processing_res=None):
        import torch

        maps = []
        for image in images:
            height, width = image.shape[:2]
            ramp = np.linspace(self.low, self.high, width, dtype=np.float32)
            maps.append(torch.from_numpy(np.ascontiguousarray(np.broadcast_to(ramp, (height, width)))))
        return maps

    def warmup(self, width, height, batch=1, processing_res=None):
        pass

    def describe(self):
        return f"ramp backend ({self.low} to {self.high})"
''',
    "source.py": '''
from depthmaster_ros.parameter_spec import ParameterSpec
from depthmaster_ros.scale.robust_fit import ScaleFit
from depthmaster_ros.scale.source import ScaleSource


class Surveyed(ScaleSource):
    name = "surveyed"
    description = "surveyed (a plug-in's test source: a scale surveyed once)"
    parameters = (
        ParameterSpec("surveyed_scale", 0.5, "surveyed mode: s in sqrt-disparity space.", min_value=0.0,
                      per_camera=True),
        ParameterSpec("surveyed_shift", 0.1, "surveyed mode: t in sqrt-disparity space."),
    )

    def known_scale(self, config):
        return ScaleFit(config.surveyed_scale, config.surveyed_shift, self.name)
''',
    "stage.py": (Path(__file__).parent / "toy_stage.py").read_text(),
}


def entry_points_txt() -> str:
    return "".join(f"[{group}]\n" + "".join(line + "\n" for line in lines) + "\n"
                   for group, lines in ENTRY_POINTS.items())


def write_modules(root: Path) -> None:
    package = root / MODULE
    package.mkdir(parents=True)
    for name, text in SOURCES.items():
        (package / name).write_text(text.lstrip())


def write_package(root: Path) -> Path:
    """The package's source tree (what its author would publish); returns its folder."""
    write_modules(root)
    (root / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\n'
                                         'build-backend = "setuptools.build_meta"\n')
    entry_points = "".join(f"{group} =\n" + "".join(f"    {line}\n" for line in lines)
                           for group, lines in ENTRY_POINTS.items())
    (root / "setup.cfg").write_text(f"[metadata]\nname = {NAME}\nversion = {VERSION}\n\n[options]\n"
                                    f"packages = {MODULE}\n\n[options.entry_points]\n{entry_points}")
    return root


def write_installed(target: Path) -> Path:
    """The package as installed in ``target`` (a folder on sys.path): the module and its .dist-info."""
    write_modules(target)
    info = target / f"{MODULE}-{VERSION}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n")
    (info / "entry_points.txt").write_text(entry_points_txt())
    return target
