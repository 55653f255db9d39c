"""NodeResourcesFit: requests against allocatable; LeastAllocated scoring of cpu and memory (weight 1 each)."""

from __future__ import annotations

from ..framework import MAX_NODE_SCORE, OK, Code, CycleState, NodeInfo, Plugin, Status
from ..resources import CPU, EPHEMERAL, MEMORY, Resource, pod_requests

DEFAULT_RESOURCES = ((CPU, 1), (MEMORY, 1))


def insufficient_resources(request: Resource, node_info: NodeInfo) -> list[tuple[str, bool]]:
    """(reason, exceeds the node's whole allocatable) for every resource the node cannot give."""
    out = []
    alloc, used = node_info.allocatable, node_info.requested
    if len(node_info.pods) + 1 > alloc.allowed_pod_number:
        out.append(("Too many pods", False))
    if request.is_zero():
        return out
    for name in (CPU, MEMORY, EPHEMERAL, *sorted(request.scalar)):
        want = request.get(name)
        if want <= 0:
            continue
        if want > alloc.get(name) - used.get(name):
            out.append((f"Insufficient {name}", want > alloc.get(name)))
    return out


def least_requested_score(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


class NodeResourcesFit(Plugin):
    def __init__(self, handle=None, args=None):
        super().__init__(handle, args)
        strategy = self.args.get("scoringStrategy") or {}
        self.resources = tuple((r["name"], int(r.get("weight", 1))) for r in strategy.get("resources") or ()) \
            or DEFAULT_RESOURCES
        self.most_allocated = strategy.get("type") == "MostAllocated"
        self.default_scoring = self.resources == DEFAULT_RESOURCES and not self.most_allocated

    def pre_filter(self, state: CycleState, pod: dict, nodes):
        state.write(self.name, pod_requests(pod))
        return None, OK

    def filter(self, state: CycleState, pod: dict, node_info: NodeInfo) -> Status:
        request = state.read(self.name)
        if request is None:
            request = pod_requests(pod)
        alloc, used = node_info.allocatable, node_info.requested
        # the common case in plain int compares; anything else takes the exact path below
        if (not request.scalar and len(node_info.pods) < alloc.allowed_pod_number
                and request.milli_cpu <= alloc.milli_cpu - used.milli_cpu
                and request.memory <= alloc.memory - used.memory
                and request.ephemeral_storage <= alloc.ephemeral_storage - used.ephemeral_storage):
            return OK
        missing = insufficient_resources(request, node_info)
        if not missing:
            return OK
        # Upstream 1.32 keeps this Unschedulable (preemption may try) even when the request exceeds the
        # node's whole allocatable; later releases make that case UnschedulableAndUnresolvable.
        return Status(Code.UNSCHEDULABLE, *(reason for reason, _ in missing))

    def filter_nodes(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[Status]:
        """filter() of each node, with the common case's int compares inline."""
        request = state.read(self.name)
        if request is None:
            request = pod_requests(pod)
        f = self.filter
        if request.scalar:
            return [f(state, pod, n) for n in nodes]
        cpu, mem, eph = request.milli_cpu, request.memory, request.ephemeral_storage
        out = []
        for n in nodes:
            alloc, used = n.allocatable, n.requested
            if (len(n.pods) < alloc.allowed_pod_number and cpu <= alloc.milli_cpu - used.milli_cpu
                    and mem <= alloc.memory - used.memory and eph <= alloc.ephemeral_storage - used.ephemeral_storage):
                out.append(OK)
            else:
                out.append(f(state, pod, n))
        return out

    def pre_score(self, state: CycleState, pod: dict, nodes) -> Status:
        state.write(self.name + "/score", pod_requests(pod, non_zero=True))
        return OK

    def score(self, state: CycleState, pod: dict, node_info: NodeInfo):
        request = state.read(self.name + "/score") or pod_requests(pod, non_zero=True)
        if self.default_scoring:  # LeastAllocated over cpu and memory, weight 1 each, in ints
            alloc, used = node_info.allocatable, node_info.non_zero_requested
            total = weights = 0
            a = alloc.milli_cpu
            if a:
                r = used.milli_cpu + request.milli_cpu
                total += 0 if r > a else (a - r) * MAX_NODE_SCORE // a
                weights += 1
            a = alloc.memory
            if a:
                r = used.memory + request.memory
                total += 0 if r > a else (a - r) * MAX_NODE_SCORE // a
                weights += 1
            return (total // weights if weights else 0), OK
        total = weights = 0
        for name, weight in self.resources:
            alloc = node_info.allocatable.get(name)
            if alloc == 0:
                continue
            req = node_info.non_zero_requested.get(name) + request.get(name)
            if self.most_allocated:
                s = 0 if req > alloc else req * MAX_NODE_SCORE // alloc
            else:
                s = least_requested_score(req, alloc)
            total += s * weight
            weights += weight
        return (total // weights if weights else 0), OK

    def score_nodes(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[int]:
        """score() of each node, in one loop."""
        if not self.default_scoring:
            return [self.score(state, pod, n)[0] for n in nodes]
        request = state.read(self.name + "/score") or pod_requests(pod, non_zero=True)
        rc, rm = request.milli_cpu, request.memory
        out = []
        for n in nodes:
            alloc, used = n.allocatable, n.non_zero_requested
            total = weights = 0
            a = alloc.milli_cpu
            if a:
                r = used.milli_cpu + rc
                total += 0 if r > a else (a - r) * MAX_NODE_SCORE // a
                weights += 1
            a = alloc.memory
            if a:
                r = used.memory + rm
                total += 0 if r > a else (a - r) * MAX_NODE_SCORE // a
                weights += 1
            out.append(total // weights if weights else 0)
        return out
