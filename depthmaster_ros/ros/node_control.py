"""Control of a running depthmaster node from another process: its lifecycle state and transitions, its
parameters, its /diagnostics. What ``ros2 lifecycle``, ``ros2 param`` and ``ros2 topic echo /diagnostics`` do, for
the venv route where the ``ros2`` command is not installed; ``depthmaster-ctl`` is the command line over it, and
the client of tests and notebooks (``DepthMasterClient.control()``) hands it out.

Errors are values: :class:`NodeNotFound` when nothing answers for the node within the timeout (with the nodes
that do exist), :class:`Refused` when the node answered no (a transition that failed or is not possible from its
state, a parameter value it refused, a name it does not have), each with a message a user can act on."""

from __future__ import annotations

import difflib
import time
from typing import Callable

from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.srv import ChangeState, GetAvailableTransitions, GetState
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters, SetParameters
from rclpy.parameter import get_parameter_value, parameter_value_to_python
from rclpy.qos import QoSProfile, ReliabilityPolicy

from .background_node import BackgroundNode
from .user_commands import DEFAULT_NODE
TRANSITIONS = ("configure", "activate", "deactivate", "cleanup", "shutdown")
TYPE_NAMES = {value: name[len("PARAMETER_"):].lower() for name, value in vars(ParameterType).items()
              if name.startswith("PARAMETER_")}


class NodeNotFound(RuntimeError):
    """Nothing answered for the node within the timeout."""


class Refused(RuntimeError):
    """The node answered, and said no."""


def qualified(namespace: str, name: str) -> str:
    """``name`` in ``namespace`` as one absolute name (``/ns/name``; ``/name`` in the root namespace)."""
    return "/".join(["", namespace.strip("/"), name]).replace("//", "/")


def node_name(node: str | None = None, namespace: str | None = None) -> str:
    """The fully qualified name of the node to control: ``node`` (absolute, or relative to ``namespace``), or the
    default node name in ``namespace``; ``/depthmaster`` when neither is given."""
    name = node or DEFAULT_NODE.lstrip("/")
    if not name.startswith("/"):
        name = qualified(namespace or "", name)
    return name.rstrip("/") or DEFAULT_NODE


