"""DefaultPreemption: when no node fits, find a node where evicting lower-priority pods makes room.

The victims on a node are the fewest lower-priority pods whose removal lets the pod pass every filter
(most important pods are reprieved first). Among candidate nodes the choice follows upstream's
pickOneNodeForPreemption (PodDisruptionBudgets are not considered).
"""

from __future__ import annotations

import logging
import random

from ..framework import OK, Code, CycleState, Diagnosis, FitError, NodeInfo, Plugin, PostFilterResult, Status
from ..resources import pod_key, pod_priority
from .helpers import is_terminating

log = logging.getLogger("kybernetes.scheduler")

ERR_NO_VICTIMS = "No preemption victims found for incoming pod"
ERR_NOT_HELPFUL = "Preemption is not helpful for scheduling"
MIN_CANDIDATE_PERCENTAGE = 10
MIN_CANDIDATE_ABSOLUTE = 100
INT32_OFFSET = 2**31


def _start_time(pod: dict) -> str:
    return (pod.get("status") or {}).get("startTime") or (pod.get("metadata") or {}).get("creationTimestamp") or ""


def more_important(a: dict, b: dict) -> bool:
    pa, pb = pod_priority(a), pod_priority(b)
    if pa != pb:
        return pa > pb
    return _start_time(a) < _start_time(b)


def _fits(fwk, pod: dict, nodes: list[NodeInfo], node_info: NodeInfo) -> Status:
    state = CycleState()
    result, s = fwk.run_pre_filter(state, pod, nodes)
    if not s.is_success():
        return s
    if result is not None and result.node_names is not None and node_info.name not in result.node_names:
        return Status.unresolvable("node(s) didn't satisfy plugin(s)")
    return fwk.run_filter_with_nominated(state, pod, node_info)


def select_victims_on_node(fwk, pod: dict, nodes: list[NodeInfo], node_info: NodeInfo):
    """(victims, Status) for one node: the lower-priority pods that must go for the pod to fit."""
    prio = pod_priority(pod)
    ni = node_info.clone()
    potential = [p for p in ni.pods if pod_priority(p) < prio]
    if not potential:
        return [], Status.unresolvable(ERR_NO_VICTIMS)
    for p in potential:
        ni.remove_pod(p)
    view = [ni if n.name == ni.name else n for n in nodes]
    s = _fits(fwk, pod, view, ni)
    if not s.is_success():
        return [], s
    victims = []
    order = sorted(potential, key=lambda p: (-pod_priority(p), _start_time(p)))
    for p in order:
        ni.add_pod(p)
        if not _fits(fwk, pod, view, ni).is_success():
            ni.remove_pod(p)
            victims.append(p)
    return victims, OK


def pick_one_node(candidates: dict[str, list[dict]]) -> str:
    """Upstream's pickOneNodeForPreemption, without the PodDisruptionBudget criterion."""
    if not candidates:
        return ""
    names = list(candidates)
    for name in names:
        if not candidates[name]:
            return name

    def narrow(score):
        nonlocal names
        best = min(score(n) for n in names)
        names = [n for n in names if score(n) == best]

    narrow(lambda n: max(pod_priority(p) for p in candidates[n]))
    narrow(lambda n: sum(pod_priority(p) + INT32_OFFSET for p in candidates[n]))
    narrow(lambda n: len(candidates[n]))
    if len(names) > 1:
        def earliest_of_highest(n):
            top = max(pod_priority(p) for p in candidates[n])
            return min(_start_time(p) for p in candidates[n] if pod_priority(p) == top)
        latest = max(earliest_of_highest(n) for n in names)
        names = [n for n in names if earliest_of_highest(n) == latest]
    return names[0]


