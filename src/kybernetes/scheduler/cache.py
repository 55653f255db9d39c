"""The scheduler's cache: one NodeInfo per node, built from the node and pod informers, plus assumed pods.

A pod is assumed on its chosen node as soon as its binding starts, so the next cycles see the room it
takes; it is forgotten if binding fails and confirmed when the informer shows it bound.
"""

from __future__ import annotations

import logging

from .framework import NodeInfo
from .resources import pod_key

log = logging.getLogger("kybernetes.scheduler")


def is_terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _same_footprint(old: dict, new: dict) -> bool:
    """Whether two versions of a pod weigh the same on their node: same uid, spec and labels (all
    a NodeInfo derives from a pod: requests, host ports, (anti-)affinity terms, matched labels)."""
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return (om.get("uid") == nm.get("uid") and om.get("labels") == nm.get("labels")
            and old.get("spec") == new.get("spec"))


class Cache:
    def __init__(self):
        self.nodes: dict[str, NodeInfo] = {}
        self.pods: dict[str, tuple[dict, str]] = {}  # pod key -> (pod, node name)
        self.assumed: set[str] = set()
        self._snapshot: list[NodeInfo] | None = None  # sorted node list, rebuilt when the node set changes
        self._affinity: dict[str, NodeInfo] = {}  # nodes running pods with pod (anti-)affinity terms
        self._required_anti: dict[str, NodeInfo] = {}  # ... with required anti-affinity terms

    # --- nodes ------------------------------------------------------------------------------------
    def _node_info(self, name: str) -> NodeInfo:
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo()
        return ni

    def add_node(self, node: dict) -> None:
        ni = self._node_info(node["metadata"]["name"])
        if ni.node is None:
            self._snapshot = None
        ni.set_node(node)

    def update_node(self, old: dict | None, new: dict) -> None:
        self.add_node(new)

    def remove_node(self, node: dict) -> None:
        name = node["metadata"]["name"]
        ni = self.nodes.get(name)
        if ni is None:
            return
        self._snapshot = None
        if ni.pods:
            ni.clear_node()
        else:
            del self.nodes[name]

    # --- pods -------------------------------------------------------------------------------------
    def _index(self, node: str, ni: NodeInfo) -> None:
        for index, count in ((self._affinity, ni.affinity_pods), (self._required_anti, ni.required_anti_pods)):
            if count:
                index[node] = ni
            else:
                index.pop(node, None)

    def _add(self, pod: dict, node: str) -> None:
        ni = self._node_info(node)
        ni.add_pod(pod)
        self.pods[pod_key(pod)] = (pod, node)
        if ni.affinity_pods:
            self._index(node, ni)

    def _remove(self, key: str) -> None:
        entry = self.pods.pop(key, None)
        if entry is None:
            return
        pod, node = entry
        ni = self.nodes.get(node)
        if ni is not None:
            ni.remove_pod(pod)
            self._index(node, ni)
            if ni.node is None and not ni.pods:
                del self.nodes[node]
                self._index(node, NodeInfo())

    def add_pod(self, pod: dict) -> None:
        """An assigned pod seen by the informer (confirms an assumed pod)."""
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            return
        key = pod_key(pod)
        self.assumed.discard(key)
        entry = self.pods.get(key)
        if entry is not None and entry[1] == node and not is_terminal(pod) and _same_footprint(entry[0], pod):
            # the binding's echo, a status change: what the node accounts for is the same, so the
            # stored object is swapped without taking requests and ports apart and adding them again
            ni = self.nodes[node]
            old = entry[0]
            for i, p in enumerate(ni.pods):
                if p is old:
                    ni.pods[i] = pod
                    break
            self.pods[key] = (pod, node)
            return
        self._remove(key)
        if not is_terminal(pod):
            self._add(pod, node)

    def update_pod(self, old: dict | None, new: dict) -> None:
        self.add_pod(new)

    def remove_pod(self, pod: dict) -> None:
        key = pod_key(pod)
        self.assumed.discard(key)
        self._remove(key)

    def assume_pod(self, pod: dict, node: str) -> dict:
        """Account the pod on `node` before the API says so; returns the assumed copy."""
        key = pod_key(pod)
        if key in self.pods:
            raise ValueError(f"pod {key} is already in the cache")
        assumed = {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": node}}
        self._add(assumed, node)
        self.assumed.add(key)
        return assumed

    def forget_pod(self, pod: dict) -> None:
        key = pod_key(pod)
        if key in self.assumed:
            self.assumed.discard(key)
            self._remove(key)

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed

    # --- reads ------------------------------------------------------------------------------------
    def snapshot(self) -> list[NodeInfo]:
        """The nodes (with their pods) as the cycle sees them, by name; valid until the loop next awaits.

        The NodeInfos are updated in place, so the list is rebuilt only when a node comes or goes
        (callers must not change it)."""
        if self._snapshot is None:
            self._snapshot = [ni for _, ni in sorted(self.nodes.items()) if ni.node is not None]
        return self._snapshot

    def nodes_with_affinity(self, required_anti_only: bool = False) -> list[NodeInfo]:
        """Nodes running pods with pod (anti-)affinity terms (only required anti-affinity, if asked),
        upstream's HavePodsWithAffinityNodeInfoList and HavePodsWithRequiredAntiAffinityNodeInfoList."""
        index = self._required_anti if required_anti_only else self._affinity
        return [ni for ni in index.values() if ni.node is not None]

    def node_count(self) -> int:
        return sum(1 for ni in self.nodes.values() if ni.node is not None)
