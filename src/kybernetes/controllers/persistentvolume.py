"""The PersistentVolume binder (upstream `pkg/controller/volume/persistentvolume`, `pv_controller.go`).

Claims: an unbound claim gets the smallest Available volume that satisfies it (class,
access modes, volume mode, selector, capacity) or, failing one, waits for a provisioner
(annotations `volume.kubernetes.io/storage-provisioner`); claims of a WaitForFirstConsumer
class bind only volumes pre-bound to them (the scheduler or a provisioner sets claimRef
once the pod's node is chosen). Binding writes PV.spec.claimRef, the PV phase Bound,
PVC.spec.volumeName with `pv.kubernetes.io/bind-completed`, then the PVC phase Bound.
Volumes whose claim is gone become Released and are reclaimed by policy: Retain keeps
them, Delete deletes them (or leaves it to the provisioner named in
`pv.kubernetes.io/provisioned-by`), Recycle fails.
"""

from __future__ import annotations

import logging

from ..api.meta import rfc3339
from ..api.quantity import parse_quantity
from ..api.selectors import selector_matches
from ..client.events import NORMAL, WARNING, EventRecorder
from ..client.rest import ApiError
from .base import Controller, Requeue

log = logging.getLogger("kybernetes.persistentvolume")

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
NO_PROVISIONER = "kubernetes.io/no-provisioner"


def claim_class(pvc: dict) -> str:
    ann = pvc["metadata"].get("annotations") or {}
    if ANN_BETA_CLASS in ann:
        return ann[ANN_BETA_CLASS]
    return (pvc.get("spec") or {}).get("storageClassName") or ""


def volume_class(pv: dict) -> str:
    ann = pv["metadata"].get("annotations") or {}
    return ann.get(ANN_BETA_CLASS) or (pv.get("spec") or {}).get("storageClassName") or ""


def _storage(resources: dict | None):
    q = (resources or {}).get("storage")
    return parse_quantity(q) if q is not None else 0


def requested(pvc: dict):
    return _storage(((pvc.get("spec") or {}).get("resources") or {}).get("requests"))


def capacity(pv: dict):
    return _storage((pv.get("spec") or {}).get("capacity"))


def bound_to_claim(pv: dict, pvc: dict) -> bool:
    """claimRef names this claim (by namespace/name, and by uid when the ref has one)."""
    ref = (pv.get("spec") or {}).get("claimRef")
    if not ref:
        return False
    meta = pvc["metadata"]
    if (ref.get("namespace"), ref.get("name")) != (meta.get("namespace"), meta["name"]):
        return False
    return not ref.get("uid") or ref["uid"] == meta.get("uid")


def mismatch(pv: dict, pvc: dict) -> str:
    """Why the volume cannot satisfy the claim ("" when it can), as upstream's checkVolumeSatisfyClaim."""
    spec, cspec = pv.get("spec") or {}, pvc.get("spec") or {}
    if capacity(pv) < requested(pvc):
        return "requested PV is too small"
    if volume_class(pv) != claim_class(pvc):
        return "storageClassName does not match"
    if (spec.get("volumeMode") or "Filesystem") != (cspec.get("volumeMode") or "Filesystem"):
        return "incompatible volumeMode"
    if not set(cspec.get("accessModes") or ()) <= set(spec.get("accessModes") or ()):
        return "incompatible accessMode"
    return ""


def find_best_match(pvs: list[dict], pvc: dict, delayed: bool) -> dict | None:
    """A volume pre-bound to the claim, else the smallest Available one that fits (none when delayed)."""
    best = None
    for pv in pvs:
        if pv["metadata"].get("deletionTimestamp"):
            continue
        spec = pv.get("spec") or {}
        if bound_to_claim(pv, pvc):
            if capacity(pv) >= requested(pvc) and (spec.get("volumeMode") or "Filesystem") == (
                    (pvc.get("spec") or {}).get("volumeMode") or "Filesystem"):
                return pv
            continue
        if delayed or spec.get("claimRef") or (pv.get("status") or {}).get("phase") != "Available":
            continue
        selector = (pvc.get("spec") or {}).get("selector")
        if selector is not None and not selector_matches(selector, pv["metadata"].get("labels")):
            continue
        if mismatch(pv, pvc):
            continue
        if best is None or capacity(pv) < capacity(best):
            best = pv
    return best