def eligible_to_preempt(pod: dict, nodes: dict[str, NodeInfo]) -> str:
    """'' when the pod may preempt, else the reason it may not."""
    if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        return "not eligible due to preemptionPolicy=Never."
    nominated = (pod.get("status") or {}).get("nominatedNodeName")
    if nominated and nominated in nodes:
        prio = pod_priority(pod)
        if any(is_terminating(p) and pod_priority(p) < prio for p in nodes[nominated].pods):
            return "not eligible due to a terminating pod on the nominated node."
    return ""


class DefaultPreemption(Plugin):
    def find_candidates(self, pod: dict, diagnosis: Diagnosis, nodes: list[NodeInfo]):
        """(node -> victims, node -> Status of nodes without a candidate)."""
        fwk = self.handle.framework
        statuses: dict[str, Status] = {}
        potential = []
        for ni in nodes:
            s = diagnosis.node_to_status.get(ni.name, diagnosis.absent_status)
            if s is not None and s.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                continue
            potential.append(ni)
        candidates: dict[str, list[dict]] = {}
        if not potential:
            return candidates, statuses
        want = max(len(potential) * MIN_CANDIDATE_PERCENTAGE // 100, MIN_CANDIDATE_ABSOLUTE)
        offset = random.randrange(len(potential))
        for i in range(len(potential)):
            ni = potential[(offset + i) % len(potential)]
            victims, s = select_victims_on_node(fwk, pod, nodes, ni)
            if s.is_success():
                candidates[ni.name] = victims
                if len(candidates) >= want:
                    break
            else:
                statuses[ni.name] = s
        return candidates, statuses

    async def post_filter(self, state: CycleState, pod: dict, diagnosis: Diagnosis):
        nodes = self.handle.snapshot()
        reason = eligible_to_preempt(pod, {n.name: n for n in nodes})
        if reason:
            return None, Status.unschedulable("preemption: " + reason)
        candidates, statuses = self.find_candidates(pod, diagnosis, nodes)
        if not candidates:
            err = FitError(pod, len(nodes), Diagnosis(node_to_status=statuses,
                                                      absent_status=Status.unresolvable(ERR_NOT_HELPFUL)))
            return PostFilterResult(""), Status.unschedulable("preemption: " + str(err))
        node_name = pick_one_node(candidates)
        s = await self.prepare(pod, node_name, candidates[node_name])
        if not s.is_success():
            return None, s
        return PostFilterResult(node_name), OK

    async def prepare(self, pod: dict, node_name: str, victims: list[dict]) -> Status:
        client = self.handle.client
        scheduler = (pod.get("spec") or {}).get("schedulerName") or self.handle.scheduler_name
        condition = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                     "message": f"{scheduler}: preempting to accommodate a higher priority pod"}
        for victim in victims:
            meta = victim["metadata"]
            try:
                await client.patch("", "v1", "pods", meta["name"], {"status": {"conditions": [condition]}},
                                   namespace=meta["namespace"], subresource="status",
                                   patch_type="application/strategic-merge-patch+json")
            except Exception as e:
                log.debug("preemption: condition on %s: %s", pod_key(victim), e)
            try:
                await client.delete("", "v1", "pods", meta["name"], namespace=meta["namespace"])
            except Exception as e:
                if getattr(e, "code", 0) != 404:
                    return Status.error(f"preemption: deleting victim {pod_key(victim)}: {e}")
            recorder = getattr(self.handle, "record_event", None)
            if recorder is not None:
                await recorder(victim, "Normal", "Preempted",
                               f"Preempted by pod {pod['metadata'].get('uid', '')} on node {node_name}")
        # Pods of lower priority nominated to this node lose their nomination.
        prio = pod_priority(pod)
        for other in self.handle.nominated_pods(node_name):
            if pod_priority(other) < prio and pod_key(other) != pod_key(pod):
                meta = other["metadata"]
                try:
                    await client.patch("", "v1", "pods", meta["name"], {"status": {"nominatedNodeName": None}},
                                       namespace=meta["namespace"], subresource="status")
                except Exception as e:
                    log.debug("preemption: clearing nomination of %s: %s", pod_key(other), e)
        return OK
