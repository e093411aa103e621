"""The command-line tools' shared options, taken from the parameter table: the same names (``checkpoint`` ->
``--checkpoint``), defaults, meanings and checks as the node's parameters, one spelling for image sizes
(WIDTHxHEIGHT, as ``warmup_size``); their values make a backend with
:func:`~depthmaster_ros.model.backends.backend_from_parameters`."""

from __future__ import annotations

import argparse
from typing import Any

from ..model.backends import backend_from_parameters, backend_names, backend_parameters
from ..parameters import defaults, parse_size, spec

create_backend = backend_from_parameters  # the name the tools used for it before it moved to model/backends.py
MODEL_OPTIONS = ("checkpoint", "allow_download", "device", "dtype", "backend")


def _help(name: str) -> str:
    item = spec(name)
    default = item.default if not isinstance(item.default, bool) else ("on" if item.default else "off")
    return f"{item.description} (default: {default!s}; the params file's with --params)".replace("%", "%%")


def add_model_options(parser: argparse.ArgumentParser, params_file: bool = False,
                      names: tuple[str, ...] = MODEL_OPTIONS) -> None:
    """--checkpoint, --allow-download, --device, --dtype, --backend (those of ``names``) and --threads, as the
    node's parameters (and --params, the node's params file, when ``params_file``: these options override its
    values)."""
    group = parser.add_argument_group("model (the node's parameters of the same names)")
    if params_file:
        group.add_argument("--params", type=_existing_file, metavar="FILE",
                           help="the node's parameters YAML (config/depthmaster.yaml format); its values are used, "
                                "the options below override them")
    for name in names:
        item = spec(name)
        flag = "--" + name.replace("_", "-")
        if item.type is bool:
            group.add_argument(flag, action="store_true", default=None, help=_help(name))
        else:
            group.add_argument(flag, default=None, choices=item.allowed, help=_help(name))
    group.add_argument("--threads", type=_non_negative_int, default=None, metavar="N",
                       help=spec("cpu_threads").description.replace("%", "%%") + " (the node's cpu_threads)")
    for name in backend_names() if "backend" in names else ():  # each backend's own parameters, plug-ins' included
        specs = [item for item in backend_parameters(name) if spec(item.name) is item]
        if specs:
            options = parser.add_argument_group(f"backend {name} (the node's parameters of the same names)")
            for item in specs:
                _add_parameter_option(options, item)


def add_processing_res(parser: argparse.ArgumentParser, default_text: str) -> None:
    parser.add_argument("--processing-res", type=_checked("processing_res", _non_negative_int), default=None,
                        metavar="N",
                        help=f"{spec('processing_res').description} (default: {default_text})")


def add_colormap(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--colormap", default=spec("colormap").default, type=_colormap,
                        help=f"{spec('colormap').description} (default: {spec('colormap').default})")


def model_values(args: argparse.Namespace, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameter values a tool runs with: the params file's (or the defaults), with the options given."""
    values = dict(params if params is not None else defaults())
    for name in MODEL_OPTIONS:
        given = getattr(args, name, None)
        if given is not None:
            values[name] = given
    if getattr(args, "threads", None) is not None:
        values["cpu_threads"] = args.threads
    for name in backend_names():
        for item in backend_parameters(name):
            given = getattr(args, item.name, None)
            if given is not None:
                values[item.name] = given
    return values


def _add_parameter_option(group, item) -> None:
    """``--NAME`` for a parameter of the table, of its type, checked as the node checks it (a list: its items
    after the option)."""
    flag = "--" + item.name.replace("_", "-")
    if item.type is bool:
        group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=_help(item.name))
        return

    kind = item.item_type if item.type is list else item.type

    def convert(text: str):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item.name}: expected {kind.__name__}, got {text!r}") from None

    class Checked(argparse.Action):  # the whole value, as the node checks it
        def __call__(self, parser, namespace, value, option_string=None):
            reason = item.check(value)
            if reason:
                parser.error(reason)
            setattr(namespace, self.dest, value)

    group.add_argument(flag, type=convert, action=Checked, default=None, nargs="+" if item.type is list else None,
                       metavar=item.name.upper(), help=_help(item.name))


def size_list(text: str) -> list[tuple[int, int]]:
    """'640x480,1280x720' -> [(640, 480), (1280, 720)] (WIDTHxHEIGHT, as warmup_size)."""
    sizes = []
    for item in text.split(","):
        size = parse_size(item.strip())
        if size is None or min(size) < 8:
            raise argparse.ArgumentTypeError(f"size '{item}' is not WIDTHxHEIGHT with both at least 8, e.g. 640x480")
        sizes.append(size)
    return sizes


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def _checked(name: str, convert):
    """An argparse type: ``convert`` then the parameter's own check (its range and rule), as the node has it."""
    def check(text: str):
        value = convert(text)
        reason = spec(name).check(value, "--" + name.replace("_", "-"))
        if reason:
            raise argparse.ArgumentTypeError(reason)
        return value

    return check


def _existing_file(text: str):
    from pathlib import Path

    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a file")
    return path


def _colormap(name: str) -> str:
    reason = spec("colormap").check(name)
    if reason:
        raise argparse.ArgumentTypeError(reason)
    return name
