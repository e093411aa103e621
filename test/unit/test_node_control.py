"""The pieces of depthmaster-ctl that need no node: names, typed values, the commands the node prints, the
status format (the tool against a live node: test/system/test_ctl.py)."""

import shlex
import sys

import pytest
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterType

from depthmaster_ros.ros import user_commands
from depthmaster_ros.ros.node_control import format_status, node_name, typed_value


@pytest.mark.parametrize("node, namespace, expected", [
    (None, None, "/depthmaster"), (None, "/front", "/front/depthmaster"), (None, "front/", "/front/depthmaster"),
    ("other", "/front", "/front/other"), ("/a/b", "/ignored", "/a/b"), ("depthmaster", None, "/depthmaster"),
])
def test_node_name(node, namespace, expected):
    assert node_name(node, namespace) == expected


@pytest.mark.parametrize("text, kind, field, value", [
    ("2", ParameterType.PARAMETER_INTEGER, "integer_value", 2),
    ("2.5", ParameterType.PARAMETER_DOUBLE, "double_value", 2.5),
    ("true", ParameterType.PARAMETER_BOOL, "bool_value", True),
    ("fixed", ParameterType.PARAMETER_STRING, "string_value", "fixed"),
    ("[1, 2]", ParameterType.PARAMETER_INTEGER_ARRAY, "integer_array_value", [1, 2]),
    ("[0, -0.1, 0.5]", ParameterType.PARAMETER_DOUBLE_ARRAY, "double_array_value", [0.0, -0.1, 0.5]),
    ("[front, rear]", ParameterType.PARAMETER_STRING_ARRAY, "string_array_value", ["front", "rear"]),
    ("[front, 1]", ParameterType.PARAMETER_STRING, "string_value", "[front, 1]"),
])
def test_values_are_typed_as_ros2_param_set_types_them(text, kind, field, value):
    typed = typed_value(text)
    actual = getattr(typed, field)
    assert typed.type == kind
    assert (list(actual) if isinstance(value, list) else actual) == value


def fake_program(folder, name):
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / name
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    return program


def test_commands_name_ros2_where_it_is_installed(tmp_path, monkeypatch):
    fake_program(tmp_path / "ros", "ros2")
    fake_program(tmp_path / "ros", "depthmaster-ctl")
    monkeypatch.setenv("PATH", str(tmp_path / "ros"))
    assert user_commands.lifecycle_command("/front/depthmaster", "configure") == \
        "ros2 lifecycle set /front/depthmaster configure"
    assert user_commands.param_set_command("/depthmaster", "scale", "0.5") == "ros2 param set /depthmaster scale 0.5"
    assert user_commands.diagnostics_command("/depthmaster") == "ros2 topic echo /diagnostics"


def test_commands_name_depthmaster_ctl_without_ros2(tmp_path, monkeypatch):
    fake_program(tmp_path / "venv", "depthmaster-ctl")
    monkeypatch.setenv("PATH", str(tmp_path / "venv"))
    assert user_commands.lifecycle_command("/depthmaster", "configure") == "depthmaster-ctl configure"
    assert user_commands.lifecycle_command("/front/depthmaster", "deactivate") == \
        "depthmaster-ctl --node /front/depthmaster deactivate"
    command = user_commands.param_set_command("/depthmaster", "lidar_to_camera", "[0, 0, 0, 0, 0, 0, 1]")
    assert shlex.split(command) == ["depthmaster-ctl", "param", "set", "lidar_to_camera", "[0, 0, 0, 0, 0, 0, 1]"]
    assert user_commands.diagnostics_command("/front/depthmaster") == \
        "depthmaster-ctl --node /front/depthmaster diagnostics"


def test_commands_use_the_path_of_depthmaster_ctl_when_the_venv_is_not_activated(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    python = tmp_path / "venv" / "bin" / "python"
    fake_program(python.parent, "depthmaster-ctl")
    monkeypatch.setattr(sys, "executable", str(python))
    assert user_commands.lifecycle_command("/depthmaster", "configure") == \
        f"{python.parent / 'depthmaster-ctl'} configure"
    monkeypatch.setattr(sys, "executable", str(tmp_path / "elsewhere" / "python"))  # neither tool anywhere
    assert user_commands.lifecycle_command("/depthmaster", "configure") == "ros2 lifecycle set /depthmaster configure"


def test_format_status():
    status = DiagnosticStatus(level=DiagnosticStatus.WARN, name="depthmaster: depth", message="node is inactive",
                              values=[KeyValue(key="lifecycle_state", value="inactive"),
                                      KeyValue(key="received", value="3")])
    assert format_status(status) == ("[WARN] depthmaster: depth: node is inactive\n"
                                     "    lifecycle_state  inactive\n"
                                     "    received         3")
