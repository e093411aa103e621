"""The start's duplicate-name checks (ros/run_node.py's _start) with a stand-in node whose graph changes between
looks: a twin seen before the model loads is refused at once (or warned), one that shows only after configure (a
loaded machine's slow discovery) is found by the second look on the autostart thread: refused (the node then exits
with 2) or warned. No ROS graph: the stand-in answers the graph queries."""

import pytest

from depthmaster_ros.ros import unique_name
from depthmaster_ros.ros.run_node import _start
from depthmaster_ros.ros.unique_name import DuplicateName


class Logger:
    def __init__(self):
        self.errors = []

    def error(self, line):
        self.errors.append(line)


class Parameter:
    def __init__(self, value):
        self.value = value


class StandIn:
    """A node whose graph shows a twin from the ``twin_from``-th look on (0: the first)."""

    def __init__(self, duplicate_name: str, twin_from: int):
        self.duplicate_name, self.twin_from, self.looks = duplicate_name, twin_from, 0
        self.warnings, self.logger, self.autostarted = [], Logger(), False

    def get_name(self):
        return "depthmaster"

    def get_namespace(self):
        return "/cam"

    def get_fully_qualified_name(self):
        return "/cam/depthmaster"

    def get_node_names_and_namespaces(self):
        self.looks += 1
        twins = 2 if self.looks > self.twin_from else 1
        return [("depthmaster", "/cam")] * twins + [("other", "/cam")]

    def get_parameter(self, name):
        assert name == "duplicate_name"
        return Parameter(self.duplicate_name)

    def get_logger(self):
        return self.logger

    def warn_at_start(self, message):
        self.warnings.append(message)

    def schedule_autostart(self, then=None):  # the thread's work, done at once
        self.autostarted = True
        if then is not None:
            then()


@pytest.fixture(autouse=True)
def no_discovery_wait(monkeypatch):
    monkeypatch.setattr(unique_name, "DISCOVERY_S", 0.0)
    monkeypatch.setattr(unique_name.duplicate_of, "__defaults__", (0.0,))


def test_a_twin_seen_at_once_is_refused_before_the_model_loads():
    node, refused = StandIn("refuse", twin_from=0), []
    with pytest.raises(DuplicateName, match="a node named /cam/depthmaster is already running"):
        _start(node, refused)
    assert not node.autostarted and refused == []


def test_a_twin_seen_only_after_configure_is_refused_by_the_second_look():
    node, refused = StandIn("refuse", twin_from=1), []
    _start(node, refused)
    assert node.autostarted and len(refused) == 1 and "already running" in refused[0]
    assert node.logger.errors == [f"{refused[0]}; exiting (duplicate_name: refuse)"] and node.warnings == []


@pytest.mark.parametrize("twin_from", [0, 1])
def test_warn_runs_on_and_says_so(twin_from):
    node, refused = StandIn("warn", twin_from=twin_from), []
    _start(node, refused)
    assert node.autostarted and refused == [] and node.logger.errors == []
    assert len(node.warnings) == 1 and "duplicate_name:=warn" in node.warnings[0]


def test_no_twin_no_word():
    node, refused = StandIn("refuse", twin_from=99), []
    _start(node, refused)
    assert node.autostarted and refused == [] and node.warnings == [] and node.logger.errors == []
    assert node.looks == 2  # before the model loads and after configure
