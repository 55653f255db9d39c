"""NodeAffinity: spec.nodeSelector and required node affinity filter; preferred node affinity scores."""

from __future__ import annotations

from ..framework import OK, CycleState, NodeInfo, Plugin, PreFilterResult, Status
from .helpers import node_selector_term_matches, required_node_affinity_matches
from .tainttoleration import default_normalize

ERR_REASON = "node(s) didn't match Pod's node affinity/selector"


def _node_affinity(pod: dict) -> dict:
    return ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}


def _required_node_names(required: dict | None) -> set[str] | None:
    """Node names when every term pins metadata.name with In (upstream's PreFilterResult), else None."""
    terms = (required or {}).get("nodeSelectorTerms") or []
    if not terms:
        return None
    names: set[str] = set()
    for term in terms:
        pinned = None
        for f in term.get("matchFields") or ():
            if f.get("key") == "metadata.name" and f.get("operator") == "In":
                vals = set(f.get("values") or ())
                pinned = vals if pinned is None else pinned & vals
        if pinned is None:
            return None
        names |= pinned
    return names


class NodeAffinity(Plugin):
    def pre_filter(self, state: CycleState, pod: dict, nodes):
        required = _node_affinity(pod).get("requiredDuringSchedulingIgnoredDuringExecution")
        if not required and not (pod.get("spec") or {}).get("nodeSelector"):
            return None, Status.skip()
        names = _required_node_names(required)
        if names is not None:
            return PreFilterResult(names), OK
        return None, OK

    def filter(self, state: CycleState, pod: dict, node_info: NodeInfo) -> Status:
        if node_info.node is None or not required_node_affinity_matches(pod, node_info.node):
            return Status.unresolvable(ERR_REASON)
        return OK

    def pre_score(self, state: CycleState, pod: dict, nodes) -> Status:
        preferred = _node_affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution") or []
        if not preferred:
            return Status.skip()
        state.write(self.name, preferred)
        return OK

    def score(self, state: CycleState, pod: dict, node_info: NodeInfo):
        preferred = state.read(self.name)
        if preferred is None:
            preferred = _node_affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution") or []
        total = 0
        for term in preferred:
            weight = int(term.get("weight") or 0)
            if weight and node_selector_term_matches(term.get("preference") or {}, node_info.node or {}):
                total += weight
        return total, OK

    def normalize_score(self, state: CycleState, pod: dict, scores: dict[str, int]) -> Status:
        default_normalize(scores)
        return OK
