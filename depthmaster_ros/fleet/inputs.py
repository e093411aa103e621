"""The bags of a fleet run, from what the user names: bag folders, single .mcap / .db3 files, glob patterns, folders
of bags (an archive, searched recursively), and text manifests (one of those per line, ``#`` comments); each with
the name of its output bag."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from ..rosbag.salvage import STORAGE_SUFFIXES

MANIFEST_SUFFIXES = (".txt", ".list", ".manifest")


class InputError(ValueError):
    """An input that names no bag; the text says which and why."""


@dataclass(frozen=True)
class FleetInput:
    path: Path  # a bag folder or a storage file
    name: str  # of its output bag in the output folder


def is_bag(path: Path) -> bool:
    """A rosbag2 folder (metadata.yaml, or storage files as a bag cut short leaves them) or a storage file."""
    if path.is_file():
        return path.suffix in STORAGE_SUFFIXES
    return path.is_dir() and ((path / "metadata.yaml").is_file()
                              or any(p.suffix in STORAGE_SUFFIXES and p.is_file() for p in path.iterdir()))


def _bags_under(folder: Path) -> list[Path]:
    """The bags in a folder of bags: bag folders (not searched further) and loose storage files."""
    found = []
    for item in sorted(folder.iterdir()):
        if item.name.endswith(".partial"):  # an unfinished output of ours, not an input
            continue
        if is_bag(item):
            found.append(item)
        elif item.is_dir():
            found += _bags_under(item)
    return found


def expand(items: list[str], base: Path | None = None) -> list[Path]:
    """Every bag the items name, in order, each once."""
    bags: list[Path] = []
    for item in items:
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        path = Path(item).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        if glob.has_magic(str(path)):
            matches = [Path(p) for p in sorted(glob.glob(str(path), recursive=True))]
            if not matches:
                raise InputError(f"{item}: the pattern matches nothing")
            bags += [m for m in matches if is_bag(m)] or _fail(f"{item}: the pattern matches no bag")
        elif not path.exists():
            raise InputError(f"{item}: no such bag, folder or manifest")
        elif is_bag(path):
            bags.append(path)
        elif path.is_file() and path.suffix in MANIFEST_SUFFIXES:
            bags += expand(path.read_text().splitlines(), base=path.parent)
        elif path.is_dir():
            bags += _bags_under(path) or _fail(f"{item}: the folder holds no bag (no metadata.yaml, .mcap or .db3)")
        else:
            raise InputError(f"{item}: not a bag (.mcap, .db3 or a rosbag2 folder) nor a manifest "
                             f"({', '.join(MANIFEST_SUFFIXES)}: one bag, folder or pattern per line)")
    unique, seen = [], set()
    for bag in bags:
        key = bag.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(bag)
    return unique


def _fail(message: str):
    raise InputError(message)


def fleet_inputs(items: list[str]) -> list[FleetInput]:
    """The bags with their output names: each bag's folder name (a file's stem); bags that would share a name
    are named by their path below the folder all of them share, with '__' for '/'."""
    bags = expand(items)
    if not bags:
        raise InputError("no bag given")
    names = [bag.stem if bag.is_file() else bag.name for bag in bags]
    if len(set(names)) < len(names):
        common = Path(os.path.commonpath([str(bag.resolve()) for bag in bags]))
        names = ["__".join((bag.resolve().with_suffix("") if bag.is_file() else bag.resolve())
                           .relative_to(common).parts) for bag in bags]
    return [FleetInput(bag, name) for bag, name in zip(bags, names)]
