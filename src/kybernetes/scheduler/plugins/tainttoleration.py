"""TaintToleration: filter on NoSchedule/NoExecute taints, prefer nodes with fewer PreferNoSchedule taints."""

from __future__ import annotations

from ..framework import MAX_NODE_SCORE, OK, CycleState, NodeInfo, Plugin, Status
from .helpers import find_untolerated_taint, node_taints, pod_tolerations, tolerates


class TaintToleration(Plugin):
    def filter(self, state: CycleState, pod: dict, node_info: NodeInfo) -> Status:
        taints = node_info.taints if node_info.node is not None else ()
        if not taints:
            return OK
        taint = find_untolerated_taint(taints, pod_tolerations(pod), ("NoSchedule", "NoExecute"))
        if taint is None:
            return OK
        return Status.unresolvable(
            f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}")

    def filter_nodes(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[Status]:
        """filter() of each node; nodes without taints pass at once."""
        f = self.filter
        return [f(state, pod, n) if n.taints else OK for n in nodes]

    def pre_score(self, state: CycleState, pod: dict, nodes) -> Status:
        prefer = [t for t in pod_tolerations(pod) if (t.get("effect") or "") in ("", "PreferNoSchedule")]
        state.write(self.name, prefer)
        return OK

    def score(self, state: CycleState, pod: dict, node_info: NodeInfo):
        if not node_info.taints or node_info.node is None:
            return 0, OK
        tolerations = state.read(self.name)
        if tolerations is None:
            tolerations = [t for t in pod_tolerations(pod) if (t.get("effect") or "") in ("", "PreferNoSchedule")]
        count = sum(1 for taint in node_taints(node_info.node) if taint.get("effect") == "PreferNoSchedule"
                    and not any(tolerates(t, taint) for t in tolerations))
        return count, OK

    def score_nodes(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[int]:
        """score() of each node, in one loop (nodes without taints score 0 at once)."""
        score = self.score
        return [score(state, pod, n)[0] if n.taints else 0 for n in nodes]

    def normalize_score(self, state: CycleState, pod: dict, scores: dict[str, int]) -> Status:
        default_normalize(scores, reverse=True)
        return OK


def default_normalize(scores: dict[str, int], reverse: bool = False) -> None:
    """Upstream's helper.DefaultNormalizeScore: scale to 0..100 by the maximum, optionally reversed."""
    top = max(scores.values(), default=0)
    if top == 0:
        if reverse:
            scores.update(dict.fromkeys(scores, MAX_NODE_SCORE))
        return
    for k, v in scores.items():
        s = MAX_NODE_SCORE * v // top
        scores[k] = MAX_NODE_SCORE - s if reverse else s
