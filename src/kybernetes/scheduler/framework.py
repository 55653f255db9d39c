"""The scheduling framework: Status, CycleState, NodeInfo and the runner of plugin extension points.

As upstream's `pkg/scheduler/framework`: plugins implement only the extension points they need
(a method of that name), return a `Status` instead of raising, and keep per-cycle data in the
`CycleState` under their own name.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from .resources import Resource, host_ports, pod_key, pod_priority, pod_requests

log = logging.getLogger("kybernetes.scheduler")

MAX_NODE_SCORE = 100
MIN_NODE_SCORE = 0

# The extension points a plugin may implement, in the order a pod meets them.
EXTENSION_POINTS = (
    "pre_enqueue", "less", "pre_filter", "filter", "post_filter", "pre_score", "score", "normalize_score",
    "reserve", "unreserve", "permit", "pre_bind", "bind", "post_bind",
)


class Code(IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5


class Status:
    __slots__ = ("code", "reasons", "plugin")

    def __init__(self, code: Code = Code.SUCCESS, *reasons: str, plugin: str = ""):
        self.code = code
        self.reasons = [r for r in reasons if r]
        self.plugin = plugin

    @classmethod
    def success(cls) -> Status:
        return cls(Code.SUCCESS)

    @classmethod
    def error(cls, message: str, plugin: str = "") -> Status:
        return cls(Code.ERROR, message, plugin=plugin)

    @classmethod
    def unschedulable(cls, *reasons: str) -> Status:
        return cls(Code.UNSCHEDULABLE, *reasons)

    @classmethod
    def unresolvable(cls, *reasons: str) -> Status:
        return cls(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, *reasons)

    @classmethod
    def skip(cls) -> Status:
        return cls(Code.SKIP)

    def is_success(self) -> bool:
        return self.code == Code.SUCCESS

    def is_skip(self) -> bool:
        return self.code == Code.SKIP

    def is_rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    def message(self) -> str:
        return ", ".join(self.reasons)

    def with_plugin(self, plugin: str) -> Status:
        if not self.plugin:
            self.plugin = plugin
        return self

    def __repr__(self) -> str:
        return f"Status({self.code.name}, {self.reasons!r}, plugin={self.plugin!r})"


OK = Status()


class CycleState:
    """Data shared between the extension points of one scheduling cycle, keyed by plugin name."""

    def __init__(self):
        self._data: dict[str, Any] = {}
        self.skip_filter_plugins: set[str] = set()
        self.skip_score_plugins: set[str] = set()

    def write(self, key: str, value: Any) -> None:
        self._data[key] = value

    def read(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def clone(self) -> CycleState:
        c = CycleState()
        c._data = dict(self._data)
        c.skip_filter_plugins = set(self.skip_filter_plugins)
        c.skip_score_plugins = set(self.skip_score_plugins)
        return c


def _has_affinity(pod: dict, kind: str, required: bool) -> bool:
    aff = ((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {}
    key = "requiredDuringSchedulingIgnoredDuringExecution" if required else \
        "preferredDuringSchedulingIgnoredDuringExecution"
    return bool(aff.get(key))


class NodeInfo:
    """A node with the pods on it and what they request (upstream framework.NodeInfo)."""

    def __init__(self, node: dict | None = None, pods: list[dict] | None = None):
        self.node: dict | None = None
        self.allocatable = Resource()
        self.pods: list[dict] = []
        self.requested = Resource()
        self.non_zero_requested = Resource()
        self.used_ports: list[tuple[str, str, int]] = []
        self.generation = 0
        if node is not None:
            self.set_node(node)
        for p in pods or ():
            self.add_pod(p)

    @property
    def name(self) -> str:
        return self.node["metadata"]["name"] if self.node else ""

    @property
    def labels(self) -> dict:
        return (self.node or {}).get("metadata", {}).get("labels") or {}

    def set_node(self, node: dict) -> None:
        self.node = node
        status = node.get("status") or {}
        self.allocatable = Resource.from_list(status.get("allocatable") or status.get("capacity") or {})
        self.generation += 1

    @property
    def pods_with_affinity(self) -> list[dict]:
        return [p for p in self.pods if _has_affinity(p, "podAffinity", True) or _has_affinity(p, "podAffinity", False)
                or _has_affinity(p, "podAntiAffinity", True) or _has_affinity(p, "podAntiAffinity", False)]

    @property
    def pods_with_required_anti_affinity(self) -> list[dict]:
        return [p for p in self.pods if _has_affinity(p, "podAntiAffinity", True)]

    def add_pod(self, pod: dict) -> None:
        self.pods.append(pod)
        self.requested.add(pod_requests(pod))
        self.non_zero_requested.add(pod_requests(pod, non_zero=True))
        self.used_ports.extend(host_ports(pod))
        self.generation += 1

    def remove_pod(self, pod: dict) -> bool:
        key = pod_key(pod)
        uid = pod.get("metadata", {}).get("uid")
        for i, p in enumerate(self.pods):
            if pod_key(p) == key and (not uid or not p["metadata"].get("uid") or p["metadata"]["uid"] == uid):
                del self.pods[i]
                self.requested.sub(pod_requests(p))
                self.non_zero_requested.sub(pod_requests(p, non_zero=True))
                for port in host_ports(p):
                    if port in self.used_ports:
                        self.used_ports.remove(port)
                self.generation += 1
                return True
        return False

    def clone(self) -> NodeInfo:
        c = NodeInfo()
        c.node = self.node
        c.allocatable = self.allocatable
        c.pods = list(self.pods)
        c.requested = self.requested.copy()
        c.non_zero_requested = self.non_zero_requested.copy()
        c.used_ports = list(self.used_ports)
        c.generation = self.generation
        return c


@dataclass
class PreFilterResult:
    """Node names a PreFilter plugin restricts the cycle to (None: all nodes)."""
    node_names: set[str] | None = None

    def merge(self, other: PreFilterResult | None) -> PreFilterResult:
        if other is None or other.node_names is None:
            return self
        if self.node_names is None:
            return PreFilterResult(set(other.node_names))
        return PreFilterResult(self.node_names & other.node_names)


@dataclass
class PostFilterResult:
    nominated_node_name: str = ""


NO_NODE_AVAILABLE = "0/{} nodes are available"


@dataclass
class Diagnosis:
    node_to_status: dict[str, Status] = field(default_factory=dict)
    absent_status: Status | None = None  # for nodes missing from node_to_status
    unschedulable_plugins: set[str] = field(default_factory=set)
    pre_filter_msg: str = ""
    post_filter_msg: str = ""


class FitError(Exception):
    """No node fits the pod; its message aggregates per-reason node counts as upstream's."""

    def __init__(self, pod: dict, num_all_nodes: int, diagnosis: Diagnosis):
        self.pod = pod
        self.num_all_nodes = num_all_nodes
        self.diagnosis = diagnosis
        super().__init__()

    def __str__(self) -> str:
        msg = NO_NODE_AVAILABLE.format(self.num_all_nodes) + ":"
        d = self.diagnosis
        if d.pre_filter_msg:
            msg += f" {d.pre_filter_msg}."
        else:
            counts: dict[str, int] = {}
            for status in d.node_to_status.values():
                for reason in status.reasons:
                    counts[reason] = counts.get(reason, 0) + 1
            missing = self.num_all_nodes - len(d.node_to_status)
            if missing > 0 and d.absent_status is not None:
                for reason in d.absent_status.reasons:
                    counts[reason] = counts.get(reason, 0) + missing
            histogram = sorted(f"{n} {reason}" for reason, n in counts.items())
            if histogram:
                msg += f" {', '.join(histogram)}."
        if d.post_filter_msg:
            msg += f" {d.post_filter_msg}"
            if not d.post_filter_msg.endswith("."):
                msg += "."
        return msg


