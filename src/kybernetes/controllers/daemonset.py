"""The DaemonSet controller (upstream `pkg/controller/daemon`, `daemon_controller.go`, `update.go`).

One pod per eligible node: the node must match the template's nodeSelector and
required node affinity, and its NoSchedule/NoExecute taints must be tolerated (with
the tolerations every daemon pod gets). Pods carry a required node affinity on
`metadata.name` so the scheduler binds each to its node. Template changes become
ControllerRevisions; RollingUpdate replaces pods within maxUnavailable / maxSurge.
"""

from __future__ import annotations

import copy
import logging
import math

from ..api.selectors import selector_matches
from ..client.events import NORMAL, WARNING, EventRecorder
from ..client.informer import meta_key
from ..client.rest import ApiError
from .base import Controller, Requeue
from .expectations import Expectations
from .history import HASH_LABEL, REVISION_HASH_LABEL, RevisionHistory, owned_revisions
from .podutil import (
    CONTROLLER_INDEX,
    claim_candidates,
    controller_index,
    controller_ref,
    is_pod_available,
    is_pod_ready,
    namespace_index,
    seconds_until_available,
)
from .refmanager import ControllerRefManager, live_owner

log = logging.getLogger("kybernetes.daemonset")
API_VERSION, KIND = "apps/v1", "DaemonSet"

DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
NETWORK_UNAVAILABLE = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}


def _owner_key(obj: dict) -> list[str]:
    ref = controller_ref(obj)
    if ref and ref.get("kind") == KIND:
        return [f"{obj['metadata']['namespace']}/{ref['name']}"]
    return []


# --- node predicates ----------------------------------------------------------------------------
def _requirement(req: dict, value: str | None) -> bool:
    op, values = req.get("operator"), req.get("values") or []
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and values:
        try:
            return int(value) > int(values[0]) if op == "Gt" else int(value) < int(values[0])
        except ValueError:
            return False
    return False


def _term_matches(term: dict, node: dict) -> bool:
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = node["metadata"].get("labels") or {}
    node_fields = {"metadata.name": node["metadata"]["name"]}
    return all(_requirement(r, labels.get(r.get("key"))) for r in exprs) and \
        all(_requirement(r, node_fields.get(r.get("key"))) for r in fields)


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t["key"] == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def daemon_tolerations(pod_spec: dict) -> list[dict]:
    tolerations = list(pod_spec.get("tolerations") or [])
    extra = DAEMON_TOLERATIONS + ([NETWORK_UNAVAILABLE] if pod_spec.get("hostNetwork") else [])
    for t in extra:
        if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in tolerations):
            tolerations.append(dict(t))
    return tolerations


def node_should_run(pod_spec: dict, node: dict) -> tuple[bool, bool]:
    """(should run, should continue running) as upstream's `NodeShouldRunDaemonPod`."""
    if pod_spec.get("nodeName") and pod_spec["nodeName"] != node["metadata"]["name"]:
        return False, False
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False, False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    if required and not any(_term_matches(t, node) for t in required.get("nodeSelectorTerms") or ()):
        return False, False
    tolerations = daemon_tolerations(pod_spec)
    taints = (node.get("spec") or {}).get("taints") or []
    keeps = all(tolerates(tolerations, t) for t in taints if t.get("effect") == "NoExecute")
    fits = keeps and all(tolerates(tolerations, t) for t in taints if t.get("effect") == "NoSchedule")
    return fits, keeps


