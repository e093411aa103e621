"""ROS 2 params files (``--params-file`` of the node, ``--params`` of the tools) and ``-p NAME:=VALUE`` overrides,
read the way rcl reads them, with every problem as one line naming the file, the line and what was expected.

rcl (``rcl_yaml_param_parser``) refuses a file whole, and the node with it, when the YAML is invalid, a list mixes
types (``[0.1, 0, 1]``: integers and decimals), a list holds lists or mappings, a node block has a key other than
``ros__parameters`` or nested namespaces, or an alias (``*name``) is used; it accepts a file that is a list or a
single value and then sets nothing. This reader refuses all of these, so a file the tools accept is one the node
accepts, and the node can say what is wrong before rcl stops it with a traceback. The values' meaning (types,
ranges) is checked against the parameter table by ``parameters.py``. No ROS imports here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PARAMETERS_KEY = "ros__parameters"
_KINDS = {"tag:yaml.org,2002:bool": "true/false", "tag:yaml.org,2002:int": "integer",
          "tag:yaml.org,2002:float": "decimal", "tag:yaml.org,2002:str": "string", "tag:yaml.org,2002:null": "empty"}


class ParamsFileError(ValueError):
    """A params file or override that ROS cannot read; the text is one line."""


@dataclass
class ParamsDocument:
    """The blocks of a params file: node key (``/**``, ``depthmaster``, ``/ns/depthmaster``) -> parameter name
    (dotted for nested groups) -> value; ``lines``: the same -> line number in the file."""

    path: str
    blocks: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: dict[str, dict[str, int]] = field(default_factory=dict)

    def for_node(self, node_name: str) -> tuple[dict[str, Any], dict[str, int]]:
        """The values that apply to a node of this name in any namespace: the ``/**`` block first, then the
        node's own blocks (which win); and the line of each."""
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}
        keys = ["/**"] + [key for key in self.blocks if key != "/**" and key.rstrip("/").split("/")[-1] == node_name]
        for key in keys:
            values.update(self.blocks.get(key, {}))
            lines.update(self.lines.get(key, {}))
        return values, lines


def read_params_file(path: str | Path) -> ParamsDocument:
    """The file's blocks; ParamsFileError (one line) for anything ROS would refuse."""
    import yaml

    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ParamsFileError(f"cannot read params file {path}: {reason}") from exc
    document = ParamsDocument(str(path))
    root = _compose(text, str(path))
    if root is None:
        return document  # an empty file sets nothing, as for ROS
    if not isinstance(root, yaml.MappingNode):
        raise ParamsFileError(f"{path} line {_line(root)}: expected a ROS 2 params file ('/**:' or 'NODE:', then "
                              f"'  {PARAMETERS_KEY}:'), got {_what(root)}")
    _node_blocks(root, "", document)
    return document


def parse_override(rule: str) -> tuple[str, Any]:
    """``-p NAME:=VALUE`` (also ``NODE:NAME:=VALUE``) -> (the rule's name part, value), read as rcl reads it."""
    import yaml

    name, separator, text = rule.partition(":=")
    if not separator or not name.strip() or not text.strip():
        raise ParamsFileError(f"-p {rule!r} is not NAME:=VALUE (e.g. -p scale_mode:=fixed)")
    where = f"-p {rule}"
    root = _compose(text, where)
    if isinstance(root, yaml.MappingNode):
        raise ParamsFileError(f"{where}: a value must be a number, true/false, a string or a [list], got a mapping")
    return name, _value(root, where, name)


# ---------------------------------------------------------------------------------------------------------------
def _compose(text: str, where: str):
    """The YAML node tree; invalid YAML and aliases as one line."""
    import yaml

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise ParamsFileError(f"{where} line {event.start_mark.line + 1}: aliases (*{event.anchor}) are not "
                                      "supported in ROS params files; write the value out")
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None and where[:2] != "-p" else ""
        detail = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise ParamsFileError(f"{where}{at}: not valid YAML: {detail}") from exc
    except yaml.YAMLError as exc:
        raise ParamsFileError(f"{where}: not valid YAML: {' '.join(str(exc).split())}") from exc


def _line(node) -> int:
    return node.start_mark.line + 1


def _what(node) -> str:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == "tag:yaml.org,2002:null":
        return "nothing"
    return f"the value {node.value!r}"


def _node_blocks(mapping, prefix: str, document: ParamsDocument) -> None:
    """Node names (possibly nested as namespaces) down to their ``ros__parameters``."""
    import yaml

    for key, value in mapping.value:
        name = str(key.value)
        where = f"{document.path} line {_line(key)}"
        if name == PARAMETERS_KEY:
            if not prefix:
                raise ParamsFileError(f"{where}: '{PARAMETERS_KEY}' must be under a node name ('/**:' or 'NODE:')")
            node = prefix.rstrip("/") or "/"
            document.blocks.setdefault(node, {})
            document.lines.setdefault(node, {})
            if isinstance(value, yaml.ScalarNode) and value.tag == "tag:yaml.org,2002:null":
                continue  # 'ros__parameters:' with nothing under it
            if not isinstance(value, yaml.MappingNode):
                raise ParamsFileError(f"{where}: '{PARAMETERS_KEY}' must hold 'name: value' lines, got "
                                      f"{_what(value)}")
            _parameters(value, "", node, document)
        elif isinstance(value, yaml.MappingNode):
            _node_blocks(value, f"{prefix}{name}/", document)
        else:
            raise ParamsFileError(f"{where}: '{name}' must be a node name holding '{PARAMETERS_KEY}:' (ROS reads no "
                                  f"value before it), got {_what(value)}")


def _parameters(mapping, prefix: str, node: str, document: ParamsDocument) -> None:
    import yaml

    for key, value in mapping.value:
        name = f"{prefix}{key.value}"
        if isinstance(value, yaml.MappingNode):  # a group: front: {camera_height: 0.5} is front.camera_height
            _parameters(value, f"{name}.", node, document)
            continue
        document.blocks[node][name] = _value(value, f"{document.path} line {_line(value)}", name)
        document.lines[node][name] = _line(value)


def _value(node, where: str, name: str) -> Any:
    """A scalar, or a list of scalars of one type, as ROS types it."""
    import yaml

    loader = yaml.SafeLoader("")
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        raise ParamsFileError(f"{where}: {name} has no value (write one, or remove the line)")
    if isinstance(node, yaml.SequenceNode):
        kinds = []
        for item in node.value:
            if not isinstance(item, yaml.ScalarNode):
                raise ParamsFileError(f"{where}: {name} is a list holding {_what(item)}; ROS parameters are lists "
                                      "of numbers, true/false or strings")
            kinds.append(_KINDS.get(item.tag, item.tag))
        if len(set(kinds)) > 1:
            first = kinds[0]
            other = next(kind for kind in kinds if kind != first)
            hint = (" (write every number with a decimal point, e.g. 0.0 for 0)"
                    if {first, other} == {"integer", "decimal"} else "")
            raise ParamsFileError(f"{where}: {name} mixes {first} and {other} values in one list; a ROS parameter "
                                  f"list holds one type{hint}")
    return loader.construct_object(node, deep=True)
