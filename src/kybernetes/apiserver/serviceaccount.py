"""ServiceAccount admission (upstream plugin/pkg/admission/serviceaccount), mutating pods on create.

A pod without `serviceAccountName` gets `default`. Unless the pod (or else its account) sets
`automountServiceAccountToken: false`, every container and init container without a mount
at /var/run/secrets/kubernetes.io/serviceaccount gets one of a projected volume
`kube-api-access-<5 random characters>`: a bound token (`token`, 3607 s), the cluster CA
(`ca.crt` from the ConfigMap kube-root-ca.crt) and the namespace (`namespace`). A pod without
imagePullSecrets takes its account's. Mirror pods are left alone.

Unlike upstream, a pod whose account does not exist yet is not refused (the token request
fails on the node until the account exists).
"""

from __future__ import annotations

import random

from ..api.resources import ResourceType
from .watchcache import WatchCache

ACCOUNTS = "/registry/core/serviceaccounts/"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
TOKEN_EXPIRATION = 3607  # upstream's warn-only bound token expiration
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # utilrand's alphabet


def token_volume(name: str) -> dict:
    return {"name": name, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


def admit_pod(pod: dict, account: dict | None) -> None:
    meta, spec = pod.get("metadata") or {}, pod.get("spec")
    if not isinstance(spec, dict) or MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = "default"
    if account is not None and not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
        spec["imagePullSecrets"] = [dict(s) for s in account["imagePullSecrets"]]
    automount = spec.get("automountServiceAccountToken")
    if automount is None and account is not None:
        automount = account.get("automountServiceAccountToken")
    if automount is False:
        return
    volumes = spec.get("volumes") or []
    name = next((v.get("name") for v in volumes if str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    has_volume = name is not None
    if name is None:
        name = VOLUME_PREFIX + "".join(random.choice(_ALPHANUMS) for _ in range(5))
    needed = False
    for kind in ("initContainers", "containers"):
        for c in spec.get(kind) or ():
            if not isinstance(c, dict):
                continue
            mounts = c.get("volumeMounts") or []
            if any(m.get("mountPath") == MOUNT_PATH for m in mounts if isinstance(m, dict)):
                continue
            c["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": MOUNT_PATH}]
            needed = True
    if needed and not has_volume:
        spec["volumes"] = [*volumes, token_volume(name)]


class ServiceAccountAdmission:
    def __init__(self, cache: WatchCache):
        self.cache = cache

    def mutate_create(self, rt: ResourceType, obj: dict) -> None:
        if (rt.group, rt.plural) != ("", "pods"):
            return
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        ns, account = meta.get("namespace") or "", (spec.get("serviceAccountName") or "default")
        entry = self.cache.bucket(ACCOUNTS).store.get(f"{ACCOUNTS}{ns}/{account}")
        admit_pod(obj, entry.obj if entry is not None else None)
