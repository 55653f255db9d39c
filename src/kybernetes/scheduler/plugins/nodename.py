"""NodeName: a pod that names a node fits only that node."""

from __future__ import annotations

from ..framework import OK, NodeInfo, Plugin, Status

ERR_REASON = "node(s) didn't match the requested node name"


class NodeName(Plugin):
    def filter(self, state, pod: dict, node_info: NodeInfo) -> Status:
        wanted = (pod.get("spec") or {}).get("nodeName")
        if wanted and wanted != node_info.name:
            return Status.unresolvable(ERR_REASON)
        return OK

    def filter_nodes(self, state, pod: dict, nodes: list[NodeInfo]) -> list[Status]:
        """filter() of each node; a pod without a nodeName fits all of them."""
        if not (pod.get("spec") or {}).get("nodeName"):
            return [OK] * len(nodes)
        return [self.filter(state, pod, n) for n in nodes]