def claim_ref(pvc: dict) -> dict:
    meta = pvc["metadata"]
    return {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": meta["namespace"],
            "name": meta["name"], "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}


def _claim_key(ref: dict) -> str:
    return f"pvc:{ref.get('namespace', '')}/{ref.get('name', '')}"


class PersistentVolumeController(Controller):
    name = "persistentvolume-binder"
    workers = 2

    def __init__(self, ctx):
        super().__init__(ctx)
        self.recorder = EventRecorder(self.client, "persistentvolume-controller")
        self.pvs = self.watch("", "v1", "persistentvolumes", self._volume_keys)
        self.pvcs = self.watch("", "v1", "persistentvolumeclaims", self._claim_keys)
        self.classes = self.watch("storage.k8s.io", "v1", "storageclasses", lambda sc: [])

    # --- events to keys ---------------------------------------------------------------------------
    def _volume_keys(self, pv: dict) -> list[str]:
        keys = [f"pv:{pv['metadata']['name']}"]
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref:
            keys.append(_claim_key(ref))
        elif (pv.get("status") or {}).get("phase") == "Available":
            # a volume became available: pending claims of its class may now bind
            cls = volume_class(pv)
            keys += [f"pvc:{c['metadata']['namespace']}/{c['metadata']['name']}" for c in self.pvcs.list()
                     if not (c.get("spec") or {}).get("volumeName") and claim_class(c) == cls]
        return keys

    def _claim_keys(self, pvc: dict) -> list[str]:
        meta = pvc["metadata"]
        keys = [f"pvc:{meta['namespace']}/{meta['name']}"]
        volume = (pvc.get("spec") or {}).get("volumeName")
        if volume:
            keys.append(f"pv:{volume}")
        keys += [f"pv:{pv['metadata']['name']}" for pv in self.pvs.list() if bound_to_claim(pv, pvc)]
        return keys

    async def reconcile(self, key: str) -> None:
        try:
            await self._sync(key)
        except ApiError as e:
            if e.code != 409:
                raise
            raise Requeue(0.3) from None  # our cache had not seen our own last write yet

    async def _sync(self, key: str) -> None:
        kind, _, name = key.partition(":")
        if kind == "pv":
            pv = self.pvs.get(name)
            if pv is not None:
                await self.sync_volume(pv)
        else:
            pvc = self.pvcs.get(name)
            if pvc is not None and not pvc["metadata"].get("deletionTimestamp"):
                await self.sync_claim(pvc)

    # --- claims -----------------------------------------------------------------------------------
    async def sync_claim(self, pvc: dict) -> None:
        if (pvc["metadata"].get("annotations") or {}).get(ANN_BIND_COMPLETED):
            await self.sync_bound_claim(pvc)
        else:
            await self.sync_unbound_claim(pvc)

    def _delayed(self, pvc: dict) -> bool:
        name = claim_class(pvc)
        sc = self.classes.get(name) if name else None
        return bool(sc and sc.get("volumeBindingMode") == "WaitForFirstConsumer")

    async def sync_unbound_claim(self, pvc: dict) -> None:
        volume_name = (pvc.get("spec") or {}).get("volumeName")
        if not volume_name:
            delayed = self._delayed(pvc)
            pv = find_best_match(self.pvs.list(), pvc, delayed)
            if pv is not None:
                await self.bind(pv, pvc)
                return
            ann = pvc["metadata"].get("annotations") or {}
            if delayed and ANN_SELECTED_NODE not in ann:
                self.recorder.event(pvc, NORMAL, "WaitForFirstConsumer",
                                    "waiting for first consumer to be created before binding")
            elif not claim_class(pvc):
                self.recorder.event(pvc, NORMAL, "FailedBinding",
                                    "no persistent volumes available for this claim and no storage class is set")
            else:
                pvc = await self.provision_claim(pvc)
            await self.set_claim_phase(pvc, "Pending")
            return
        pv = self.pvs.get(volume_name)
        if pv is None:
            await self.set_claim_phase(pvc, "Pending")
            return
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref is None:
            why = mismatch(pv, pvc)
            if why:
                self.recorder.event(pvc, WARNING, "VolumeMismatch",
                                    f'Cannot bind to requested volume "{volume_name}": {why}')
                await self.set_claim_phase(pvc, "Pending")
                return
            await self.bind(pv, pvc)
        elif bound_to_claim(pv, pvc):
            await self.bind(pv, pvc)
        else:
            self.recorder.event(pvc, WARNING, "FailedBinding",
                                f'volume "{volume_name}" already bound to a different claim.')
            await self.set_claim_phase(pvc, "Pending")

    async def provision_claim(self, pvc: dict) -> dict:
        """Hand the claim to its class's provisioner: the annotations external provisioners watch for."""
        class_name = claim_class(pvc)
        sc = self.classes.get(class_name)
        if sc is None:
            self.recorder.event(pvc, WARNING, "ProvisioningFailed",
                                f'storageclass.storage.k8s.io "{class_name}" not found')
            return pvc
        provisioner = sc.get("provisioner") or ""
        if provisioner == NO_PROVISIONER:
            self.recorder.event(pvc, NORMAL, "FailedBinding",
                                "no persistent volumes available for this claim and no storage class is set")
            return pvc
        ann = pvc["metadata"].get("annotations") or {}
        if ann.get(ANN_STORAGE_PROVISIONER) != provisioner or ann.get(ANN_BETA_STORAGE_PROVISIONER) != provisioner:
            meta = pvc["metadata"]
            pvc = await self.client.patch("", "v1", "persistentvolumeclaims", meta["name"], {"metadata": {
                "annotations": {ANN_STORAGE_PROVISIONER: provisioner, ANN_BETA_STORAGE_PROVISIONER: provisioner}}},
                namespace=meta["namespace"])
        self.recorder.event(
            pvc, NORMAL, "ExternalProvisioning",
            f"Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually "
            "by the system administrator. If volume creation is delayed, please verify that the provisioner "
            "is running and correctly registered.")
        return pvc

    async def sync_bound_claim(self, pvc: dict) -> None:
        volume_name = (pvc.get("spec") or {}).get("volumeName")
        if not volume_name:
            await self._lose(pvc, "ClaimLost", "Bound claim has lost reference to PersistentVolume. Data on the "
                             "volume is lost!")
            return
        pv = self.pvs.get(volume_name)
        if pv is None:
            await self._lose(pvc, "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
            return
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref is None or ref.get("uid") == pvc["metadata"].get("uid"):
            await self.bind(pv, pvc)
        else:
            await self._lose(pvc, "ClaimMisbound", "Two claims are bound to the same volume, this one is bound "
                             "incorrectly")

    async def _lose(self, pvc: dict, reason: str, message: str) -> None:
        if (pvc.get("status") or {}).get("phase") != "Lost":
            self.recorder.event(pvc, WARNING, reason, message)
        await self.set_claim_phase(pvc, "Lost")

    # --- binding ----------------------------------------------------------------------------------
    async def bind(self, pv: dict, pvc: dict) -> None:
        """The four steps of upstream's bind: PV claimRef, PV phase, PVC volumeName, PVC phase."""
        pv_name = pv["metadata"]["name"]
        ref = (pv.get("spec") or {}).get("claimRef")
        if not ref or ref.get("uid") != pvc["metadata"].get("uid"):
            body = {"spec": {"claimRef": claim_ref(pvc)}}
            if not bound_to_claim(pv, pvc):
                body["metadata"] = {"annotations": {ANN_BOUND_BY_CONTROLLER: "yes"}}
            body["metadata"] = dict(body.get("metadata") or {}, resourceVersion=pv["metadata"]["resourceVersion"])
            pv = await self.client.patch("", "v1", "persistentvolumes", pv_name, body)
        pv = await self.set_volume_phase(pv, "Bound")
        meta = pvc["metadata"]
        ann = meta.get("annotations") or {}
        if (pvc.get("spec") or {}).get("volumeName") != pv_name or ann.get(ANN_BIND_COMPLETED) != "yes":
            new_ann = {ANN_BIND_COMPLETED: "yes"}
            if (pvc.get("spec") or {}).get("volumeName") != pv_name:
                new_ann[ANN_BOUND_BY_CONTROLLER] = "yes"
            pvc = await self.client.patch("", "v1", "persistentvolumeclaims", meta["name"], {
                "metadata": {"annotations": new_ann, "resourceVersion": meta["resourceVersion"]},
                "spec": {"volumeName": pv_name}}, namespace=meta["namespace"])
        spec = pv.get("spec") or {}
        status = pvc.get("status") or {}
        want = {"phase": "Bound", "accessModes": spec.get("accessModes") or [],
                "capacity": dict(spec.get("capacity") or {})}
        if any(status.get(k) != v for k, v in want.items()):
            await self.client.patch("", "v1", "persistentvolumeclaims", meta["name"], {"status": want},
                                    namespace=meta["namespace"], subresource="status")

    async def set_claim_phase(self, pvc: dict, phase: str) -> dict:
        if (pvc.get("status") or {}).get("phase") == phase:
            return pvc
        meta = pvc["metadata"]
        status: dict = {"phase": phase}
        if phase == "Lost":
            status.update(accessModes=None, capacity=None)
        return await self.client.patch("", "v1", "persistentvolumeclaims", meta["name"], {"status": status},
                                       namespace=meta["namespace"], subresource="status")

    async def set_volume_phase(self, pv: dict, phase: str, message: str = "") -> dict:
        status = pv.get("status") or {}
        if status.get("phase") == phase and (status.get("message") or "") == message:
            return pv
        body = {"status": {"phase": phase, "message": message or None, "lastPhaseTransitionTime": rfc3339()}}
        return await self.client.patch("", "v1", "persistentvolumes", pv["metadata"]["name"], body,
                                       subresource="status")

    # --- volumes ----------------------------------------------------------------------------------
    async def sync_volume(self, pv: dict) -> None:
        # a volume being deleted is still synced (upstream's too): it waits on its pv-protection
        # finalizer, which goes once it is no longer Bound, so its claim's going must release it
        spec = pv.get("spec") or {}
        ref = spec.get("claimRef")
        if not ref or not ref.get("uid"):
            await self.set_volume_phase(pv, "Available")
            if ref:
                self.queue.add(_claim_key(ref))
            return
        claim = await self._claim_of(ref)
        if claim is None:
            phase = (pv.get("status") or {}).get("phase")
            if phase not in ("Released", "Failed"):
                pv = await self.set_volume_phase(pv, "Released")
            await self.reclaim(pv)
            return
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if not volume_name:
            self.queue.add(_claim_key(ref))  # binding half done: the claim's sync completes it
        elif volume_name == pv["metadata"]["name"]:
            await self.set_volume_phase(pv, "Bound")
        else:
            await self.unbind(pv)

    async def _claim_of(self, ref: dict) -> dict | None:
        """The claim the ref names, checked against the server before declaring it gone."""
        claim = self.pvcs.get(f"{ref.get('namespace')}/{ref.get('name')}")
        if claim is None:
            try:
                claim = await self.client.get("", "v1", "persistentvolumeclaims", ref.get("name"),
                                              namespace=ref.get("namespace"))
            except ApiError as e:
                if e.code != 404:
                    raise
                return None
        return claim if claim["metadata"].get("uid") == ref.get("uid") else None

    async def unbind(self, pv: dict) -> None:
        """The claim is bound elsewhere: drop our side (keep a user's pre-binding by name)."""
        ann = pv["metadata"].get("annotations") or {}
        if ann.get(ANN_BOUND_BY_CONTROLLER):
            body = {"metadata": {"annotations": {ANN_BOUND_BY_CONTROLLER: None}}, "spec": {"claimRef": None}}
        else:
            body = {"spec": {"claimRef": {"uid": None, "resourceVersion": None}}}
        pv = await self.client.patch("", "v1", "persistentvolumes", pv["metadata"]["name"], body)
        await self.set_volume_phase(pv, "Available")

    async def reclaim(self, pv: dict) -> None:
        policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Retain"
        name = pv["metadata"]["name"]
        if policy == "Retain":
            return
        if policy == "Recycle":
            if (pv.get("status") or {}).get("phase") != "Failed":
                self.recorder.event(pv, WARNING, "VolumeFailedRecycle", "No recycler plugin found for the volume!")
                await self.set_volume_phase(pv, "Failed", "No recycler plugin found for the volume!")
            return
        if (pv["metadata"].get("annotations") or {}).get(ANN_PROVISIONED_BY):
            return  # the external provisioner that made it deletes it
        if pv["metadata"].get("deletionTimestamp"):
            return  # deleted already; its finalizer goes now that it is Released
        try:
            await self.client.delete("", "v1", "persistentvolumes", name)
        except ApiError as e:
            if e.code != 404:
                raise
        log.info("deleted released volume %s", name)