class Plugin:
    """Base of every plugin; a subclass defines only the extension-point methods it implements."""

    name = ""

    def __init__(self, handle: Handle | None = None, args: dict | None = None):
        self.handle = handle or Handle()
        self.args = args or {}


class Handle:
    """What plugins may reach: the API client, listers (informer-like: get(key), list()), the nominated pods."""

    def __init__(self, client=None, listers: dict | None = None, scheduler_name: str = "default-scheduler"):
        self.client = client
        self.listers: dict[str, Any] = listers or {}
        self.scheduler_name = scheduler_name
        self.framework: Framework | None = None
        self.nominated_pods = lambda node_name: []  # replaced by the queue's nominator
        self.snapshot = lambda: []  # the current list of NodeInfo

    def get(self, kind: str, key: str) -> dict | None:
        lister = self.listers.get(kind)
        return lister.get(key) if lister is not None else None

    def namespace_labels(self, namespace: str) -> dict:
        ns = self.get("namespaces", namespace)
        return ((ns or {}).get("metadata") or {}).get("labels") or {}


class Framework:
    """Runs the enabled plugins of one profile, extension point by extension point, in order."""

    def __init__(self, registry: dict, enabled: list[tuple[str, int]], handle: Handle | None = None,
                 args: dict | None = None):
        self.handle = handle or Handle()
        self.handle.framework = self
        self.plugins = [registry[name](self.handle, (args or {}).get(name)) for name, _ in enabled]
        for p, (name, _) in zip(self.plugins, enabled, strict=True):
            p.name = name
        self.weights = {name: weight or 1 for name, weight in enabled}
        self.points = {ep: [p for p in self.plugins if callable(getattr(p, ep, None))] for ep in EXTENSION_POINTS}
        self.waiting: dict[str, asyncio.Future] = {}

    def plugin(self, name: str) -> Plugin | None:
        return next((p for p in self.plugins if p.name == name), None)

    def run_pre_enqueue(self, pod: dict) -> Status:
        for p in self.points["pre_enqueue"]:
            s = p.pre_enqueue(pod)
            if not s.is_success():
                return s.with_plugin(p.name)
        return OK

    def less(self, a, b) -> bool:
        sorters = self.points["less"]
        return sorters[0].less(a, b) if sorters else False

    def run_pre_filter(self, state: CycleState, pod: dict, nodes: list[NodeInfo]):
        result: PreFilterResult | None = None
        for p in self.points["pre_filter"]:
            r, s = p.pre_filter(state, pod, nodes)
            if s.is_skip():
                state.skip_filter_plugins.add(p.name)
                continue
            if not s.is_success():
                return None, s.with_plugin(p.name)
            if r is not None and r.node_names is not None:
                result = r if result is None else result.merge(r)
                if not result.node_names:
                    return result, Status.unresolvable(f"node(s) didn't satisfy plugin(s) [{p.name}]").with_plugin(
                        p.name)
        return result, OK

    def run_filter(self, state: CycleState, pod: dict, node_info: NodeInfo) -> Status:
        for p in self.points["filter"]:
            if p.name in state.skip_filter_plugins:
                continue
            s = p.filter(state, pod, node_info)
            if not s.is_success():
                if s.code not in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE):
                    s = Status.error(f"running {p.name!r} filter plugin: {s.message()}")
                return s.with_plugin(p.name)
        return OK

    def run_filter_with_nominated(self, state: CycleState, pod: dict, node_info: NodeInfo) -> Status:
        """Filter as if the higher-or-equal priority pods nominated to this node were already there."""
        nominated = [q for q in self.handle.nominated_pods(node_info.name)
                     if pod_priority(q) >= pod_priority(pod) and pod_key(q) != pod_key(pod)]
        if nominated:
            node_info = node_info.clone()
            for q in nominated:
                node_info.add_pod(q)
        return self.run_filter(state, pod, node_info)

    async def run_post_filter(self, state: CycleState, pod: dict, diagnosis: Diagnosis):
        reasons = []
        for p in self.points["post_filter"]:
            result, s = await p.post_filter(state, pod, diagnosis)
            if s.is_success():
                return result, s.with_plugin(p.name)
            if s.code == Code.ERROR:
                return None, s.with_plugin(p.name)
            reasons.extend(s.reasons)
        return None, Status.unschedulable(*reasons)

    def run_pre_score(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> Status:
        for p in self.points["pre_score"]:
            s = p.pre_score(state, pod, nodes)
            if s.is_skip():
                state.skip_score_plugins.add(p.name)
            elif not s.is_success():
                return s.with_plugin(p.name)
        return OK

    def run_score(self, state: CycleState, pod: dict, nodes: list[NodeInfo]):
        """Total weighted score per node name, and the per-plugin scores."""
        totals = {n.name: 0 for n in nodes}
        per_plugin: dict[str, dict[str, int]] = {}
        for p in self.points["score"]:
            if p.name in state.skip_score_plugins:
                continue
            scores = {}
            for n in nodes:
                value, s = p.score(state, pod, n)
                if not s.is_success():
                    return None, per_plugin, s.with_plugin(p.name)
                scores[n.name] = value
            if callable(getattr(p, "normalize_score", None)):
                s = p.normalize_score(state, pod, scores)
                if not s.is_success():
                    return None, per_plugin, s.with_plugin(p.name)
            weight = self.weights.get(p.name, 1)
            for name, value in scores.items():
                if not MIN_NODE_SCORE <= value <= MAX_NODE_SCORE:
                    return None, per_plugin, Status.error(f"plugin {p.name!r} returned an invalid score {value}")
                totals[name] += value * weight
            per_plugin[p.name] = scores
        return totals, per_plugin, OK

    def run_reserve(self, state: CycleState, pod: dict, node_name: str) -> Status:
        for p in self.points["reserve"]:
            s = p.reserve(state, pod, node_name)
            if not s.is_success():
                self.run_unreserve(state, pod, node_name)
                return s.with_plugin(p.name)
        return OK

    def run_unreserve(self, state: CycleState, pod: dict, node_name: str) -> None:
        for p in reversed(self.points["unreserve"]):
            p.unreserve(state, pod, node_name)

    def run_permit(self, state: CycleState, pod: dict, node_name: str) -> tuple[Status, float]:
        timeout = 0.0
        for p in self.points["permit"]:
            s, t = p.permit(state, pod, node_name)
            if s.code == Code.WAIT:
                timeout = max(timeout, t)
            elif not s.is_success():
                return s.with_plugin(p.name), 0.0
        if timeout:
            self.waiting[pod_key(pod)] = asyncio.get_running_loop().create_future()
            return Status(Code.WAIT), timeout
        return OK, 0.0

    def allow(self, pod: dict, allowed: bool = True, message: str = "") -> None:
        fut = self.waiting.get(pod_key(pod))
        if fut is not None and not fut.done():
            fut.set_result(OK if allowed else Status.unschedulable(message or "rejected by permit plugin"))

    async def wait_on_permit(self, pod: dict, timeout: float) -> Status:
        fut = self.waiting.get(pod_key(pod))
        if fut is None:
            return OK
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return Status.unschedulable("rejected due to timeout after waiting on permit")
        finally:
            self.waiting.pop(pod_key(pod), None)

    async def run_pre_bind(self, state: CycleState, pod: dict, node_name: str) -> Status:
        for p in self.points["pre_bind"]:
            s = await p.pre_bind(state, pod, node_name)
            if not s.is_success():
                return s.with_plugin(p.name)
        return OK

    async def run_bind(self, state: CycleState, pod: dict, node_name: str) -> Status:
        for p in self.points["bind"]:
            s = await p.bind(state, pod, node_name)
            if s.is_skip():
                continue
            return s.with_plugin(p.name)
        return Status.error("no bind plugin bound the pod")

    def run_post_bind(self, state: CycleState, pod: dict, node_name: str) -> None:
        for p in self.points["post_bind"]:
            p.post_bind(state, pod, node_name)


__all__ = [
    "Code", "Status", "OK", "CycleState", "NodeInfo", "PreFilterResult", "PostFilterResult", "Diagnosis",
    "FitError", "Plugin", "Handle", "Framework", "MAX_NODE_SCORE", "MIN_NODE_SCORE", "EXTENSION_POINTS", "pod_priority", "Resource",
]
