"""Storage object in-use protection (upstream `pkg/controller/volume/pvcprotection` and `pvprotection`).

Every claim carries the finalizer `kubernetes.io/pvc-protection` and every volume
`kubernetes.io/pv-protection` (the API server's admission adds them; these controllers add them
to older objects). A deleted claim keeps its finalizer while a pod scheduled to a node still
names it among its volumes, whatever that pod's phase, as upstream's; a deleted volume keeps
its finalizer while it is Bound. Then the finalizer goes and the object with it.
"""

from __future__ import annotations

from ..client.rest import ApiError
from .base import Controller, Requeue

PVC_FINALIZER = "kubernetes.io/pvc-protection"
PV_FINALIZER = "kubernetes.io/pv-protection"


def claim_names(pod: dict) -> list[str]:
    """The claims a pod's volumes name."""
    return [v["persistentVolumeClaim"].get("claimName", "")
            for v in (pod.get("spec") or {}).get("volumes") or ()
            if isinstance(v, dict) and isinstance(v.get("persistentVolumeClaim"), dict)]


def uses_claim(pod: dict, name: str) -> bool:
    """Upstream's podUsesPVC: only a scheduled pod can be using it (the kubelet starts no pod whose
    claim is being deleted)."""
    return bool((pod.get("spec") or {}).get("nodeName")) and name in claim_names(pod)


class _Protection(Controller):
    """Add the finalizer to live objects; take it off a deleted one once `in_use` says it may."""

    workers = 1
    group, version, plural, finalizer = "", "v1", "", ""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.objects = self.watch(self.group, self.version, self.plural)

    async def reconcile(self, key: str) -> None:
        obj = self.objects.get(key)
        if obj is None:
            return
        finalizers = list(obj["metadata"].get("finalizers") or ())
        deleting = bool(obj["metadata"].get("deletionTimestamp"))
        if not deleting and self.finalizer not in finalizers:
            await self._set_finalizers(obj, [*finalizers, self.finalizer])
        elif deleting and self.finalizer in finalizers and not await self.in_use(obj):
            await self._set_finalizers(obj, [f for f in finalizers if f != self.finalizer])

    async def in_use(self, obj: dict) -> bool:
        raise NotImplementedError

    async def _set_finalizers(self, obj: dict, finalizers: list[str]) -> None:
        meta = obj["metadata"]
        body = {"metadata": {"finalizers": finalizers or None, "resourceVersion": meta["resourceVersion"]}}
        try:
            await self.client.patch(self.group, self.version, self.plural, meta["name"], body,
                                    meta.get("namespace", ""))
        except ApiError as e:
            if e.code == 409:
                raise Requeue(0.05) from None  # changed meanwhile: decide again on the fresh object
            if e.code != 404:
                raise


class PVCProtectionController(_Protection):
    name = "pvc-protection"
    plural, finalizer = "persistentvolumeclaims", PVC_FINALIZER

    def __init__(self, ctx):
        super().__init__(ctx)
        # a pod that goes (or changes) may free the claims it names
        self.pods = self.watch("", "v1", "pods", lambda pod: [f"{pod['metadata'].get('namespace', '')}/{name}"
                                                              for name in claim_names(pod)])

    async def in_use(self, obj: dict) -> bool:
        ns, name = obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
        if any(uses_claim(p, name) for p in self.pods.list() if p["metadata"].get("namespace") == ns):
            return True
        # the informer may not have seen a pod created just now: ask the API server, as upstream
        listed = await self.client.list("", "v1", "pods", ns)
        return any(uses_claim(p, name) for p in listed.get("items") or ())


class PVProtectionController(_Protection):
    name = "pv-protection"
    plural, finalizer = "persistentvolumes", PV_FINALIZER

    async def in_use(self, obj: dict) -> bool:
        return (obj.get("status") or {}).get("phase") == "Bound"

