"""The ReplicaSet controller (upstream `pkg/controller/replicaset`, `sync_replica_set`).

Keeps `spec.replicas` active pods per ReplicaSet: claims matching orphans and releases
pods its selector no longer matches, creates the missing pods from the template in
slow-start batches, deletes the surplus in upstream's order, and records expectations
so a lagging pod cache never causes double creations. `ReplicationController` runs
the same core over core/v1 (see replicationcontroller.py).
"""

from __future__ import annotations

import asyncio
import logging

from ..api.meta import rfc3339
from ..api.selectors import selector_matcher, selector_matches
from ..client.events import NORMAL, WARNING, EventRecorder
from ..client.informer import meta_key
from ..client.rest import ApiError
from .base import Controller, Requeue
from .expectations import Expectations
from .podutil import (
    BURST_REPLICAS,
    CONTROLLER_INDEX,
    claim_candidates,
    controller_index,
    controller_ref,
    deletion_order,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    namespace_index,
    new_controller_ref,
    pod_from_template,
    seconds_until_available,
    slow_start_batch,
)
from .refmanager import ControllerRefManager, live_owner

log = logging.getLogger("kybernetes.replicaset")


class ReplicaSetController(Controller):
    name = "replicaset"
    workers = 4
    group, version, plural, kind = "apps", "v1", "replicasets", "ReplicaSet"
    component = "replicaset-controller"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.api_version = f"{self.group}/{self.version}" if self.group else self.version
        self.expectations = Expectations()
        self.recorder = EventRecorder(self.client, self.component)
        self.owners = self.ctx.informers.informer(self.group, self.version, self.plural)
        self.owners.add_indexer("namespace", namespace_index)
        self.owners.add_handler(self._owner_changed, lambda old, new: self._owner_changed(new), self._owner_deleted)
        self.pods = self.ctx.informers.informer("", "v1", "pods")
        self.pods.add_indexer("namespace", namespace_index)
        self.pods.add_indexer(CONTROLLER_INDEX, controller_index)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.watched += [self.owners, self.pods]

    # --- kind specifics (ReplicationController overrides) -----------------------------------------
    def selector(self, owner: dict) -> dict:
        return (owner.get("spec") or {}).get("selector") or {}

    # --- event handlers: events to keys (and expectation bookkeeping, as upstream) ----------------
    def _owner_changed(self, owner: dict) -> None:
        self.queue.add(meta_key(owner))

    def _owner_deleted(self, owner: dict) -> None:
        key = meta_key(owner)
        self.expectations.delete(key)
        self.queue.add(key)

    def _resolve(self, pod: dict, ref: dict | None) -> str | None:
        if not ref or ref.get("kind") != self.kind:
            return None
        api_version = ref.get("apiVersion", "")
        if (api_version.split("/")[0] if "/" in api_version else "") != self.group:
            return None
        key = f"{pod['metadata'].get('namespace', '')}/{ref['name']}"
        owner = self.owners.get(key)
        return key if owner is not None and owner["metadata"].get("uid") == ref.get("uid") else None

    def _matching_owners(self, pod: dict) -> list[str]:
        labels = pod["metadata"].get("labels") or {}
        if not labels:
            return []
        return [meta_key(o) for o in self.owners.by_index("namespace", pod["metadata"].get("namespace", ""))
                if selector_matches(self.selector(o), labels)]

    def _pod_added(self, pod: dict) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        key = self._resolve(pod, controller_ref(pod))
        if key:
            self.expectations.creation_observed(key)
            self.queue.add(key)
        elif controller_ref(pod) is None:
            for key in self._matching_owners(pod):
                self.queue.add(key)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if new["metadata"].get("resourceVersion") == old["metadata"].get("resourceVersion"):
            return
        labels_changed = (new["metadata"].get("labels") or {}) != (old["metadata"].get("labels") or {})
        if new["metadata"].get("deletionTimestamp"):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref != new_ref:
            old_key = self._resolve(old, old_ref)
            if old_key:
                self.queue.add(old_key)
        key = self._resolve(new, new_ref)
        if key:
            self.queue.add(key)
            owner = self.owners.get(key)
            min_ready = int(((owner or {}).get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready and not is_pod_ready(old) and is_pod_ready(new):
                self.queue.add_after(key, min_ready + 1)
        elif new_ref is None and (labels_changed or old_ref is not None):
            for k in self._matching_owners(new):
                self.queue.add(k)

    def _pod_deleted(self, pod: dict) -> None:
        key = self._resolve(pod, controller_ref(pod))
        if key:
            self.expectations.deletion_observed(key, meta_key(pod))
            self.queue.add(key)

    # --- sync -------------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> None:
        await self.sync_replica_set(key)

    async def sync_replica_set(self, key: str) -> None:
        owner = self.owners.get(key)
        if owner is None:
            self.expectations.delete(key)
            return
        needs_sync = self.expectations.satisfied(key)
        matches = selector_matcher(self.selector(owner))
        active = [p for p in claim_candidates(self.pods, owner) if is_pod_active(p)]
        manager = ControllerRefManager(
            self.client, owner, self.api_version, self.kind,
            lambda p: matches(p["metadata"].get("labels") or {}), ("", "v1", "pods"),
            live_owner(self.client, self.group, self.version, self.plural, owner))
        pods = await manager.claim(active)
        manage_error = None
        if needs_sync and not owner["metadata"].get("deletionTimestamp"):
            try:
                await self.manage_replicas(pods, owner, key)
            except ApiError as e:
                manage_error = e
        await self.update_status(owner, pods, manage_error)
        if manage_error is not None:
            raise manage_error
        spec = owner.get("spec") or {}
        wait = [seconds_until_available(p, int(spec.get("minReadySeconds") or 0)) for p in pods]
        wait = [w for w in wait if w is not None]
        if wait:
            raise Requeue(min(wait) + 0.1)

    async def manage_replicas(self, pods: list[dict], owner: dict, key: str) -> None:
        spec = owner.get("spec") or {}
        want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        diff = len(pods) - want
        if diff < 0:
            count = min(-diff, BURST_REPLICAS)
            self.expectations.expect_creations(key, count)
            ref = new_controller_ref(owner, self.api_version, self.kind)
            template = spec.get("template") or {}
            errors_seen: list[ApiError] = []

            async def create_one():
                body = pod_from_template(template, owner, ref)
                try:
                    pod = await self.client.create("", "v1", "pods", body, owner["metadata"]["namespace"])
                except ApiError as e:
                    self.expectations.creation_observed(key)
                    if _namespace_terminating(e):
                        return  # the namespace is going away: not a failure
                    self.recorder.event(owner, WARNING, "FailedCreate", f"Error creating: {e.status.get('message', e)}")
                    errors_seen.append(e)
                    raise
                self.recorder.event(owner, NORMAL, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")

            done, errors = await slow_start_batch(count, create_one)
            skipped = count - done - len(errors)
            if skipped > 0:
                self.expectations.creation_observed(key, skipped)
            if errors:
                raise errors[0]
        elif diff > 0:
            count = min(diff, BURST_REPLICAS)
            victims = deletion_order(pods, self.related_pods(owner))[:count]
            self.expectations.expect_deletions(key, [meta_key(p) for p in victims])
            results = await asyncio.gather(*(self._delete_pod(owner, key, p) for p in victims),
                                           return_exceptions=True)
            errors = [r for r in results if isinstance(r, Exception)]
            if errors:
                raise errors[0]

    def related_pods(self, owner: dict) -> list[dict]:
        """The pods of every ReplicaSet sharing this one's controller (its Deployment's), which rank the
        pods to delete by how crowded their nodes are (upstream `getIndirectlyRelatedPods`); none
        for a ReplicaSet without a controller."""
        ref = controller_ref(owner)
        if ref is None:
            return []
        namespace = owner["metadata"]["namespace"]
        siblings = [o for o in self.owners.by_index("namespace", namespace)
                    if (controller_ref(o) or {}).get("uid") == ref.get("uid")]
        candidates = self.pods.by_index("namespace", namespace)
        seen: dict[str, dict] = {}
        for sibling in siblings:
            matches = selector_matcher(self.selector(sibling))
            for pod in candidates:
                if pod["metadata"]["uid"] not in seen and matches(pod["metadata"].get("labels") or {}):
                    seen[pod["metadata"]["uid"]] = pod
        return list(seen.values())

    async def _delete_pod(self, owner: dict, key: str, pod: dict) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete("", "v1", "pods", meta["name"], meta["namespace"],
                                     body={"preconditions": {"uid": meta["uid"]}})
        except ApiError as e:
            self.expectations.deletion_observed(key, meta_key(pod))
            if e.code == 404:
                return
            self.recorder.event(owner, WARNING, "FailedDelete", f"Error deleting: {e.status.get('message', e)}")
            raise
        self.recorder.event(owner, NORMAL, "SuccessfulDelete", f"Deleted pod: {meta['name']}")

    # --- status -----------------------------------------------------------------------------------
    def calculate_status(self, owner: dict, pods: list[dict], manage_error: ApiError | None) -> dict:
        spec = owner.get("spec") or {}
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        status = dict(owner.get("status") or {})
        fully = ready = available = 0
        template_items = template_labels.items()
        for p in pods:  # one pass: a sync of a large ReplicaSet walks all its pods
            labels = p["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in template_items):
                fully += 1
            if is_pod_ready(p):
                ready += 1
                if is_pod_available(p, min_ready):
                    available += 1
        status.update(replicas=len(pods), fullyLabeledReplicas=fully, readyReplicas=ready,
                      availableReplicas=available)
        conditions = [c for c in status.get("conditions") or () if c.get("type") != "ReplicaFailure"]
        existing = next((c for c in status.get("conditions") or () if c.get("type") == "ReplicaFailure"), None)
        if manage_error is not None:
            want = int(spec.get("replicas") if spec.get("replicas") is not None else 1)
            reason = "FailedCreate" if len(pods) < want else "FailedDelete"
            conditions.append(existing or {"type": "ReplicaFailure", "status": "True", "lastTransitionTime": rfc3339(),
                                           "reason": reason, "message": str(manage_error.status.get("message", ""))})
        if conditions:
            status["conditions"] = conditions
        else:
            status.pop("conditions", None)
        return status

    async def update_status(self, owner: dict, pods: list[dict], manage_error: ApiError | None) -> None:
        status = self.calculate_status(owner, pods, manage_error)
        status["observedGeneration"] = owner["metadata"].get("generation", 0)
        old = owner.get("status") or {}
        fields = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration",
                  "conditions")
        if all(old.get(f) == status.get(f) for f in fields if f != "conditions") and \
                (old.get("conditions") or []) == (status.get("conditions") or []):
            return
        body = {**owner, "status": status}
        try:
            await self.client.update(self.group, self.version, self.plural, body, owner["metadata"]["namespace"],
                                     subresource="status")
        except ApiError as e:
            if e.code == 404:
                return
            if e.code == 409:
                raise Requeue(0.05) from None  # the cache will catch up; sync again
            raise


def _namespace_terminating(e: ApiError) -> bool:
    causes = (e.status.get("details") or {}).get("causes") or ()
    return e.code == 403 and any(c.get("reason") == "NamespaceTerminating" for c in causes)
