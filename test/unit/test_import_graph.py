"""The package's import graph against the layers of docs/architecture.md, read from the source (every ``import``
statement, at module level and inside functions alike: a function-level import is a dependency all the same, only a
later one). Units are the subpackages and the modules at the package's top (``parameters.py``, ...)."""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "depthmaster_ros"

# docs/architecture.md's layers, bottom first: a unit imports only units of lower layers (and itself).
LAYERS = [
    ["parameter_spec", "params_file", "plugins"],
    ["geometry", "model"],
    ["colormap", "scale"],
    ["engine"],
    ["parameters", "messages"],
    ["processing_config"],
    ["ros", "rosbag", "eval"],
    ["fleet", "train"],
    ["samples"],
    ["bench"],
    ["tools"],
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
BELOW_ROS = {unit for unit, rank in RANK.items() if rank < RANK["ros"]}
# Imports that go up a layer, each with its reason. Nothing else may.
ALLOWED_UPWARD = {
    # the package's __init__ is the composition root: it hands the ROS node's parameters (declared in ros/,
    # without rclpy) to the parameter table
    ("depthmaster_ros", "depthmaster_ros.ros"), ("depthmaster_ros", "depthmaster_ros.ros.wiring_parameters"),
    # `from depthmaster_ros.engine import ProcessingConfig` was the documented import before the configuration
    # moved above the engine; the engine package resolves that one name lazily so user code keeps working
    ("depthmaster_ros.engine", "depthmaster_ros.processing_config"),
}
ROS_PACKAGES = ("rclpy", "rcl_interfaces", "builtin_interfaces", "std_msgs", "sensor_msgs", "diagnostic_msgs",
                "rosgraph_msgs", "launch", "launch_ros", "ament_index_python")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every module of the package -> the modules it imports (absolute names; ``from . import x`` gives the
    submodule ``x`` where there is one)."""
    found: dict[str, set[str]] = defaultdict(set)
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found[name].update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module
                found[name].add(target)
                found[name].update(f"{target}.{alias.name}" for alias in node.names
                                   if f"{target}.{alias.name}" in modules)
    return found


def unit(module: str) -> str | None:
    """The layer unit of a module of the package (None: not the package's; '' for the package itself)."""
    parts = module.split(".")
    if parts[0] != "depthmaster_ros":
        return None
    return parts[1] if len(parts) > 1 else ""


GRAPH = imports()


def edges():
    for source, targets in GRAPH.items():
        for target in targets:
            yield source, target


def test_every_unit_has_a_layer():
    units = {unit(name) for name in GRAPH} | {unit(t) for _, t in edges() if unit(t) is not None}
    assert units - {""} <= set(RANK), f"units missing from LAYERS (and docs/architecture.md): {units - set(RANK)}"


def test_imports_point_down_the_layers():
    upward = sorted((source, target) for source, target in edges()
                    if unit(target) not in (None, "", unit(source))
                    and (unit(source) == "" or RANK[unit(target)] >= RANK[unit(source)]))
    assert set(upward) == ALLOWED_UPWARD, "imports against the layers: " + ", ".join(
        f"{s} -> {t}" for s, t in upward if (s, t) not in ALLOWED_UPWARD)


def test_no_cycle_between_units():
    graph = defaultdict(set)
    for source, target in edges():
        if (source, target) in ALLOWED_UPWARD or unit(target) in (None, "") or unit(source) == "":
            continue
        if unit(target) != unit(source):
            graph[unit(source)].add(unit(target))

    def reaches(start, goal, seen):
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    cycles = sorted(u for u in list(graph) if reaches(u, u, set()))
    assert not cycles, f"units on an import cycle: {cycles}"


def test_the_allowed_exceptions_are_still_needed():
    """An exception that no longer exists must leave the list (so the list cannot hide a new one)."""
    assert ALLOWED_UPWARD <= set(edges())


@pytest.mark.parametrize("forbidden", ["rclpy", "depthmaster_ros.ros"])
def test_nothing_below_ros_imports_rclpy_or_ros(forbidden):
    offenders = sorted(f"{s} -> {t}" for s, t in edges() if unit(s) in BELOW_ROS
                       and (t == forbidden or t.startswith(forbidden + ".")))
    assert not offenders, offenders


def test_model_knows_no_ros_and_no_opencv():
    offenders = sorted(f"{s} -> {t}" for s, t in edges() if unit(s) == "model"
                       and t.split(".")[0] in (*ROS_PACKAGES, "cv2"))
    assert not offenders, offenders


def test_the_composition_root_stays_light():
    """Every import of the package runs its __init__: it may import only the ROS wiring parameters, and they only
    the parameter declaration class."""
    ours = {t for t in GRAPH["depthmaster_ros"] if unit(t) is not None}
    assert ours == {"depthmaster_ros.ros", "depthmaster_ros.ros.wiring_parameters"}
    assert {t for t in GRAPH["depthmaster_ros.ros.wiring_parameters"] if t != "__future__"} == {
        "depthmaster_ros.parameter_spec"}


def test_the_reader_finds_known_edges():
    """The graph reader itself: a module-level, a function-level and a relative submodule import it must see."""
    assert "depthmaster_ros.engine.stage" in GRAPH["depthmaster_ros.engine.engine"]  # from .stage import ...
    assert "rclpy" in GRAPH["depthmaster_ros.ros.bag_player"]  # inside play()
    assert "depthmaster_ros.scale.sources" in GRAPH["depthmaster_ros.scale.source"]  # from . import sources


def test_the_layers_are_those_of_docs_architecture():
    """The table of docs/architecture.md (layer, unit) is the LAYERS above."""
    import re

    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| (\d+) \| `([a-z_]+)(?:/|\.py)` \|", text, flags=re.M)
    documented = defaultdict(list)
    for rank, name in rows:
        documented[int(rank)].append(name)
    assert [sorted(documented[rank]) for rank in sorted(documented)] == [sorted(units) for units in LAYERS]
