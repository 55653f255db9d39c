"""NodeUnschedulable: cordoned nodes take only pods tolerating node.kubernetes.io/unschedulable."""

from __future__ import annotations

from ..framework import OK, NodeInfo, Plugin, Status
from .helpers import pod_tolerations, tolerates

ERR_REASON = "node(s) were unschedulable"
TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable(Plugin):
    def filter(self, state, pod: dict, node_info: NodeInfo) -> Status:
        if node_info.node is None:
            return Status.unresolvable("node not found")
        if not node_info.unschedulable:
            return OK
        if any(tolerates(t, TAINT) for t in pod_tolerations(pod)):
            return OK
        return Status.unresolvable(ERR_REASON)

    def filter_nodes(self, state, pod: dict, nodes: list[NodeInfo]) -> list[Status]:
        """filter() of each node; schedulable nodes pass at once."""
        f = self.filter
        return [OK if n.node is not None and not n.unschedulable else f(state, pod, n) for n in nodes]
