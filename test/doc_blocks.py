"""The runnable blocks of README.md and docs/*.md, and a way to run one as written.

A block is marked by the line ``<!-- readme-test: NAME -->`` right before its fence. ``bash`` and ``python``
blocks run in a process of their own; a ``yaml`` block is a file the blocks after it use, written to the sandbox
as NAME."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKED = re.compile(r"^<!-- readme-test: ([\w.-]+) -->\n```(bash|python|yaml)\n(.*?)```", re.S | re.M)
MARKER = re.compile(r"^<!-- readme-test: ([^>]*?) -->", re.M)


@dataclass(frozen=True)
class DocBlock:
    path: str  # relative to the repository: README.md or docs/NAME.md
    language: str
    code: str


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def doc_blocks() -> dict[str, DocBlock]:
    """Every marked block by name. A name used twice, or a marker that marks no block it can run (a typo, a blank
    line before the fence, another language), is an error naming the file."""
    blocks: dict[str, DocBlock] = {}
    for document in documents():
        text = document.read_text()
        relative = str(document.relative_to(REPO))
        found = MARKED.findall(text)
        if len(found) != len(MARKER.findall(text)):
            marked = {name for name, _, _ in found}
            stray = [name for name in MARKER.findall(text) if name not in marked]
            raise ValueError(f"{relative}: marker(s) {stray} not right before a ```bash, ```python or ```yaml block")
        for name, language, code in found:
            if name in blocks:
                raise ValueError(f"block {name!r} is in both {blocks[name].path} and {relative}")
            blocks[name] = DocBlock(relative, language, code)
    return blocks


def write_files(root: Path) -> None:
    """The yaml blocks, as the files the other blocks read."""
    for name, block in doc_blocks().items():
        if block.language == "yaml":
            (root / name).write_text(block.code)


class Block:
    """A bash or python block running in its own process group (a block may leave a node running in the
    background), its output in a file (a background process keeps a pipe open after the block ends)."""

    def __init__(self, root: Path, env: dict, name: str):
        block = doc_blocks()[name]
        if block.language not in ("bash", "python"):
            raise ValueError(f"block {name!r} is {block.language}, not a command")
        self.name, self.path = name, block.path
        command = ["bash", "-e", "-c", block.code] if block.language == "bash" else [sys.executable, "-c", block.code]
        self.log = root / f"{name}.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def wait(self, timeout: float = 600) -> int:
        return self.process.wait(timeout)

    def stop(self) -> str:
        """SIGINT to everything the block started (as Ctrl-C in its terminal); its output."""
        try:
            os.killpg(self.process.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        self.process.wait(60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and subprocess.run(["pgrep", "-g", str(self.process.pid)],
                                                             capture_output=True).returncode == 0:
            time.sleep(0.2)  # background processes of the block finishing
        return self.log.read_text()


def run_block(root: Path, env: dict, name: str, timeout: float = 600) -> str:
    """Run a block to its end; its output. It must exit with 0."""
    block = Block(root, env, name)
    code = block.wait(timeout)
    output = block.stop()
    assert code == 0, f"{block.path} block {name!r} failed:\n{output}"
    return output
