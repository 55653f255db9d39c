"""The eviction subresource (upstream `pkg/registry/core/pod/storage/eviction.go`).

POST pods/NAME/eviction deletes the pod unless that would violate its PodDisruptionBudget.
Terminal, pending and already-terminating pods are deleted at once; so are pods no budget
selects (here an empty selector selects nothing). A pod selected by more than one budget
cannot be evicted. Otherwise the budget must allow a disruption: its `disruptionsAllowed` is
decremented and the pod recorded in `disruptedPods` (conflicts retried) before the delete;
when it allows none the answer is 429 with a DisruptionBudget cause. Pods that are not Ready
bypass the budget when its unhealthyPodEvictionPolicy is AlwaysAllow, or (IfHealthyBudget,
the default) when the budget is currently healthy.
"""

from __future__ import annotations

import copy

from ..api import errors
from ..api.meta import rfc3339
from ..api.selectors import selector_matches
from .store import DeleteOptions, WriteContext

MAX_DISRUPTED_PODS = 2000
RETRIES = 10
MULTIPLE_PDBS = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def can_ignore_pdb(pod: dict) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))


def _too_many(message: str) -> errors.StatusError:
    return errors.StatusError(429, "TooManyRequests", message,
                              {"causes": [{"reason": "DisruptionBudget", "message": message}]})


class Eviction:
    def __init__(self, server):
        self.server = server
        self.store = server.store

    def _pdb_type(self):
        return self.server.index.get("policy", "v1", "poddisruptionbudgets")

    async def budgets_for(self, pod: dict) -> list[dict]:
        rt = self._pdb_type()
        entries, _ = await self.store.list_entries(rt, pod["metadata"]["namespace"])
        labels = pod["metadata"].get("labels") or {}
        out = []
        for e in entries:
            selector = (e.obj.get("spec") or {}).get("selector")
            if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
                continue  # a nil or empty selector matches nothing here
            if selector_matches(selector, labels):
                out.append(self.store.from_storage(rt, e.obj))
        return out

    async def evict(self, rt, namespace: str, name: str, body: dict, ctx: WriteContext) -> tuple[dict, bool]:
        """Evict the pod; returns what the delete returned (object, deleted now)."""
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request("name in URL does not match name in Eviction object")
        opts = DeleteOptions.from_body(body.get("deleteOptions") or {}, {})
        pod = await self.store.get(rt, namespace, name)
        if can_ignore_pdb(pod):
            return await self._delete(rt, pod, opts, ctx, disruption=False)
        pdbs = await self.budgets_for(pod)
        if len(pdbs) > 1:
            raise errors.internal(MULTIPLE_PDBS)
        if not pdbs:
            return await self._delete(rt, pod, opts, ctx)
        pdb = pdbs[0]
        status = pdb.get("status") or {}
        if not _ready(pod):
            policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
            healthy = status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0) > 0
            if policy == "AlwaysAllow" or healthy:
                return await self._delete(rt, pod, opts, ctx)
        await self.check_and_decrement(pdb["metadata"]["name"], namespace, name, ctx)
        return await self._delete(rt, pod, opts, ctx)

    async def check_and_decrement(self, pdb_name: str, namespace: str, pod_name: str, ctx: WriteContext) -> None:
        rt = self._pdb_type()

        async def build(current: dict | None) -> dict:
            if current is None:
                raise errors.not_found_error("poddisruptionbudgets", pdb_name, "policy")
            status = current.setdefault("status", {})
            if status.get("observedGeneration", 0) < current["metadata"].get("generation", 1):
                raise _too_many(f"The disruption budget {pdb_name} is still being processed by the server.")
            allowed = status.get("disruptionsAllowed", 0)
            if allowed < 0:
                raise errors.forbidden_error("pdb disruptions allowed is negative")
            if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
                raise errors.forbidden_error(
                    "DisruptedPods map too big - too many evictions not confirmed by PDB controller")
            if allowed == 0:
                err = _too_many(VIOLATION)
                err.details["causes"][0]["message"] = (
                    f"The disruption budget {pdb_name} needs {status.get('desiredHealthy', 0)} healthy pods and "
                    f"has {status.get('currentHealthy', 0)} currently")
                raise err
            status["disruptionsAllowed"] = allowed - 1
            if allowed - 1 == 0:
                conditions = [c for c in status.get("conditions") or () if c.get("type") != "DisruptionAllowed"]
                conditions.append({"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
                                   "message": "", "lastTransitionTime": rfc3339(),
                                   "observedGeneration": status.get("observedGeneration")})
                status["conditions"] = conditions
            status["disruptedPods"] = dict(status.get("disruptedPods") or {}, **{pod_name: rfc3339()})
            return current

        if ctx.dry_run:
            await build(copy.deepcopy(await self.store.get(rt, namespace, pdb_name)))
            return
        # the store retries the read-modify-write on conflicts, as upstream's RetryOnConflict
        await self.store.patch(rt, namespace, pdb_name, build, ctx, subresource="status")

    async def _delete(self, rt, pod: dict, opts: DeleteOptions, ctx: WriteContext,
                      disruption: bool = True) -> tuple[dict, bool]:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if disruption and not ctx.dry_run:
            await self._mark_disruption_target(rt, namespace, name, ctx)
        return await self.store.delete(rt, namespace, name, opts, ctx)

    async def _mark_disruption_target(self, rt, namespace: str, name: str, ctx: WriteContext) -> None:
        """The DisruptionTarget condition a pod gets before an API-initiated eviction deletes it."""

        async def build(current: dict | None) -> dict:
            if current is None:
                raise errors.not_found_error("pods", name)
            status = current.setdefault("status", {})
            conditions = [c for c in status.get("conditions") or () if c.get("type") != "DisruptionTarget"]
            conditions.append({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                               "message": "Eviction API: evicting", "lastProbeTime": None,
                               "lastTransitionTime": rfc3339()})
            status["conditions"] = conditions
            return current

        await self.store.patch(rt, namespace, name, build, ctx, subresource="status")
