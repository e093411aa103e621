"""The command-line tools' shared options: the node's names, defaults and checks; argument errors before any model
loads; --help without importing torch (it used to take 12-16 s)."""

import argparse
import subprocess
import sys

import pytest

from depthmaster_ros.parameters import defaults
from depthmaster_ros.tools.cli_options import add_colormap, add_model_options, add_processing_res, model_values, \
    size_list

TOOLS = ["infer", "calibrate", "eval", "bag", "bench", "demo", "play", "record", "train", "fleet", "fleet_bench",
         "export"]


@pytest.mark.parametrize("tool", TOOLS)
def test_help_does_not_import_torch(tool):
    code = (f"import sys, contextlib, io\nimport depthmaster_ros.tools.{tool} as tool\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        tool.main(['--help'])\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def parser():
    parser = argparse.ArgumentParser()
    add_model_options(parser, params_file=True)
    add_processing_res(parser, "768")
    add_colormap(parser)
    return parser


def test_defaults_are_the_nodes(tmp_path):
    args = parser().parse_args([])
    values = model_values(args)
    node = defaults()
    for name in ("checkpoint", "device", "dtype", "backend", "allow_download", "cpu_threads"):
        assert values[name] == node[name], name
    assert args.colormap == node["colormap"] == "turbo"
    args = parser().parse_args(["--dtype", "bf16", "--threads", "3", "--backend", "compile", "--allow-download"])
    values = model_values(args, {**node, "dtype": "fp16", "device": "cpu"})
    assert (values["dtype"], values["cpu_threads"], values["backend"], values["allow_download"], values["device"]) \
        == ("bf16", 3, "compile", True, "cpu")  # options override the params file, the rest comes from it


@pytest.mark.parametrize("argv, message", [
    (["--dtype", "int8"], "invalid choice: 'int8'"),
    (["--backend", "tensorrt"], "invalid choice: 'tensorrt'"),
    (["--processing-res", "-1"], "expected a whole number >= 0, got -1"),
    (["--threads", "x"], "expected a whole number >= 0, got 'x'"),
    (["--colormap", "nope"], "unknown colormap 'nope'"),
    (["--params", "/no/such/file.yaml"], "/no/such/file.yaml is not a file"),
])
def test_bad_arguments_are_refused_before_anything_loads(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_one_spelling_for_sizes():
    assert size_list("640x480,1280x720") == [(640, 480), (1280, 720)]  # WIDTHxHEIGHT, as warmup_size
    with pytest.raises(argparse.ArgumentTypeError, match="is not WIDTHxHEIGHT"):
        size_list("640x")
