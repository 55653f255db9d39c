"""PersistentVolumeClaim strategy: the DefaultStorageClass admission step on create.

A claim created without `spec.storageClassName` (the field absent, not "") and without the
beta class annotation gets the StorageClass annotated
`storageclass.kubernetes.io/is-default-class: "true"`; with several defaults the newest wins,
as upstream's admission plugin picks. Status stays the PV controller's.
"""

from __future__ import annotations

from ..strategy import Strategy

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
STORAGE_CLASSES = "/registry/storage.k8s.io/storageclasses/"


def is_default_class(sc: dict) -> bool:
    ann = (sc.get("metadata") or {}).get("annotations") or {}
    return ann.get(DEFAULT_CLASS_ANNOTATION) == "true" or ann.get(BETA_DEFAULT_CLASS_ANNOTATION) == "true"


def default_class(classes: list[dict]) -> str | None:
    """The default StorageClass's name: newest first, then by name (upstream's tie-break)."""
    defaults = [sc for sc in classes if is_default_class(sc)]
    if not defaults:
        return None
    defaults.sort(key=lambda sc: (sc["metadata"].get("creationTimestamp") or "", sc["metadata"]["name"]),
                  reverse=True)
    return defaults[0]["metadata"]["name"]


class PersistentVolumeClaimStrategy(Strategy):
    tracks_generation = False
    cache = None  # the server's watch cache, set when the strategy is built

    def prepare_for_create(self, obj: dict) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"phase": "Pending"}
        spec = obj.setdefault("spec", {})
        annotations = obj["metadata"].get("annotations") or {}
        if "storageClassName" in spec or BETA_CLASS_ANNOTATION in annotations or self.cache is None:
            return
        bucket = self.cache.bucket(STORAGE_CLASSES)
        name = default_class([e.obj for e in bucket.store.values()])
        if name:
            spec["storageClassName"] = name
