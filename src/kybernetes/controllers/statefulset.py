"""The StatefulSet controller (upstream `pkg/controller/statefulset`, `stateful_set_control.go`).

Pods with stable names `<set>-<ordinal>`, stable claims `<template>-<set>-<ordinal>`,
created in order and each only once its predecessor is Running and Ready
(OrderedReady) or all at once (Parallel), removed from the highest ordinal down.
Template changes become ControllerRevisions; RollingUpdate replaces pods with
ordinal >= partition from the highest down, one at a time; OnDelete waits for users.
"""

from __future__ import annotations

import copy
import logging

from ..api.selectors import selector_matches
from ..client.events import NORMAL, WARNING, EventRecorder
from ..client.informer import meta_key
from ..client.rest import ApiError
from .base import Controller, Requeue
from .history import REVISION_HASH_LABEL, RevisionHistory, owned_revisions, template_of
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

log = logging.getLogger("kybernetes.statefulset")

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
API_VERSION, KIND = "apps/v1", "StatefulSet"


def _owner_key(obj: dict) -> list[str]:
    ref = controller_ref(obj)
    if ref and ref.get("kind") == KIND:
        return [f"{obj['metadata']['namespace']}/{ref['name']}"]
    return []


def ordinal_of(set_name: str, pod: dict) -> int | None:
    name = pod["metadata"]["name"]
    prefix, _, tail = name.rpartition("-")
    if prefix != set_name or not tail.isdigit():
        return None
    return int(tail)


