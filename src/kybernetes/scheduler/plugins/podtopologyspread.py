"""PodTopologySpread: keep matching pods spread over topology domains within maxSkew.

Only the pod's own constraints are used (the cluster-level default constraints are not applied).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from ...api.selectors import labels_match, requirements_from_label_selector
from ..framework import MAX_NODE_SCORE, OK, CycleState, NodeInfo, Plugin, Status
from .helpers import (
    find_untolerated_taint,
    is_terminating,
    node_taints,
    pod_tolerations,
    required_node_affinity_matches,
)

ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
HOSTNAME = "kubernetes.io/hostname"


@dataclass
class Constraint:
    max_skew: int
    topology_key: str
    selector: list | None
    min_domains: int = 1
    honor_affinity: bool = True
    honor_taints: bool = False

    def matches(self, pod: dict) -> bool:
        return self.selector is not None and labels_match(self.selector, (pod.get("metadata") or {}).get("labels"))


def constraints(pod: dict, when: str) -> list[Constraint]:
    out = []
    labels = (pod.get("metadata") or {}).get("labels") or {}
    for c in (pod.get("spec") or {}).get("topologySpreadConstraints") or ():
        if c.get("whenUnsatisfiable", "DoNotSchedule") != when:
            continue
        sel = c.get("labelSelector")
        keys = [k for k in c.get("matchLabelKeys") or () if k in labels]
        if sel is not None and keys:
            extra = [{"key": k, "operator": "In", "values": [labels[k]]} for k in keys]
            sel = {**sel, "matchExpressions": [*(sel.get("matchExpressions") or []), *extra]}
        out.append(Constraint(
            max_skew=int(c.get("maxSkew") or 1), topology_key=c.get("topologyKey", ""),
            selector=requirements_from_label_selector(sel), min_domains=int(c.get("minDomains") or 1),
            honor_affinity=c.get("nodeAffinityPolicy", "Honor") == "Honor",
            honor_taints=c.get("nodeTaintsPolicy", "Ignore") == "Honor"))
    return out


def _eligible(pod: dict, c: Constraint, ni: NodeInfo) -> bool:
    if c.honor_affinity and not required_node_affinity_matches(pod, ni.node or {}):
        return False
    if c.honor_taints and find_untolerated_taint(node_taints(ni.node), pod_tolerations(pod),
                                                 ("NoSchedule", "NoExecute")) is not None:
        return False
    return True


def count_matching(pod_ns: str, c: Constraint, ni: NodeInfo) -> int:
    return sum(1 for q in ni.pods if (q.get("metadata") or {}).get("namespace", "") == pod_ns
               and not is_terminating(q) and c.matches(q))


@dataclass
class _FilterState:
    constraints: list[Constraint]
    pair_counts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    def min_match(self, c: Constraint) -> int:
        counts = [n for (k, _), n in self.pair_counts.items() if k == c.topology_key]
        if len(counts) < c.min_domains:
            return 0
        return min(counts, default=0)


class PodTopologySpread(Plugin):
    # --- filter ---------------------------------------------------------------------------------
    def pre_filter(self, state: CycleState, pod: dict, nodes: list[NodeInfo]):
        cs = constraints(pod, "DoNotSchedule")
        if not cs:
            return None, Status.skip()
        s = _FilterState(cs)
        ns = (pod.get("metadata") or {}).get("namespace", "")
        for ni in nodes:
            labels = ni.labels
            if not all(c.topology_key in labels for c in cs):
                continue
            for c in cs:
                if _eligible(pod, c, ni):
                    s.pair_counts[(c.topology_key, labels[c.topology_key])] += count_matching(ns, c, ni)
        state.write(self.name, s)
        return None, OK

    def filter(self, state: CycleState, pod: dict, node_info: NodeInfo) -> Status:
        s: _FilterState | None = state.read(self.name)
        if s is None:
            return OK
        labels = node_info.labels
        for c in s.constraints:
            value = labels.get(c.topology_key)
            if value is None:
                return Status.unresolvable(ERR_MISSING_LABEL)
            self_match = 1 if c.matches(pod) else 0
            skew = s.pair_counts.get((c.topology_key, value), 0) + self_match - s.min_match(c)
            if skew > c.max_skew:
                return Status.unschedulable(ERR_CONSTRAINTS)
        return OK

    # --- score ----------------------------------------------------------------------------------
    def pre_score(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> Status:
        cs = constraints(pod, "ScheduleAnyway")
        if not cs:
            return Status.skip()
        ignored = {ni.name for ni in nodes if not all(c.topology_key in ni.labels for c in cs)}
        pair_counts: dict[tuple[str, str], int] = {}
        weights = []
        for c in cs:
            if c.topology_key == HOSTNAME:
                size = len(nodes) - len(ignored)
            else:
                values = {ni.labels[c.topology_key] for ni in nodes if ni.name not in ignored}
                for v in values:
                    pair_counts[(c.topology_key, v)] = 0
                size = len(values)
            weights.append(math.log(size + 2))
        ns = (pod.get("metadata") or {}).get("namespace", "")
        for ni in self.handle.snapshot() or nodes:
            if not all(c.topology_key in ni.labels for c in cs):
                continue
            for c in cs:
                pair = (c.topology_key, ni.labels[c.topology_key])
                if c.topology_key != HOSTNAME and pair in pair_counts and _eligible(pod, c, ni):
                    pair_counts[pair] += count_matching(ns, c, ni)
        state.write(self.name + "/score", (cs, ignored, pair_counts, weights))
        return OK

    def score(self, state: CycleState, pod: dict, node_info: NodeInfo):
        cs, ignored, pair_counts, weights = state.read(self.name + "/score")
        if node_info.name in ignored:
            return 0, OK
        ns = (pod.get("metadata") or {}).get("namespace", "")
        total = 0.0
        for c, w in zip(cs, weights, strict=True):
            value = node_info.labels.get(c.topology_key)
            if value is None:
                continue
            if c.topology_key == HOSTNAME:
                cnt = count_matching(ns, c, node_info)
            else:
                cnt = pair_counts.get((c.topology_key, value), 0)
            total += cnt * w + (c.max_skew - 1)
        return round(total), OK

    def normalize_score(self, state: CycleState, pod: dict, scores: dict[str, int]) -> Status:
        _, ignored, _, _ = state.read(self.name + "/score")
        live = [v for k, v in scores.items() if k not in ignored]
        lo, hi = min(live, default=0), max(live, default=0)
        for k, v in scores.items():
            if k in ignored:
                scores[k] = 0
            elif hi == 0:
                scores[k] = MAX_NODE_SCORE
            else:
                scores[k] = MAX_NODE_SCORE * (hi + lo - v) // hi
        return OK
