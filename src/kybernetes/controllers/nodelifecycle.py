"""Node lifecycle: Lease-based node health, NotReady/unreachable taints, taint-based eviction.

As upstream's node lifecycle controller (with its NoExecute taint manager):
- a Node whose Lease (kube-node-lease) and Ready heartbeat did not move for
  `node-monitor-grace-period` (40 s) gets its conditions set to Unknown
  ("Kubelet stopped posting node status."), and its pods are marked not Ready;
- the Ready condition maps to taints: False -> node.kubernetes.io/not-ready,
  Unknown -> node.kubernetes.io/unreachable, each as NoSchedule and NoExecute; pressure
  conditions and spec.unschedulable to their NoSchedule taints; all removed when healthy;
- pods on a node with NoExecute taints are deleted: at once when they do not tolerate
  every such taint, else when the smallest tolerationSeconds runs out (never without one).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time

from ..api.meta import parse_time, rfc3339
from ..client.events import EventRecorder
from ..client.rest import ApiError
from .base import Controller, Requeue

log = logging.getLogger("kybernetes.controllers.nodelifecycle")

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
NO_SCHEDULE_BY_CONDITION = {
    "MemoryPressure": "node.kubernetes.io/memory-pressure",
    "DiskPressure": "node.kubernetes.io/disk-pressure",
    "PIDPressure": "node.kubernetes.io/pid-pressure",
    "NetworkUnavailable": "node.kubernetes.io/network-unavailable",
}
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
MANAGED = {NOT_READY, UNREACHABLE, UNSCHEDULABLE, *NO_SCHEDULE_BY_CONDITION.values()}
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
NODE_INDEX = "spec.nodeName"


def _conditions(node: dict) -> dict[str, dict]:
    return {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or ()}


def desired_taints(node: dict, now: str) -> list[dict]:
    """The node's taints with the ones this controller manages set from its conditions."""
    conds = _conditions(node)
    ready = (conds.get("Ready") or {}).get("status", "Unknown")
    want: list[tuple[str, str]] = []
    if ready in ("False", "Unknown"):
        key = NOT_READY if ready == "False" else UNREACHABLE
        want += [(key, "NoSchedule"), (key, "NoExecute")]
    for kind, key in NO_SCHEDULE_BY_CONDITION.items():
        if (conds.get(kind) or {}).get("status") == "True":
            want.append((key, "NoSchedule"))
    if (node.get("spec") or {}).get("unschedulable"):
        want.append((UNSCHEDULABLE, "NoSchedule"))
    current = list((node.get("spec") or {}).get("taints") or ())
    have = {(t.get("key"), t.get("effect")): t for t in current}
    out = [t for t in current if t.get("key") not in MANAGED or (t.get("key"), t.get("effect")) in want]
    for key, effect in want:
        if (key, effect) not in have:
            taint = {"key": key, "effect": effect}
            if effect == "NoExecute":
                taint["timeAdded"] = now
            out.append(taint)
    return out