class NodeControl:
    """Talks to the node ``target`` (a fully qualified name) through ``node`` (a :class:`BackgroundNode`, spun
    elsewhere). ``timeout``: seconds to wait for the node to be found, and for each answer."""

    def __init__(self, node: BackgroundNode, target: str, timeout: float = 10.0):
        self.node = node
        self.target = target
        self.timeout = timeout
        self._clients = {}

    # ------------------------------------------------------------------ services
    def _call(self, service_type, suffix: str, request):
        client = self._clients.get(suffix)
        if client is None:
            client = self._clients[suffix] = self.node.create_client(service_type, f"{self.target}/{suffix}")
        if not client.wait_for_service(timeout_sec=self.timeout):
            raise NodeNotFound(self._not_found(suffix))
        try:
            return self.node.wait(client.call_async(request), self.timeout)
        except TimeoutError:
            raise NodeNotFound(f"{self.target} did not answer {suffix} within {self.timeout:g} s") from None

    def _not_found(self, suffix: str) -> str:
        names = sorted(qualified(ns, name) for name, ns in self.node.get_node_names_and_namespaces())
        others = [n for n in names if n != self.node.get_fully_qualified_name()]
        if self.target in others:
            return f"node {self.target} is running but has no {suffix} service (is it a depthmaster node?)"
        close = difflib.get_close_matches(self.target, others, n=3, cutoff=0.4)
        close = close or [n for n in others if n.rsplit("/", 1)[-1] == self.target.rsplit("/", 1)[-1]]
        seen = f"nodes seen: {', '.join(others)}" if others else "no nodes seen (same ROS_DOMAIN_ID and " \
            "ROS_AUTOMATIC_DISCOVERY_RANGE as the node?)"
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        return f"no node {self.target} answered within {self.timeout:g} s; {seen}{hint}"

    # ------------------------------------------------------------------ lifecycle
    def state(self) -> str:
        """The node's lifecycle state label: unconfigured, inactive, active, finalized (or a transition state)."""
        return self._call(GetState, "get_state", GetState.Request()).current_state.label

    def available_transitions(self) -> dict[str, int]:
        """The transitions possible from the current state, by label (the ids differ per state: shutdown)."""
        reply = self._call(GetAvailableTransitions, "get_available_transitions", GetAvailableTransitions.Request())
        return {t.transition.label: t.transition.id for t in reply.available_transitions}

    def change_state(self, transition: str) -> str:
        """Trigger ``transition`` (configure, activate, deactivate, cleanup, shutdown); the state it reached.
        :class:`Refused` if it is not possible from the current state, or the node's callback failed (with the
        reason the node gives on /diagnostics when it gives one)."""
        from lifecycle_msgs.msg import Transition

        before = self.state()
        available = self.available_transitions()
        if transition not in available:
            possible = ", ".join(sorted(available)) or "none"
            raise Refused(f"cannot {transition} {self.target} from state {before!r} (possible now: {possible})")
        since = time.monotonic()
        reply = self._call(ChangeState, "change_state", ChangeState.Request(transition=Transition(
            id=available[transition], label=transition)))
        if not reply.success:
            reason = self._failure_reason(since)
            if not reason.startswith(f"{transition} failed"):
                reason = f"{transition} failed" + (f": {reason}" if reason else "")
            raise Refused(f"{self.target}: {reason} (state now: {self._state_or('unknown')})")
        return self._state_or("finalized" if transition == "shutdown" else "unknown")

    def _state_or(self, default: str) -> str:
        try:
            return self.state()
        except (NodeNotFound, TimeoutError):  # shutdown ends the process
            return default

    def _failure_reason(self, since: float) -> str:
        """The message of the node's first ERROR status published after ``since`` (it publishes about 1 Hz)."""
        found = []

        def take(status):
            if status.level[0] >= 2 and not found:
                found.append(status.message)

        watch = self.watch_diagnostics(lambda statuses: [take(s) for s in statuses])
        try:
            self.node.spin_until(lambda: bool(found), min(self.timeout, 5.0))
        finally:
            watch()
        return found[0] if found else ""

    # ------------------------------------------------------------------ parameters
    def parameter_names(self, prefix: str = "") -> list[str]:
        request = ListParameters.Request(prefixes=[prefix] if prefix else [], depth=0)
        return sorted(self._call(ListParameters, "list_parameters", request).result.names)

    def get_parameters(self, names: list[str]) -> dict:
        """name -> Python value (None for a parameter declared without a value); :class:`Refused` naming the
        names the node does not have."""
        def get(asked):
            return self._call(GetParameters, "get_parameters", GetParameters.Request(names=list(asked))).values

        values = get(names)
        if len(values) == len(names):
            return {name: parameter_value_to_python(value) for name, value in zip(names, values)}
        # the node answers nothing at all when one name is unknown or has no value: find which
        unknown = sorted(set(names) - set(self.parameter_names()))
        if unknown:
            raise Refused(self._unknown(unknown))
        return {name: next((parameter_value_to_python(v) for v in get([name])), None) for name in names}

    def _unknown(self, names: list[str]) -> str:
        known = self.parameter_names()
        parts = []
        for name in names:
            close = difflib.get_close_matches(name, known, n=1)
            parts.append(f"{name!r}" + (f" (did you mean {close[0]}?)" if close else ""))
        return f"{self.target} has no parameter {', '.join(parts)}"

    def set_parameter(self, name: str, text: str):
        """Set ``name`` from ``text`` (see :func:`typed_value`); the value the node holds afterwards.
        :class:`Refused` with the node's reason."""
        from rcl_interfaces.msg import Parameter as ParameterMsg

        if name not in self.parameter_names(name):
            raise Refused(self._unknown([name]))
        request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=typed_value(text))])
        result = self._call(SetParameters, "set_parameters", request).results[0]
        if not result.successful:
            raise Refused(f"{self.target} refused {name} = {text}: {result.reason}")
        return self.get_parameters([name])[name]

    def describe(self, names: list[str]) -> list[dict]:
        self.get_parameters(names)  # unknown names are refused with a suggestion
        reply = self._call(DescribeParameters, "describe_parameters", DescribeParameters.Request(names=list(names)))
        described = []
        for item in reply.descriptors:
            entry = {"name": item.name, "type": TYPE_NAMES.get(item.type, str(item.type)),
                     "description": item.description, "read_only": item.read_only}
            if item.additional_constraints:
                entry["constraints"] = item.additional_constraints
            for kind in ("floating_point_range", "integer_range"):
                for bound in getattr(item, kind):
                    entry["range"] = (bound.from_value, bound.to_value)
            described.append(entry)
        return described

    # ------------------------------------------------------------------ diagnostics
    def watch_diagnostics(self, callback: Callable[[list], None]) -> Callable[[], None]:
        """Call ``callback(statuses)`` with the DiagnosticStatus list of every /diagnostics message the target
        node publishes (told from other nodes' by the publisher, since status names carry no namespace). Returns
        the function that stops watching."""
        ours_known = set()  # publisher ids of the target; others are looked up again (a publisher's node name
        # can be unknown to the graph for a while after its first messages arrive)

        def ours(gid) -> bool:
            key = bytes(gid["data"]) if gid else None
            if key not in ours_known:
                for info in self.node.get_publishers_info_by_topic("/diagnostics"):
                    name = qualified(info.node_namespace, info.node_name)
                    if name == self.target:
                        ours_known.add(bytes(info.endpoint_gid))
            return key in ours_known

        def receive(msg: DiagnosticArray, info) -> None:
            if ours(info.get("publisher_gid")):
                callback(list(msg.status))

        subscription = self.node.create_subscription(
            DiagnosticArray, "/diagnostics", receive, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        return lambda: self.node.destroy_subscription(subscription)

    def diagnostics(self) -> list:
        """The statuses of the next /diagnostics message of the node (it publishes about once a second)."""
        received = []
        stop = self.watch_diagnostics(lambda statuses: received.append(statuses))
        try:
            if not self.node.spin_until(lambda: bool(received), self.timeout):
                self.state()  # NodeNotFound when the node is not there at all
                raise NodeNotFound(f"{self.target} published nothing on /diagnostics within {self.timeout:g} s")
        finally:
            stop()
        return received[0]


def typed_value(text: str):
    """A ParameterValue from what a user typed, the way ``ros2 param set`` types it (YAML: 2 is an integer, 2.0 a
    double, true a bool, [1.0, 2.0] a list of doubles, anything else a string), except that a list mixing
    integers and doubles ([0, -0.1, 0]) is a list of doubles where ros2 would send the text as a string."""
    import yaml

    value = get_parameter_value(text)
    if value.type == ParameterType.PARAMETER_STRING:
        try:
            items = yaml.safe_load(text)
        except yaml.YAMLError:
            return value
        if isinstance(items, list) and items and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            value.type = ParameterType.PARAMETER_DOUBLE_ARRAY
            value.double_array_value = [float(v) for v in items]
            value.string_value = ""
    return value


LEVELS = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}


def format_status(status) -> str:
    """One status as a user reads it: ``[LEVEL] name: message`` and its key/values indented."""
    lines = [f"[{LEVELS.get(status.level[0], status.level[0])}] {status.name}: {status.message}"]
    width = max((len(kv.key) for kv in status.values), default=0)
    lines += [f"    {kv.key.ljust(width)}  {kv.value}" for kv in status.values]
    return "\n".join(lines)
