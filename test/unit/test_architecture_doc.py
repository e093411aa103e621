"""docs/architecture.md's example plug-in package works as written: its setup.cfg names the entry-point group of
its scale source, and the source, installed from those two blocks (laid out as pip installs it), is a scale mode
whose scale the engine uses."""

import configparser
import importlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import depthmaster_ros.scale.source as source_registry
from depthmaster_ros.plugins import GROUPS

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def examples() -> dict[str, str]:
    text = DOC.read_text()
    return dict(re.findall(r"<!-- architecture-example: (\S+) -->\n```\w*\n(.*?)```", text, flags=re.S))


@pytest.fixture
def installed(tmp_path, monkeypatch):
    blocks = examples()
    config = configparser.ConfigParser()
    config.read_string(blocks["setup.cfg"])
    name, version = config["metadata"]["name"], config["metadata"]["version"]
    module = Path(tmp_path / "my_depth_plugins" / "surveyed.py")
    module.parent.mkdir()
    (module.parent / "__init__.py").write_text("")
    module.write_text(blocks["my_depth_plugins/surveyed.py"])
    info = tmp_path / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    points = config["options.entry_points"]
    (info / "entry_points.txt").write_text("".join(f"[{group}]\n{points[group].strip()}\n\n" for group in points))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.setattr(source_registry, "_plugins_loaded", False)
    yield config
    source_registry.unregister_source("surveyed")
    for loaded in [m for m in sys.modules if m.startswith("my_depth_plugins")]:
        del sys.modules[loaded]


def test_the_example_package_gives_a_working_scale_mode(installed):
    from depthmaster_ros.engine.engine import FrameEngine
    from depthmaster_ros.engine.job import FrameJob
    from depthmaster_ros.geometry.intrinsics import CameraIntrinsics
    from depthmaster_ros.processing_config import ProcessingConfig

    from fake_backend import FakeBackend

    assert set(installed["options.entry_points"]) <= set(GROUPS.values())
    assert "surveyed" in source_registry.scale_modes()
    rgb = np.zeros((4, 6, 3), np.uint8)
    relative = np.linspace(0.2, 0.8, 24, dtype=np.float32).reshape(4, 6)
    fake = FakeBackend()
    fake.register(rgb, relative)
    config = ProcessingConfig(scale_mode="surveyed", surveyed_scale=0.45, surveyed_shift=0.05, temporal_mode="off",
                              max_range=1000.0)
    camera = CameraIntrinsics.from_K(6, 4, [[5.0, 0, 3.0], [0, 5.0, 2.0], [0, 0, 1]])
    products, = FrameEngine(fake).run([FrameJob("", 0, rgb, config, camera=camera)])
    assert products.scale.source == "surveyed"
    assert np.allclose(products.depth, 1.0 / (0.45 * relative.astype(np.float64) + 0.05) ** 2, rtol=1e-5)
