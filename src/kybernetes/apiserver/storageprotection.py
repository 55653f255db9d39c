"""StorageObjectInUseProtection admission (upstream plugin/pkg/admission/storage/storageobjectinuseprotection).

A new PersistentVolumeClaim gets the finalizer `kubernetes.io/pvc-protection` and a new
PersistentVolume `kubernetes.io/pv-protection`: deleting one that is still in use only marks
it, and the protection controllers let it go once nothing uses it.
"""

from __future__ import annotations

from ..api.resources import ResourceType

FINALIZERS = {"persistentvolumeclaims": "kubernetes.io/pvc-protection",
              "persistentvolumes": "kubernetes.io/pv-protection"}


def add_protection_finalizer(rt: ResourceType, obj: dict) -> None:
    finalizer = FINALIZERS.get(rt.plural) if rt.group == "" else None
    if finalizer is None:
        return
    meta = obj["metadata"]
    finalizers = meta.get("finalizers")
    if finalizers is None:
        finalizers = []
    if isinstance(finalizers, list) and finalizer not in finalizers:
        meta["finalizers"] = [*finalizers, finalizer]
