"""Plug-ins from another installed package, in this process: the test package (test/plugin_package.py) laid out
in a folder on sys.path as pip installs it, found by the registries through its entry points: its backend, scale
source and stage work through the parameter table and the engine, and its broken entry point is one warning.
(test/system/test_plugin_package.py installs it with pip and uses it from the node and a command-line tool.)"""

import importlib.metadata
import sys
import warnings

import numpy as np
import pytest

import depthmaster_ros.engine.stage as stage_registry
import depthmaster_ros.model.backends as backend_registry
import depthmaster_ros.scale.source as source_registry
from depthmaster_ros.plugins import PluginWarning, entry_points, load_plugins

from plugin_package import MODULE, NAME, VERSION, write_installed


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The package on sys.path, the registries set to look for plug-ins again; everything undone after."""
    write_installed(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    for registry in (backend_registry, source_registry, stage_registry):
        monkeypatch.setattr(registry, "_plugins_loaded", False)
    yield tmp_path
    backend_registry.unregister_backend("ramp")
    source_registry.unregister_source("surveyed")
    stage_registry.unregister_stage("toy")
    for name in [m for m in sys.modules if m == MODULE or m.startswith(MODULE + ".")]:
        del sys.modules[name]


def loaded_with_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = (backend_registry.backend_names(), source_registry.scale_modes(),
                 [stage.name for stage in stage_registry.stage_classes()])
    return names, [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]


def test_the_registries_find_every_kind_and_warn_once_for_the_broken_one(installed):
    assert {point.name for point in entry_points("backends")} >= {"ramp", "broken"}
    (backends, modes, stages), warned = loaded_with_warnings()
    assert "ramp" in backends and "broken" not in backends
    assert "surveyed" in modes
    assert stages == ["temporal", "toy", "scale"]  # a plug-in stage goes before the scale stage by default
    assert warned == [f"depthmaster_ros: backend plug-in 'broken' from package {NAME} {VERSION} "
                      f"(depthmaster_toy_plugin.missing:Backend) is not loaded: ModuleNotFoundError: No module named "
                      f"'depthmaster_toy_plugin.missing'"]
    assert loaded_with_warnings()[1] == []  # loaded once: no second warning


def test_their_parameters_join_the_table_and_reach_them(installed):
    from depthmaster_ros.engine.engine import FrameEngine
    from depthmaster_ros.engine.job import FrameJob
    from depthmaster_ros.model.backends import ModelConfig, backend_from_parameters
    from depthmaster_ros.parameters import defaults, parameters_yaml, spec
    from depthmaster_ros.processing_config import ProcessingConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        yaml = parameters_yaml()
    assert spec("ramp_low").model and "# --- backend ramp (read at configure)" in yaml
    assert "ramp (a plug-in's test backend: a left-to-right ramp)" in spec("backend").description
    assert spec("surveyed_scale").per_camera and "# --- scale_mode surveyed (live)" in yaml
    assert "    toy_lift: 0.0" in yaml
    values = {**defaults(), "backend": "ramp", "ramp_low": 0.25, "ramp_high": 0.75, "cpu_threads": 1}
    assert ModelConfig.from_parameters(values).options == {"ramp_low": 0.25, "ramp_high": 0.75}
    import torch

    threads = torch.get_num_threads()
    try:
        backend = backend_from_parameters(values)
    finally:
        torch.set_num_threads(threads)
    config = ProcessingConfig(scale_mode="surveyed", surveyed_scale=0.6, surveyed_shift=0.05, toy_lift=0.1,
                              temporal_mode="off", max_range=1000.0)
    engine = FrameEngine(backend)
    from depthmaster_ros.geometry.intrinsics import CameraIntrinsics

    rgb = np.zeros((4, 5, 3), np.uint8)
    camera = CameraIntrinsics.from_K(5, 4, [[4.0, 0, 2.5], [0, 4.0, 2.0], [0, 0, 1]])
    products, = engine.run([FrameJob("", 0, rgb, config, camera=camera)])
    p = np.linspace(0.25, 0.75, 5) + 0.1  # the ramp, then the stage's offset
    expected = 1.0 / (0.6 * p + 0.05) ** 2
    assert np.allclose(products.depth, np.broadcast_to(expected, (4, 5)), rtol=1e-5)
    assert products.scale.source == "surveyed" and products.stage_reports["toy"].frames == 1


def test_a_plugin_that_registers_badly_is_one_warning():
    """A wrong type, or a name taken: the registry's own checks, reported through the same warning."""
    class FakePoint:
        def __init__(self, name, value):
            self.name, self.value, self.dist = name, f"pkg.module:{name}", None
            self._value = value

        def load(self):
            return self._value

    import depthmaster_ros.plugins as plugins

    points = [FakePoint("eager", lambda config: None), FakePoint("number", 42)]
    registered = []
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        patch.setattr(plugins, "entry_points", lambda kind: points)
        assert load_plugins("backends", lambda name, value: (backend_registry._register_plugin(name, value),
                                                             registered.append(name))) == []
    messages = [str(w.message) for w in caught]
    assert registered == [] and len(messages) == 2
    assert "backend plug-in 'eager' from an unknown package (pkg.module:eager) is not loaded: ValueError: backend " \
           "'eager' is already registered" == messages[0].removeprefix("depthmaster_ros: ")
    assert "TypeError: expected a backend class or factory taking a ModelConfig, got int" in messages[1]


def test_entry_points_are_read_from_the_installed_metadata(installed):
    """The folder written here is what importlib.metadata reads (the same as pip's .dist-info)."""
    assert importlib.metadata.version(NAME) == VERSION