def pod_node(pod: dict) -> str | None:
    """The node a daemon pod is for: its binding, or the name in its node affinity before that."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or ():
        for f in term.get("matchFields") or ():
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or ()) == 1:
                return f["values"][0]
    return None


def _scaled(value, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value or 0)


class DaemonSetController(Controller):
    name = "daemonset"
    workers = 2

    def __init__(self, ctx):
        super().__init__(ctx)
        self.recorder = EventRecorder(self.client, "daemonset-controller")
        self.history = RevisionHistory(self.client, API_VERSION, KIND)
        self.expectations = Expectations()
        self.sets = self.watch("apps", "v1", "daemonsets")
        self.revisions = self.watch("apps", "v1", "controllerrevisions", _owner_key)
        self.revisions.add_indexer("namespace", namespace_index)
        self.nodes = self.watch("", "v1", "nodes", lambda _node: [meta_key(ds) for ds in self.sets.list()])
        self.pods = self.ctx.informers.informer("", "v1", "pods")
        self.pods.add_indexer("namespace", namespace_index)
        self.pods.add_indexer(CONTROLLER_INDEX, controller_index)
        self.pods.add_handler(self._pod_added, lambda old, new: self._pod_changed(new), self._pod_deleted)
        self.watched.append(self.pods)

    def _orphan_keys(self, pod: dict) -> list[str]:
        """The DaemonSets that would adopt an orphan pod (upstream addPod / updatePod)."""
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        if controller_ref(pod) is not None or not labels or meta.get("deletionTimestamp"):
            return []
        return [meta_key(ds) for ds in self.sets.list() if ds["metadata"].get("namespace") == meta.get("namespace")
                and selector_matches((ds.get("spec") or {}).get("selector") or {}, labels)]

    def _pod_added(self, pod: dict) -> None:
        for key in _owner_key(pod):
            self.expectations.creation_observed(key)
            self.queue.add(key)
        for key in self._orphan_keys(pod):
            self.queue.add(key)

    def _pod_changed(self, pod: dict) -> None:
        for key in self._orphan_keys(pod):
            self.queue.add(key)
        for key in _owner_key(pod):
            if pod["metadata"].get("deletionTimestamp"):
                self.expectations.deletion_observed(key, meta_key(pod))
            self.queue.add(key)

    def _pod_deleted(self, pod: dict) -> None:
        for key in _owner_key(pod):
            self.expectations.deletion_observed(key, meta_key(pod))
            self.queue.add(key)

    async def reconcile(self, key: str) -> None:
        ds = self.sets.get(key)
        if ds is None:
            self.expectations.delete(key)
            return
        if ds["metadata"].get("deletionTimestamp"):
            return
        ns = ds["metadata"]["namespace"]
        revisions = owned_revisions(self.revisions.by_index("namespace", ns), ds)
        update_rev, collision = await self.history.ensure(ds, revisions)
        current_hash = (update_rev["metadata"].get("labels") or {}).get(HASH_LABEL, "")
        pods = await self.claim_pods(ds)
        by_node: dict[str, list[dict]] = {}
        for pod in pods:
            by_node.setdefault(pod_node(pod) or "", []).append(pod)
        template_spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
        plan = {n["metadata"]["name"]: node_should_run(template_spec, n) for n in self.nodes.list()}
        if self.expectations.satisfied(key):
            changed = await self.manage(key, ds, plan, by_node, current_hash)
            if not changed and ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type") != "OnDelete":
                await self.rolling_update(key, ds, plan, by_node, current_hash)
        await self.update_status(ds, plan, by_node, current_hash, collision)
        keep = {update_rev["metadata"]["name"]} | {
            r["metadata"]["name"] for r in revisions
            if (r["metadata"].get("labels") or {}).get(HASH_LABEL) in
            {(p["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) for p in pods}}
        await self.history.truncate(ds, [*revisions, update_rev], keep)
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        waits = [w for w in (seconds_until_available(p, min_ready) for p in pods) if w is not None]
        if waits:
            raise Requeue(min(waits) + 0.1)

    async def claim_pods(self, ds: dict) -> list[dict]:
        """The set's pods after adopting matching orphans and releasing pods it no longer matches
        (upstream getDaemonPods)."""
        selector = (ds.get("spec") or {}).get("selector") or {}
        manager = ControllerRefManager(
            self.client, ds, API_VERSION, KIND,
            lambda p: selector_matches(selector, p["metadata"].get("labels") or {}), ("", "v1", "pods"),
            live_owner(self.client, "apps", "v1", "daemonsets", ds))
        return await manager.claim(claim_candidates(self.pods, ds))

    async def manage(self, key: str, ds: dict, plan: dict, by_node: dict, current_hash: str) -> bool:
        surge = _scaled((((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {})
                        .get("maxSurge"), 1)
        create, delete = [], []
        for node, pods in by_node.items():
            if node not in plan:
                delete += [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        for node, (should_run, should_continue) in plan.items():
            pods = [p for p in by_node.get(node, []) if not p["metadata"].get("deletionTimestamp")]
            if should_run and not pods:
                if not by_node.get(node):
                    create.append(node)
            elif should_continue or should_run:
                failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
                delete += failed
                running = sorted((p for p in pods if p not in failed),
                                 key=lambda p: p["metadata"].get("creationTimestamp") or "")
                if len(running) > 1:
                    new = [p for p in running if _hash(p) == current_hash]
                    old = [p for p in running if _hash(p) != current_hash]
                    if surge and len(new) == 1 and len(old) == 1:
                        continue  # a surge in progress: rolling_update settles it
                    delete += running[1:]
            elif pods:
                delete += pods
        if not create and not delete:
            return False
        await self.sync_nodes(key, ds, delete, create, current_hash)
        return True

    async def rolling_update(self, key: str, ds: dict, plan: dict, by_node: dict, current_hash: str) -> None:
        spec = ds.get("spec") or {}
        ru = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
        desired = sum(1 for run, _ in plan.values() if run)
        max_surge = _scaled(ru.get("maxSurge"), desired)
        max_unavailable = _scaled(ru.get("maxUnavailable", 1), desired)
        if not max_surge and not max_unavailable:
            max_unavailable = 1
        min_ready = int(spec.get("minReadySeconds") or 0)
        unavailable, candidates, delete, surge_nodes, surging, replace_nodes = 0, [], [], [], 0, []
        for node, (should_run, _) in plan.items():
            if not should_run:
                continue
            pods = [p for p in by_node.get(node, []) if not p["metadata"].get("deletionTimestamp")]
            new = [p for p in pods if _hash(p) == current_hash]
            old = [p for p in pods if _hash(p) != current_hash]
            new_ok = any(is_pod_available(p, min_ready) for p in new)
            if max_surge:
                if old and new:
                    if new_ok:
                        delete += old
                    else:
                        surging += 1
                elif old and not new:
                    if all(is_pod_available(p, min_ready) for p in old):
                        surge_nodes.append(node)
                    else:
                        replace_nodes.append(node)  # not serving anyway: its replacement needs no surge budget
                continue
            if new:
                unavailable += 0 if new_ok else 1
            elif not old:
                unavailable += 1
            elif not all(is_pod_available(p, min_ready) for p in old):
                delete += old
                unavailable += 1
            else:
                candidates += old
        create = []
        if max_surge:
            create = replace_nodes + surge_nodes[:max(0, max_surge - surging)]
        else:
            delete += candidates[:max(0, max_unavailable - unavailable)]
        await self.sync_nodes(key, ds, delete, create, current_hash)

    # --- writes -----------------------------------------------------------------------------------
    async def sync_nodes(self, key: str, ds: dict, delete: list[dict], create: list[str], current_hash: str) -> None:
        """Delete and create, expecting both at once (upstream `syncNodes` with SetExpectations): a pod
        cache that has seen the deletions but not the creations must not start the creations again."""
        if not delete and not create:
            return
        self.expectations.expect_deletions(key, [meta_key(p) for p in delete])
        self.expectations.creation_observed(key, -len(create))  # i.e. expect len(create) creations too
        errors = []
        for node in create:
            try:
                await self.create_pod(key, ds, node, current_hash)
            except ApiError as e:
                errors.append(e)
        await self.delete_pods(key, ds, delete)  # as upstream, the deletions go ahead after failed creations
        if errors:
            raise errors[0]

    def new_pod(self, ds: dict, node: str, current_hash: str) -> dict:
        meta, template = ds["metadata"], (ds.get("spec") or {}).get("template") or {}
        tmeta = template.get("metadata") or {}
        labels = dict(tmeta.get("labels") or {})
        labels[REVISION_HASH_LABEL] = current_hash
        spec = copy.deepcopy(template.get("spec") or {})
        affinity = spec.setdefault("affinity", {})
        node_affinity = affinity.setdefault("nodeAffinity", {})
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
        spec["tolerations"] = daemon_tolerations(spec)
        pod_meta = {"generateName": f"{meta['name']}-", "namespace": meta["namespace"], "labels": labels,
                    "ownerReferences": [{"apiVersion": API_VERSION, "kind": KIND, "name": meta["name"],
                                         "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]}
        if tmeta.get("annotations"):
            pod_meta["annotations"] = dict(tmeta["annotations"])
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}

    async def create_pod(self, key: str, ds: dict, node: str, current_hash: str) -> None:
        try:
            pod = await self.client.create("", "v1", "pods", self.new_pod(ds, node, current_hash),
                                           ds["metadata"]["namespace"])
        except ApiError as e:
            self.expectations.creation_observed(key)
            self.recorder.event(ds, WARNING, "FailedCreate", f"Error creating: {e}")
            raise
        self.recorder.event(ds, NORMAL, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")

    async def delete_pods(self, key: str, ds: dict, pods: list[dict]) -> None:
        for pod in pods:
            meta = pod["metadata"]
            try:
                await self.client.delete("", "v1", "pods", meta["name"], meta["namespace"],
                                         body={"preconditions": {"uid": meta["uid"]}})
            except ApiError as e:
                self.expectations.deletion_observed(key, meta_key(pod))
                if e.code in (404, 409):
                    continue
                self.recorder.event(ds, WARNING, "FailedDelete", f"Error deleting: {e}")
                raise
            self.recorder.event(ds, NORMAL, "SuccessfulDelete", f"Deleted pod: {meta['name']}")

    async def update_status(self, ds: dict, plan: dict, by_node: dict, current_hash: str, collision: int) -> None:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        desired = scheduled = misscheduled = ready = available = updated = 0
        for node, (should_run, _) in plan.items():
            pods = [p for p in by_node.get(node, []) if not p["metadata"].get("deletionTimestamp")]
            if should_run:
                desired += 1
                if pods:
                    scheduled += 1
                    ready += any(is_pod_ready(p) for p in pods)
                    available += any(is_pod_available(p, min_ready) for p in pods)
                    updated += any(_hash(p) == current_hash for p in pods)
            elif pods:
                misscheduled += 1
        old = ds.get("status") or {}
        status = {**old, "desiredNumberScheduled": desired, "currentNumberScheduled": scheduled,
                  "numberMisscheduled": misscheduled, "numberReady": ready, "numberAvailable": available,
                  "updatedNumberScheduled": updated, "numberUnavailable": desired - available,
                  "observedGeneration": ds["metadata"].get("generation", 0)}
        if collision:
            status["collisionCount"] = collision
        if not status["numberAvailable"]:
            status.pop("numberAvailable")
        if not status["numberUnavailable"]:
            status.pop("numberUnavailable")
        if status == old:
            return
        await self.put_status("apps", "v1", "daemonsets", ds, status)


def _hash(pod: dict) -> str | None:
    return (pod["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL)
