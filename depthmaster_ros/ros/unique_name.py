"""Is another node of this node's fully qualified name already on the ROS graph? ROS 2 lets two run: every output
is then published twice, a parameter or lifecycle call reaches both (one ``deactivate`` stops both), and on a
robot's shared GPU memory the second model can take the first one down. The node checks at start-up, before it
loads its model (``duplicate_name``: refuse, the default, or warn).

Discovery is not instant: a running node shows in a new process's graph after 0.2-2 s on a loaded machine
(measured on localhost), so the graph is watched for ``DISCOVERY_S``, which every start pays, and looked at again
after configure (``run_node.py``), for a machine so loaded that discovery takes longer. A process that
died without leaving (SIGKILL, a crash) is not seen by a process started after it (DDS participants learn of
each other from their own announcements), so a respawned node is not refused because of the one it replaces.
"""

from __future__ import annotations

import time

DISCOVERY_S = 3.0  # how long the graph is watched for a node of the same name


class DuplicateName(RuntimeError):
    """A node of the same fully qualified name runs; the text says what to do."""


def duplicate_of(node, discovery_s: float = DISCOVERY_S) -> str | None:
    """Why ``node``'s name is taken (another node of the same name and namespace is on the graph within
    ``discovery_s``), or None."""
    name, namespace = node.get_name(), node.get_namespace()
    deadline = time.monotonic() + discovery_s
    while True:
        others = sum(1 for item in node.get_node_names_and_namespaces() if tuple(item) == (name, namespace)) - 1
        if others > 0:
            return (f"a node named {node.get_fully_qualified_name()} is already running on this ROS graph: two "
                    "nodes of one name publish every output twice and a lifecycle call drives both. Start this one "
                    "under another name or namespace (-r __node:=NAME or -r __ns:=/NS), stop the other, or set "
                    "duplicate_name:=warn to run both anyway")
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)