def tolerates(toleration: dict, taint: dict) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    op = toleration.get("operator") or "Equal"
    if not toleration.get("key"):
        return op == "Exists"
    if toleration["key"] != taint.get("key"):
        return False
    return op == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def eviction_delay(pod: dict, taints: list[dict]) -> float | None:
    """Seconds after the taints appeared when the pod must go: 0 now, None never."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or ()
    delay: float | None = None
    for taint in taints:
        used = [t for t in tolerations if tolerates(t, taint)]
        if not used:
            return 0.0
        for t in used:
            if t.get("tolerationSeconds") is not None:
                secs = max(0.0, float(t["tolerationSeconds"]))
                delay = secs if delay is None else min(delay, secs)
    return delay


class NodeLifecycleController(Controller):
    name = "node-lifecycle"
    workers = 4

    def __init__(self, ctx):
        super().__init__(ctx)
        opts = getattr(ctx, "options", None) or {}
        self.grace = float(opts.get("node_monitor_grace_period") or 40.0)
        self.period = float(opts.get("node_monitor_period") or min(5.0, max(0.5, self.grace / 8)))
        self.nodes = self.watch("", "v1", "nodes")
        self.leases = self.watch("coordination.k8s.io", "v1", "leases", self._lease_keys)
        self.pods = self.watch("", "v1", "pods", self._pod_keys)
        if NODE_INDEX not in self.pods.indexers:
            self.pods.add_indexer(NODE_INDEX, lambda p: [(p.get("spec") or {}).get("nodeName") or ""])
        self.health: dict[str, tuple[float, str, str]] = {}  # node -> (observed at, lease renewTime, heartbeat)
        self.events = EventRecorder(self.client, "node-controller")

    @staticmethod
    def _lease_keys(lease: dict) -> list[str]:
        meta = lease["metadata"]
        return [meta["name"]] if meta.get("namespace") == "kube-node-lease" else []

    def _pod_keys(self, pod: dict) -> list[str]:
        node = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if node and any(t.get("effect") == "NoExecute" for t in (node.get("spec") or {}).get("taints") or ()):
            return [node["metadata"]["name"]]
        return []

    async def run(self, stop: asyncio.Event) -> None:
        ticker = asyncio.create_task(self._monitor(stop))
        try:
            await super().run(stop)
        finally:
            ticker.cancel()

    async def _monitor(self, stop: asyncio.Event) -> None:
        """monitorNodeHealth: look at every node each period, whether or not anything changed."""
        await self.ctx.informers.wait_synced(*self.watched)
        while not stop.is_set():
            for node in self.nodes.list():
                self.queue.add(node["metadata"]["name"])
            try:
                await asyncio.wait_for(stop.wait(), self.period)
            except TimeoutError:
                pass

    def _observe(self, name: str, node: dict) -> float:
        """Seconds since this node's kubelet was last seen alive (Lease renewed or status posted)."""
        lease = self.leases.get(f"kube-node-lease/{name}")
        renew = ((lease or {}).get("spec") or {}).get("renewTime") or ""
        beat = (_conditions(node).get("Ready") or {}).get("lastHeartbeatTime") or ""
        now = time.monotonic()
        seen = self.health.get(name)
        if seen is None or seen[1] != renew or seen[2] != beat:
            self.health[name] = seen = (now, renew, beat)
        return now - seen[0]

    async def reconcile(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None:
            self.health.pop(name, None)
            return
        silent = self._observe(name, node)
        if silent > self.grace:
            node = await self._mark_unknown(node)
            if (_conditions(node).get("Ready") or {}).get("status") == "Unknown":
                await self._mark_pods_not_ready(name)
        now = rfc3339()
        taints = desired_taints(node, now)
        if taints != ((node.get("spec") or {}).get("taints") or []):
            patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                     "spec": {"taints": taints or None}}
            try:
                node = await self.client.patch("", "v1", "nodes", name, patch)
            except ApiError as e:
                if e.code == 409:
                    raise Requeue(0.2) from None
                if e.code == 404:
                    return
                raise
        wake = await self._evict(node)
        if wake is not None:
            raise Requeue(wake)

    async def _mark_unknown(self, node: dict) -> dict:
        conds = _conditions(node)
        now = rfc3339()
        changed = False
        new = []
        for c in (node.get("status") or {}).get("conditions") or ():
            if c.get("type") in KUBELET_CONDITIONS and c.get("status") != "Unknown":
                c = {**c, "status": "Unknown", "reason": "NodeStatusUnknown",
                     "message": "Kubelet stopped posting node status.", "lastTransitionTime": now}
                changed = True
            new.append(c)
        for kind in KUBELET_CONDITIONS:
            if kind not in conds:
                new.append({"type": kind, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                            "message": "Kubelet never posted node status.", "lastHeartbeatTime": now,
                            "lastTransitionTime": now})
                changed = True
        if not changed:
            return node
        body = {**node, "status": {**(node.get("status") or {}), "conditions": new}}
        try:
            node = await self.client.update("", "v1", "nodes", body, subresource="status")
        except ApiError as e:
            if e.code == 409:
                raise Requeue(0.2) from None
            raise
        log.info("node %s: kubelet stopped posting node status", node["metadata"]["name"])
        self.events.event(node, "Normal", "NodeNotReady", f"Node {node['metadata']['name']} status is now: NodeNotReady")
        return node

    async def _mark_pods_not_ready(self, name: str) -> None:
        """MarkPodsNotReady: a pod on a node nobody hears from is not Ready either."""
        now = rfc3339()
        for pod in self.pods.by_index(NODE_INDEX, name):
            conds = (pod.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                continue
            new = [{**c, "status": "False", "lastTransitionTime": now} if c.get("type") in ("Ready",) else c
                   for c in conds]
            meta = pod["metadata"]
            try:
                await self.client.patch("", "v1", "pods", meta["name"], {"status": {"conditions": new}},
                                        meta["namespace"], subresource="status")
            except ApiError as e:
                if e.code != 404:
                    raise

    async def _evict(self, node: dict) -> float | None:
        taints = [t for t in (node.get("spec") or {}).get("taints") or () if t.get("effect") == "NoExecute"]
        if not taints:
            return None
        added = max((parse_time(t.get("timeAdded")) for t in taints if t.get("timeAdded")),
                    default=None) or datetime.datetime.now(datetime.UTC)
        since = (datetime.datetime.now(datetime.UTC) - added).total_seconds()
        wake = None
        for pod in self.pods.by_index(NODE_INDEX, node["metadata"]["name"]):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            delay = eviction_delay(pod, taints)
            if delay is None:
                continue
            if delay > since:
                wake = delay - since if wake is None else min(wake, delay - since)
                continue
            await self._delete_pod(pod)
        return wake

    async def _delete_pod(self, pod: dict) -> None:
        meta = pod["metadata"]
        conds = [c for c in (pod.get("status") or {}).get("conditions") or () if c.get("type") != "DisruptionTarget"]
        conds.append({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                      "message": "Taint manager: deleting due to NoExecute taint", "lastTransitionTime": rfc3339()})
        try:
            await self.client.patch("", "v1", "pods", meta["name"], {"status": {"conditions": conds}},
                                    meta["namespace"], subresource="status")
            await self.client.delete("", "v1", "pods", meta["name"], meta["namespace"],
                                     body={"preconditions": {"uid": meta["uid"]}})
        except ApiError as e:
            if e.code not in (404, 409):
                raise
            return
        self.events.event(pod, "Normal", "TaintManagerEviction",
                          f"Marking for deletion Pod {meta['namespace']}/{meta['name']}")
