"""InterPodAffinity: required and preferred pod affinity/anti-affinity over any topology key, including
the required anti-affinity of pods already running."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..framework import MAX_NODE_SCORE, OK, CycleState, NodeInfo, Plugin, Status
from .helpers import AffinityTerm, pod_affinity_terms

ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1

Pair = tuple[str, str]


@dataclass
class _FilterState:
    affinity: list[AffinityTerm]
    anti_affinity: list[AffinityTerm]
    existing_anti_counts: dict[Pair, int] = field(default_factory=lambda: defaultdict(int))
    affinity_counts: dict[Pair, int] = field(default_factory=lambda: defaultdict(int))
    anti_counts: dict[Pair, int] = field(default_factory=lambda: defaultdict(int))
    ns_labels: dict = field(default_factory=dict)


def _ns(pod: dict) -> str:
    return (pod.get("metadata") or {}).get("namespace", "")


class InterPodAffinity(Plugin):
    def __init__(self, handle=None, args=None):
        super().__init__(handle, args)
        self.hard_weight = int(self.args.get("hardPodAffinityWeight", HARD_POD_AFFINITY_WEIGHT))

    def _with_affinity(self, nodes: list[NodeInfo], required_anti_only: bool) -> list[NodeInfo]:
        """The nodes of `nodes` running pods with affinity terms: from the cache's index when `nodes` is
        the cache's snapshot, else by a scan (preemption passes a view with a changed node)."""
        index = getattr(self.handle, "nodes_with_affinity", None)
        if index is not None and nodes is self.handle.snapshot():
            return index(required_anti_only)
        if required_anti_only:
            return [ni for ni in nodes if ni.required_anti_pods]
        return [ni for ni in nodes if ni.affinity_pods]

    # --- filter ---------------------------------------------------------------------------------
    def pre_filter(self, state: CycleState, pod: dict, nodes: list[NodeInfo]):
        s = _FilterState(pod_affinity_terms(pod, "podAffinity", True), pod_affinity_terms(pod, "podAntiAffinity", True),
                         ns_labels=self.handle.namespace_labels(_ns(pod)))
        any_existing = False
        # without terms of its own the pod meets only existing pods' required anti-affinity
        for ni in nodes if s.affinity or s.anti_affinity else self._with_affinity(nodes, True):
            labels = ni.labels
            for q in ni.pods_with_required_anti_affinity:
                any_existing = True
                for t in pod_affinity_terms(q, "podAntiAffinity", True):
                    if t.topology_key in labels and t.matches(pod, s.ns_labels):
                        s.existing_anti_counts[(t.topology_key, labels[t.topology_key])] += 1
            if not s.affinity and not s.anti_affinity:
                continue
            for q in ni.pods:
                q_ns = self.handle.namespace_labels(_ns(q))
                if s.affinity and all(t.matches(q, q_ns) for t in s.affinity):
                    for t in s.affinity:
                        if t.topology_key in labels:
                            s.affinity_counts[(t.topology_key, labels[t.topology_key])] += 1
                for t in s.anti_affinity:
                    if t.topology_key in labels and t.matches(q, q_ns):
                        s.anti_counts[(t.topology_key, labels[t.topology_key])] += 1
        if not s.affinity and not s.anti_affinity and not any_existing:
            return None, Status.skip()
        state.write(self.name, s)
        return None, OK

    def filter(self, state: CycleState, pod: dict, node_info: NodeInfo) -> Status:
        s: _FilterState | None = state.read(self.name)
        if s is None:
            return OK
        labels = node_info.labels
        # upstream's order: the pod's own affinity, its own anti-affinity, then existing pods' anti-affinity
        if not self._satisfies_affinity(s, pod, labels):
            return Status.unresolvable(ERR_AFFINITY)
        for t in s.anti_affinity:
            if t.topology_key in labels and s.anti_counts.get((t.topology_key, labels[t.topology_key]), 0) > 0:
                return Status.unschedulable(ERR_ANTI_AFFINITY)
        if s.existing_anti_counts and any(s.existing_anti_counts.get(pair, 0) > 0 for pair in labels.items()):
            return Status.unschedulable(ERR_EXISTING_ANTI_AFFINITY)
        return OK

    @staticmethod
    def _satisfies_affinity(s: _FilterState, pod: dict, labels: dict) -> bool:
        if not s.affinity:
            return True
        pods_exist = True
        for t in s.affinity:
            if t.topology_key not in labels:
                return False
            if s.affinity_counts.get((t.topology_key, labels[t.topology_key]), 0) <= 0:
                pods_exist = False
        if pods_exist:
            return True
        # No pod matches anywhere yet: the first pod of a self-affine group may go anywhere it has the keys.
        return not s.affinity_counts and all(t.matches(pod, s.ns_labels) for t in s.affinity)

    # --- score ----------------------------------------------------------------------------------
    def pre_score(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> Status:
        preferred = pod_affinity_terms(pod, "podAffinity", False)
        preferred_anti = pod_affinity_terms(pod, "podAntiAffinity", False)
        has_constraints = bool(preferred or preferred_anti)
        pod_ns_labels = self.handle.namespace_labels(_ns(pod))
        scores: dict[Pair, int] = defaultdict(int)

        def process(terms: list[AffinityTerm], target: dict, ns_labels: dict, labels: dict, sign: int):
            for t in terms:
                if t.weight and t.topology_key in labels and t.matches(target, ns_labels):
                    scores[(t.topology_key, labels[t.topology_key])] += t.weight * sign

        all_nodes = self.handle.snapshot() or nodes
        for ni in all_nodes if has_constraints else self._with_affinity(all_nodes, False):
            labels = ni.labels
            if not labels:
                continue
            existing = ni.pods if has_constraints else ni.pods_with_affinity
            for q in existing:
                q_ns = self.handle.namespace_labels(_ns(q))
                process(preferred, q, q_ns, labels, 1)
                process(preferred_anti, q, q_ns, labels, -1)
                if self.hard_weight > 0:
                    hard = pod_affinity_terms(q, "podAffinity", True)
                    for t in hard:
                        t.weight = self.hard_weight
                    process(hard, pod, pod_ns_labels, labels, 1)
                process(pod_affinity_terms(q, "podAffinity", False), pod, pod_ns_labels, labels, 1)
                process(pod_affinity_terms(q, "podAntiAffinity", False), pod, pod_ns_labels, labels, -1)
        scores = {k: v for k, v in scores.items() if v}
        if not has_constraints and not scores:
            return Status.skip()
        state.write(self.name + "/score", scores)
        return OK

    def score(self, state: CycleState, pod: dict, node_info: NodeInfo):
        scores = state.read(self.name + "/score") or {}
        labels = node_info.labels
        return sum(v for (k, val), v in scores.items() if labels.get(k) == val), OK

    def normalize_score(self, state: CycleState, pod: dict, scores: dict[str, int]) -> Status:
        if not state.read(self.name + "/score") or not scores:
            for k in scores:
                scores[k] = 0
            return OK
        lo, hi = min(scores.values()), max(scores.values())
        diff = hi - lo
        for k, v in scores.items():
            scores[k] = int(MAX_NODE_SCORE * (v - lo) / diff) if diff > 0 else 0
        return OK
