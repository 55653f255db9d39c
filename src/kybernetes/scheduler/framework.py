"""The scheduling framework: Status, CycleState, NodeInfo and the runner of plugin extension points.

As upstream's `pkg/scheduler/framework`: plugins implement only the extension points they need
(a method of that name), return a `Status` instead of raising, and keep per-cycle data in the
`CycleState` under their own name.
"""

from __future__ import annotations

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
        self.filter_plugins: list | None = None  # Framework.filter_plugins' per-cycle list
        self.filter_skips = 0

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


def _any_affinity(pod: dict) -> bool:
    return (_has_affinity(pod, "podAffinity", True) or _has_affinity(pod, "podAffinity", False)
            or _has_affinity(pod, "podAntiAffinity", True) or _has_affinity(pod, "podAntiAffinity", False))


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
        # the node's name and labels, "" and {} without a node: plain attributes, read per node in every cycle
        self.name = ""
        self.labels: dict = {}
        self.unschedulable = False  # spec.unschedulable and spec.taints of the node, read once per node update
        self.taints: list[dict] = []
        # how many of the pods have pod (anti-)affinity terms, and required anti-affinity terms: plugins
        # skip nodes without any, as upstream's snapshot lists HavePodsWithAffinity nodes
        self.affinity_pods = 0
        self.required_anti_pods = 0
        if node is not None:
            self.set_node(node)
        for p in pods or ():
            self.add_pod(p)

    def set_node(self, node: dict) -> None:
        self.node = node
        meta = node.get("metadata") or {}
        self.name = meta.get("name") or ""
        self.labels = meta.get("labels") or {}
        spec = node.get("spec") or {}
        self.unschedulable = bool(spec.get("unschedulable"))
        self.taints = spec.get("taints") or []
        status = node.get("status") or {}
        self.allocatable = Resource.from_list(status.get("allocatable") or status.get("capacity") or {})
        self.generation += 1

    @property
    def pods_with_affinity(self) -> list[dict]:
        if not self.affinity_pods:
            return []
        return [p for p in self.pods if _any_affinity(p)]

    @property
    def pods_with_required_anti_affinity(self) -> list[dict]:
        if not self.required_anti_pods:
            return []
        return [p for p in self.pods if _has_affinity(p, "podAntiAffinity", True)]

    def _count_affinity(self, pod: dict, sign: int) -> None:
        if (pod.get("spec") or {}).get("affinity") and _any_affinity(pod):
            self.affinity_pods += sign
            if _has_affinity(pod, "podAntiAffinity", True):
                self.required_anti_pods += sign

    def add_pod(self, pod: dict) -> None:
        self.pods.append(pod)
        self.requested.add(pod_requests(pod))
        self.non_zero_requested.add(pod_requests(pod, non_zero=True))
        self.used_ports.extend(host_ports(pod))
        self._count_affinity(pod, 1)
        self.generation += 1

    def remove_pod(self, pod: dict) -> bool:
        key = pod_key(pod)
        uid = pod.get("metadata", {}).get("uid")
        for i, p in enumerate(self.pods):
            if pod_key(p) == key and (not uid or not p["metadata"].get("uid") or p["metadata"]["uid"] == uid):
                del self.pods[i]
                self._count_affinity(p, -1)
                self.requested.sub(pod_requests(p))
                self.non_zero_requested.sub(pod_requests(p, non_zero=True))
                for port in host_ports(p):
                    if port in self.used_ports:
                        self.used_ports.remove(port)
                self.generation += 1
                return True
        return False

    def clear_node(self) -> None:
        """The node is gone; its pods' accounting stays until they go too."""
        self.node = None
        self.name, self.labels = "", {}
        self.unschedulable, self.taints = False, []

    def clone(self) -> NodeInfo:
        c = NodeInfo()
        c.node = self.node
        c.allocatable = self.allocatable
        c.pods = list(self.pods)
        c.requested = self.requested.copy()
        c.non_zero_requested = self.non_zero_requested.copy()
        c.used_ports = list(self.used_ports)
        c.generation = self.generation
        c.name, c.labels = self.name, self.labels
        c.unschedulable, c.taints = self.unschedulable, self.taints
        c.affinity_pods, c.required_anti_pods = self.affinity_pods, self.required_anti_pods
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


# The runner lives in its own module; it is part of this one's public names.
from .runtime import Framework, Handle, Plugin  # noqa: E402

__all__ = [
    "Code", "Status", "OK", "CycleState", "NodeInfo", "PreFilterResult", "PostFilterResult", "Diagnosis",
    "FitError", "Plugin", "Handle", "Framework", "MAX_NODE_SCORE", "MIN_NODE_SCORE", "EXTENSION_POINTS", "pod_priority", "Resource",
]
