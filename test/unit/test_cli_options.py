"""The command-line tools' shared options: the node's names, defaults and checks; argument errors before any model
loads."""

import argparse

import pytest

from depthmaster_ros.parameters import defaults
from depthmaster_ros.tools.cli_options import add_colormap, add_model_options, add_processing_res, model_values, \
    size_list


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