def is_terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_failed(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


def is_running_and_ready(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and is_pod_ready(pod)


def claim_name(claim: dict, set_name: str, ordinal: int) -> str:
    return f"{claim['metadata']['name']}-{set_name}-{ordinal}"


class StatefulSetController(Controller):
    name = "statefulset"
    workers = 2

    def __init__(self, ctx):
        super().__init__(ctx)
        self.recorder = EventRecorder(self.client, "statefulset-controller")
        self.history = RevisionHistory(self.client, API_VERSION, KIND)
        self.sets = self.watch("apps", "v1", "statefulsets")
        self.pods = self.watch("", "v1", "pods", self._pod_keys)
        self.pods.add_indexer("namespace", namespace_index)
        self.pods.add_indexer(CONTROLLER_INDEX, controller_index)
        self.revisions = self.watch("apps", "v1", "controllerrevisions", _owner_key)
        self.revisions.add_indexer("namespace", namespace_index)
        self.claims = self.ctx.informers.informer("", "v1", "persistentvolumeclaims")
        self.watched.append(self.claims)

    def _pod_keys(self, pod: dict) -> list[str]:
        """Its StatefulSet; for an orphan, the sets that would adopt it (upstream addPod)."""
        if controller_ref(pod) is not None:
            return _owner_key(pod)
        meta = pod["metadata"]
        return [meta_key(s) for s in self.sets.list() if s["metadata"].get("namespace") == meta.get("namespace")
                and self._member(s, pod)]

    @staticmethod
    def _member(sts: dict, pod: dict) -> bool:
        """Upstream's claim match: the selector matches and the pod is named `<set>-<ordinal>` (isMemberOf)."""
        selector = (sts.get("spec") or {}).get("selector") or {}
        labels = pod["metadata"].get("labels") or {}
        return bool(labels) and selector_matches(selector, labels) and \
            ordinal_of(sts["metadata"]["name"], pod) is not None

    async def claim_pods(self, sts: dict) -> list[dict]:
        """The set's pods after adopting matching orphans and releasing pods it no longer matches."""
        manager = ControllerRefManager(self.client, sts, API_VERSION, KIND, lambda p: self._member(sts, p),
                                       ("", "v1", "pods"), live_owner(self.client, "apps", "v1", "statefulsets", sts))
        return await manager.claim(claim_candidates(self.pods, sts))

    async def reconcile(self, key: str) -> None:
        sts = self.sets.get(key)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        await self.sync_stateful_set(sts)

    async def sync_stateful_set(self, sts: dict) -> None:
        ns = sts["metadata"]["namespace"]
        pods = await self.claim_pods(sts)
        revisions = owned_revisions(self.revisions.by_index("namespace", ns), sts)
        update_rev, collision = await self.history.ensure(sts, revisions)
        by_name = {r["metadata"]["name"]: r for r in revisions}
        by_name[update_rev["metadata"]["name"]] = update_rev
        current_name = (sts.get("status") or {}).get("currentRevision")
        current_rev = by_name.get(current_name) or update_rev
        status = await self.update_pods(sts, pods, current_rev, update_rev)
        status["collisionCount"] = collision
        await self.update_status(sts, status)
        keep = {current_rev["metadata"]["name"], update_rev["metadata"]["name"]}
        keep |= {(p["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) for p in pods}
        await self.history.truncate(sts, list(by_name.values()), keep)
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        waits = [w for w in (seconds_until_available(p, min_ready) for p in pods) if w is not None]
        if waits:
            raise Requeue(min(waits) + 0.1)

    # --- pods -------------------------------------------------------------------------------------
    def _status(self, sts: dict, pods: list[dict], current: str, update: str) -> dict:
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        live = [p for p in pods if not is_terminating(p)]
        rev = [(p["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) for p in live]
        return {"observedGeneration": sts["metadata"].get("generation", 0), "replicas": len(live),
                "readyReplicas": sum(1 for p in live if is_running_and_ready(p)),
                "availableReplicas": sum(1 for p in live if is_running_and_ready(p)
                                         and is_pod_available(p, min_ready)),
                "currentReplicas": rev.count(current), "updatedReplicas": rev.count(update),
                "currentRevision": current, "updateRevision": update}

    async def update_pods(self, sts: dict, pods: list[dict], current_rev: dict, update_rev: dict) -> dict:
        spec = sts.get("spec") or {}
        name = sts["metadata"]["name"]
        start = int((spec.get("ordinals") or {}).get("start") or 0)
        want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        strategy = spec.get("updateStrategy") or {}
        partition = int(((strategy.get("rollingUpdate") or {}).get("partition")) or 0)
        current, update = current_rev["metadata"]["name"], update_rev["metadata"]["name"]
        replicas: dict[int, dict] = {}
        condemned: list[dict] = []
        for pod in pods:
            ordinal = ordinal_of(name, pod)
            if ordinal is not None and start <= ordinal < start + want:
                replicas[ordinal] = pod
            else:
                condemned.append(pod)
        condemned.sort(key=lambda p: ordinal_of(name, p) if ordinal_of(name, p) is not None else -1, reverse=True)
        status = self._status(sts, pods, current, update)

        def finish() -> dict:
            if strategy.get("type", "RollingUpdate") == "RollingUpdate" and \
                    status["updatedReplicas"] == status["replicas"] == status["readyReplicas"] == want:
                status["currentReplicas"], status["currentRevision"] = status["updatedReplicas"], update
            return status

        min_ready = int(spec.get("minReadySeconds") or 0)

        def unavailable(pod: dict) -> bool:
            return is_terminating(pod) or not is_running_and_ready(pod) or not is_pod_available(pod, min_ready)

        await self.claim_owners(sts, replicas, condemned)
        # 1. every ordinal in range: replace failed pods, create missing ones, in order; in OrderedReady
        # each waits for its predecessors to be Running, Ready and Available (minReadySeconds)
        for ordinal in range(start, start + want):
            pod = replicas.get(ordinal)
            if pod is not None and is_failed(pod) and not is_terminating(pod):
                await self._delete(sts, pod)
                if monotonic:
                    return finish()
                continue
            if pod is None:
                use_current = (strategy.get("type", "RollingUpdate") == "RollingUpdate" and current != update
                               and ordinal < start + partition)
                await self._create(sts, ordinal, current_rev if use_current else update_rev)
                if monotonic:
                    return finish()
                continue
            if monotonic and unavailable(pod):
                return finish()
        # 2. condemned pods, highest ordinal first; in OrderedReady an unavailable one goes only if it is
        # the first unavailable pod (in-range pods by ordinal, then condemned from the lowest ordinal up)
        first_unavailable = next((p for p in [*(replicas[o] for o in sorted(replicas)), *reversed(condemned)]
                                  if unavailable(p)), None)
        for pod in condemned:
            if is_terminating(pod):
                if monotonic:
                    return finish()
                continue
            if monotonic and unavailable(pod) and pod is not first_unavailable:
                return finish()
            await self._delete(sts, pod)
            if monotonic:
                return finish()
        # 3. rolling update, highest ordinal first, stop at the partition
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return finish()
        for ordinal in sorted(replicas, reverse=True):
            if ordinal < start + partition:
                break
            pod = replicas[ordinal]
            if (pod["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) != update and not is_terminating(pod):
                await self._delete(sts, pod)
                return finish()
            if unavailable(pod):
                return finish()
        return finish()

    def new_pod(self, sts: dict, ordinal: int, revision: dict) -> dict:
        meta, spec = sts["metadata"], sts.get("spec") or {}
        template = template_of(revision)
        tmeta = template.get("metadata") or {}
        pod_name = f"{meta['name']}-{ordinal}"
        labels = dict(tmeta.get("labels") or {})
        labels.update({POD_NAME_LABEL: pod_name, POD_INDEX_LABEL: str(ordinal),
                       REVISION_HASH_LABEL: revision["metadata"]["name"]})
        pod_meta = {"name": pod_name, "namespace": meta["namespace"], "labels": labels,
                    "ownerReferences": [{"apiVersion": API_VERSION, "kind": KIND, "name": meta["name"],
                                         "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]}
        if tmeta.get("annotations"):
            pod_meta["annotations"] = dict(tmeta["annotations"])
        pod_spec = copy.deepcopy(template.get("spec") or {})
        pod_spec["hostname"] = pod_name
        if spec.get("serviceName"):
            pod_spec["subdomain"] = spec["serviceName"]
        claims = spec.get("volumeClaimTemplates") or []
        if claims:
            names = {c["metadata"]["name"] for c in claims}
            volumes = [v for v in pod_spec.get("volumes") or () if v.get("name") not in names]
            for c in claims:
                volumes.append({"name": c["metadata"]["name"],
                                "persistentVolumeClaim": {"claimName": claim_name(c, meta["name"], ordinal)}})
            pod_spec["volumes"] = volumes
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}

    async def _create(self, sts: dict, ordinal: int, revision: dict) -> None:
        ns, set_name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        pod = self.new_pod(sts, ordinal, revision)
        pod_name = pod["metadata"]["name"]
        for template in (sts.get("spec") or {}).get("volumeClaimTemplates") or ():
            await self._create_claim(sts, template, ordinal, pod_name)
        try:
            await self.client.create("", "v1", "pods", pod, ns)
        except ApiError as e:
            if e.code == 409:
                return  # our cache is behind: the pod exists
            self.recorder.event(sts, WARNING, "FailedCreate",
                                f"create Pod {pod_name} in StatefulSet {set_name} failed error: {e}")
            raise
        self.recorder.event(sts, NORMAL, "SuccessfulCreate", f"create Pod {pod_name} in StatefulSet {set_name} successful")

    async def _create_claim(self, sts: dict, template: dict, ordinal: int, pod_name: str) -> None:
        ns, set_name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        name = claim_name(template, set_name, ordinal)
        if self.claims.get(f"{ns}/{name}") is not None:
            return
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels.update(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": name, "namespace": ns, "labels": labels},
                 "spec": copy.deepcopy(template.get("spec") or {})}
        if (template.get("metadata") or {}).get("annotations"):
            claim["metadata"]["annotations"] = dict(template["metadata"]["annotations"])
        policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
        if policy.get("whenDeleted") == "Delete":
            claim["metadata"]["ownerReferences"] = [self._set_ref(sts)]
        try:
            await self.client.create("", "v1", "persistentvolumeclaims", claim, ns)
        except ApiError as e:
            if e.code == 409:
                return
            self.recorder.event(sts, WARNING, "FailedCreate", f"create Claim {name} for Pod {pod_name} in "
                                                              f"StatefulSet {set_name} failed error: {e}")
            raise
        self.recorder.event(sts, NORMAL, "SuccessfulCreate",
                            f"create Claim {name} Pod {pod_name} in StatefulSet {set_name} success")

    @staticmethod
    def _set_ref(sts: dict) -> dict:
        return {"apiVersion": API_VERSION, "kind": KIND, "name": sts["metadata"]["name"],
                "uid": sts["metadata"]["uid"], "blockOwnerDeletion": True, "controller": True}

    async def claim_owners(self, sts: dict, replicas: dict[int, dict], condemned: list[dict]) -> None:
        """Owner references on claims follow persistentVolumeClaimRetentionPolicy (whenScaled)."""
        spec = sts.get("spec") or {}
        templates = spec.get("volumeClaimTemplates") or []
        policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        if not templates or policy.get("whenScaled") != "Delete":
            return
        ns, set_name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        for pod in condemned:
            ordinal = ordinal_of(set_name, pod)
            if ordinal is None:
                continue
            for template in templates:
                claim = self.claims.get(f"{ns}/{claim_name(template, set_name, ordinal)}")
                if claim is None:
                    continue
                refs = claim["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == pod["metadata"]["uid"] for r in refs):
                    continue
                ref = {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                       "uid": pod["metadata"]["uid"], "blockOwnerDeletion": True}
                try:
                    await self.client.patch("", "v1", "persistentvolumeclaims", claim["metadata"]["name"],
                                            {"metadata": {"ownerReferences": [*refs, ref]}}, ns)
                except ApiError as e:
                    if e.code != 404:
                        raise

    async def _delete(self, sts: dict, pod: dict) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete("", "v1", "pods", meta["name"], meta["namespace"],
                                     body={"preconditions": {"uid": meta["uid"]}})
        except ApiError as e:
            if e.code in (404, 409):
                return
            self.recorder.event(sts, WARNING, "FailedDelete", f"delete Pod {meta['name']} in StatefulSet "
                                                              f"{sts['metadata']['name']} failed error: {e}")
            raise
        self.recorder.event(sts, NORMAL, "SuccessfulDelete",
                            f"delete Pod {meta['name']} in StatefulSet {sts['metadata']['name']} successful")

    async def update_status(self, sts: dict, status: dict) -> None:
        old = sts.get("status") or {}
        new = {**old, **status}
        if new == old:
            return
        await self.put_status("apps", "v1", "statefulsets", sts, new)

