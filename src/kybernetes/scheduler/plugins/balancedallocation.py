"""NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory use stay close after placing the pod."""

from __future__ import annotations

import math

from ..framework import MAX_NODE_SCORE, OK, CycleState, NodeInfo, Plugin, Status
from ..resources import CPU, MEMORY, pod_requests


def balanced_score(requested: list[int], allocatable: list[int]) -> int:
    fractions = [min(r / a, 1.0) for r, a in zip(requested, allocatable, strict=True) if a]
    std = 0.0
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
    return int((1 - std) * MAX_NODE_SCORE)


class NodeResourcesBalancedAllocation(Plugin):
    def __init__(self, handle=None, args=None):
        super().__init__(handle, args)
        self.resources = [r["name"] for r in self.args.get("resources") or ()] or [CPU, MEMORY]
        self.cpu_memory = self.resources == [CPU, MEMORY]

    def pre_score(self, state: CycleState, pod: dict, nodes) -> Status:
        request = pod_requests(pod)
        if all(request.get(n) == 0 for n in self.resources):
            return Status.skip()  # best-effort pods do not change the balance
        state.write(self.name, request)
        return OK

    def score(self, state: CycleState, pod: dict, node_info: NodeInfo):
        request = state.read(self.name) or pod_requests(pod)
        if self.cpu_memory:  # balanced_score of cpu and memory, without the lists
            alloc, used = node_info.allocatable, node_info.requested
            fractions = []
            if alloc.milli_cpu:
                fractions.append(min((used.milli_cpu + request.milli_cpu) / alloc.milli_cpu, 1.0))
            if alloc.memory:
                fractions.append(min((used.memory + request.memory) / alloc.memory, 1.0))
            std = abs((fractions[0] - fractions[1]) / 2) if len(fractions) == 2 else 0.0
            return int((1 - std) * MAX_NODE_SCORE), OK
        alloc = [node_info.allocatable.get(n) for n in self.resources]
        req = [node_info.requested.get(n) + request.get(n) for n in self.resources]
        return balanced_score(req, alloc), OK

    def score_nodes(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[int]:
        """score() of each node, in one loop."""
        if not self.cpu_memory:
            return [self.score(state, pod, n)[0] for n in nodes]
        request = state.read(self.name) or pod_requests(pod)
        rc, rm = request.milli_cpu, request.memory
        out = []
        for n in nodes:
            alloc, used = n.allocatable, n.requested
            ac, am = alloc.milli_cpu, alloc.memory
            if ac and am:
                fc = (used.milli_cpu + rc) / ac
                fm = (used.memory + rm) / am
                std = abs(((fc if fc < 1.0 else 1.0) - (fm if fm < 1.0 else 1.0)) / 2)  # min(), without the calls
                out.append(int((1 - std) * MAX_NODE_SCORE))
            else:
                out.append(MAX_NODE_SCORE)  # one fraction or none: no spread
        return out
