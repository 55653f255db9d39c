"""A built-in local-path provisioner, after rancher's local-path-provisioner (as k3s ships it).

For a claim whose StorageClass names `rancher.io/local-path`, once the PV controller has
handed it over (`volume.kubernetes.io/storage-provisioner`) and the scheduler has chosen
its node (`volume.kubernetes.io/selected-node`), it creates the PersistentVolume
`pvc-<claim uid>`: a `hostPath` (DirectoryOrCreate) at
`<base>/pvc-<uid>_<namespace>_<name>` that only the selected node can use (node affinity
on `kubernetes.io/hostname`), pre-bound to the claim; the node's kubelet creates the
directory. The base path comes from the ConfigMap kube-system/local-path-config
(`config.json` `nodePathMap`, written by the API server's bootstrap), as rancher reads it.
Released volumes of reclaim policy Delete lose their directory and are deleted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from pathlib import Path

from ..client.events import NORMAL, WARNING, EventRecorder
from ..client.rest import ApiError
from .base import Controller
from .persistentvolume import (
    ANN_BETA_STORAGE_PROVISIONER,
    ANN_PROVISIONED_BY,
    ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER,
    claim_class,
    claim_ref,
)

log = logging.getLogger("kybernetes.localpath")

PROVISIONER = "rancher.io/local-path"
CONFIG_NAMESPACE, CONFIG_NAME = "kube-system", "local-path-config"
DEFAULT_NODE = "DEFAULT_PATH_FOR_NON_LISTED_NODES"
FALLBACK_PATH = "/opt/local-path-provisioner"
SUPPORTED_MODES = {"ReadWriteOnce", "ReadWriteOncePod"}


def base_path(config: dict | None, node: str) -> str:
    """The first path configured for the node (or for every node), as rancher's nodePathMap."""
    try:
        data = json.loads(((config or {}).get("data") or {}).get("config.json") or "{}")
    except ValueError:
        data = {}
    default = None
    for entry in data.get("nodePathMap") or ():
        paths = entry.get("paths") or []
        if entry.get("node") == node and paths:
            return paths[0]
        if entry.get("node") == DEFAULT_NODE and paths:
            default = paths[0]
    return default or FALLBACK_PATH


def volume_for(pvc: dict, sc: dict, node: str, base: str) -> dict:
    meta, spec = pvc["metadata"], pvc.get("spec") or {}
    name = f"pvc-{meta['uid']}"
    path = str(Path(base) / f"{name}_{meta['namespace']}_{meta['name']}")
    pv_spec = {
        "capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage")},
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
        "storageClassName": claim_class(pvc),
        "volumeMode": spec.get("volumeMode") or "Filesystem",
        "claimRef": claim_ref(pvc),
        "hostPath": {"path": path, "type": "DirectoryOrCreate"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
    }
    if sc.get("mountOptions"):
        pv_spec["mountOptions"] = list(sc["mountOptions"])
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {ANN_PROVISIONED_BY: PROVISIONER}}, "spec": pv_spec}


class LocalPathProvisioner(Controller):
    name = "local-path-provisioner"
    workers = 2

    def __init__(self, ctx):
        super().__init__(ctx)
        self.recorder = EventRecorder(self.client, PROVISIONER)
        self.pvcs = self.watch("", "v1", "persistentvolumeclaims",
                               lambda c: [f"pvc:{c['metadata']['namespace']}/{c['metadata']['name']}"])
        self.pvs = self.watch("", "v1", "persistentvolumes", lambda pv: [f"pv:{pv['metadata']['name']}"])
        self.classes = self.watch("storage.k8s.io", "v1", "storageclasses", lambda sc: [])

    async def reconcile(self, key: str) -> None:
        kind, _, name = key.partition(":")
        if kind == "pv":
            pv = self.pvs.get(name)
            if pv is not None:
                await self.maybe_delete(pv)
            return
        pvc = self.pvcs.get(name)
        if pvc is not None:
            await self.maybe_provision(pvc)

    async def _config(self) -> dict | None:
        try:
            return await self.client.get("", "v1", "configmaps", CONFIG_NAME, namespace=CONFIG_NAMESPACE)
        except ApiError as e:
            if e.code != 404:
                raise
            return None

    # --- provisioning -----------------------------------------------------------------------------
    def _should_provision(self, pvc: dict) -> dict | None:
        """The claim's StorageClass when this provisioner should make its volume."""
        meta, spec = pvc["metadata"], pvc.get("spec") or {}
        if meta.get("deletionTimestamp") or spec.get("volumeName"):
            return None
        ann = meta.get("annotations") or {}
        if PROVISIONER not in (ann.get(ANN_STORAGE_PROVISIONER), ann.get(ANN_BETA_STORAGE_PROVISIONER)):
            return None
        sc = self.classes.get(claim_class(pvc))
        if sc is None or sc.get("provisioner") != PROVISIONER:
            return None
        return sc

    async def maybe_provision(self, pvc: dict) -> None:
        sc = self._should_provision(pvc)
        if sc is None:
            return
        meta = pvc["metadata"]
        pv_name = f"pvc-{meta['uid']}"
        if self.pvs.get(pv_name) is not None:
            return
        where = f"{meta['namespace']}/{meta['name']}"
        node = (meta.get("annotations") or {}).get(ANN_SELECTED_NODE)
        failure = ""
        if not node:
            failure = "configuration error, no node was specified"
        elif not set(pvc["spec"].get("accessModes") or ()) <= SUPPORTED_MODES:
            failure = "Only support ReadWriteOnce access mode"
        elif (pvc["spec"].get("volumeMode") or "Filesystem") != "Filesystem":
            failure = "Only support Filesystem volume mode"
        if failure:
            self.recorder.event(pvc, WARNING, "ProvisioningFailed",
                                f'failed to provision volume with StorageClass "{sc["metadata"]["name"]}": {failure}')
            return
        self.recorder.event(pvc, NORMAL, "Provisioning",
                            f'External provisioner is provisioning volume for claim "{where}"')
        base = base_path(await self._config(), node)
        pv = volume_for(pvc, sc, node, base)
        try:
            await self.client.create("", "v1", "persistentvolumes", pv)
        except ApiError as e:
            if e.code != 409:
                self.recorder.event(pvc, WARNING, "ProvisioningFailed",
                                    f'failed to provision volume with StorageClass "{sc["metadata"]["name"]}": {e}')
                raise
        log.info("provisioned %s for %s on %s at %s", pv_name, where, node, pv["spec"]["hostPath"]["path"])
        self.recorder.event(pvc, NORMAL, "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}")

    # --- deletion ---------------------------------------------------------------------------------
    async def maybe_delete(self, pv: dict) -> None:
        meta, spec = pv["metadata"], pv.get("spec") or {}
        if (meta.get("annotations") or {}).get(ANN_PROVISIONED_BY) != PROVISIONER:
            return
        if (pv.get("status") or {}).get("phase") != "Released" or spec.get("persistentVolumeReclaimPolicy") != "Delete":
            return
        path = (spec.get("hostPath") or {}).get("path") or ""
        if path and Path(path).name.startswith(meta["name"] + "_"):
            # the directory is this machine's when the nodes run here (sim nodes, a one-node server)
            await asyncio.to_thread(shutil.rmtree, path, True)
        if not meta.get("deletionTimestamp"):  # one deleted while bound goes once its protection does
            try:
                await self.client.delete("", "v1", "persistentvolumes", meta["name"])
            except ApiError as e:
                if e.code != 404:
                    raise
        log.info("deleted volume %s and its directory %s", meta["name"], path)
