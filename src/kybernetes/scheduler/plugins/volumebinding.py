"""VolumeBinding: pods using PersistentVolumeClaims.

Bound claims need their PersistentVolume's node affinity to match the node. Unbound claims of a
WaitForFirstConsumer StorageClass get a matching available PV (its claimRef is set in PreBind) or,
failing one, are left to dynamic provisioning on the chosen node (annotation
`volume.kubernetes.io/selected-node` in PreBind). An unbound claim of an Immediate class makes
the pod unschedulable until the PV controller binds it. PreBind does not wait for the binding to
complete, unlike upstream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ...api.quantity import int_value
from ...api.selectors import selector_matches
from ..framework import OK, CycleState, NodeInfo, Plugin, Status
from .helpers import node_selector_matches

log = logging.getLogger("kybernetes.scheduler")

ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
ERR_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
NO_PROVISIONER = "kubernetes.io/no-provisioner"


@dataclass
class _State:
    bound_pvs: list[dict] = field(default_factory=list)
    delayed: list[tuple[dict, dict]] = field(default_factory=list)  # (pvc, storage class)
    per_node: dict[str, tuple[list, list]] = field(default_factory=dict)  # node -> (static binds, provisions)
    chosen: tuple[list, list] | None = None


def pod_claim_names(pod: dict) -> list[str]:
    name = (pod.get("metadata") or {}).get("name", "")
    out = []
    for v in (pod.get("spec") or {}).get("volumes") or ():
        if v.get("persistentVolumeClaim"):
            out.append(v["persistentVolumeClaim"].get("claimName", ""))
        elif v.get("ephemeral"):
            out.append(f"{name}-{v.get('name', '')}")
    return out


def _class_of(pvc: dict) -> str:
    ann = (pvc.get("metadata") or {}).get("annotations") or {}
    return (pvc.get("spec") or {}).get("storageClassName") or ann.get("volume.beta.kubernetes.io/storage-class") or ""


def _storage(obj_resources: dict | None) -> int:
    q = (obj_resources or {}).get("storage")
    return int_value(q) if q is not None else 0


def pv_matches_claim(pv: dict, pvc: dict, node: dict) -> bool:
    spec, cspec = pv.get("spec") or {}, pvc.get("spec") or {}
    meta, cmeta = pv.get("metadata") or {}, pvc.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    ref = spec.get("claimRef")
    if ref and (ref.get("namespace"), ref.get("name")) != (cmeta.get("namespace"), cmeta.get("name")):
        return False
    if not ref and (pv.get("status") or {}).get("phase", "Available") != "Available":
        return False
    if (spec.get("storageClassName") or "") != _class_of(pvc):
        return False
    if (spec.get("volumeMode") or "Filesystem") != (cspec.get("volumeMode") or "Filesystem"):
        return False
    if not set(cspec.get("accessModes") or ()) <= set(spec.get("accessModes") or ()):
        return False
    if _storage(spec.get("capacity")) < _storage((cspec.get("resources") or {}).get("requests")):
        return False
    if cspec.get("selector") is not None and not selector_matches(cspec["selector"], meta.get("labels")):
        return False
    return node_selector_matches(((spec.get("nodeAffinity") or {}).get("required")), node)


def topology_allowed(sc: dict, node: dict) -> bool:
    terms = sc.get("allowedTopologies") or []
    if not terms:
        return True
    labels = (node.get("metadata") or {}).get("labels") or {}
    return any(all(labels.get(e.get("key")) in (e.get("values") or ()) for e in t.get("matchLabelExpressions") or ())
               for t in terms)


class VolumeBinding(Plugin):
    def pre_filter(self, state: CycleState, pod: dict, nodes):
        names = pod_claim_names(pod)
        if not names:
            return None, Status.skip()
        ns = (pod.get("metadata") or {}).get("namespace", "")
        s = _State()
        immediate = False
        for name in names:
            pvc = self.handle.get("persistentvolumeclaims", f"{ns}/{name}")
            if pvc is None:
                return None, Status.unresolvable(f'persistentvolumeclaim "{name}" not found')
            if (pvc.get("metadata") or {}).get("deletionTimestamp"):
                return None, Status.unresolvable(f'persistentvolumeclaim "{name}" is being deleted')
            volume = (pvc.get("spec") or {}).get("volumeName")
            if volume:
                pv = self.handle.get("persistentvolumes", volume)
                if pv is None:
                    return None, Status.unresolvable(f'persistentvolume "{volume}" not found')
                s.bound_pvs.append(pv)
                continue
            class_name = _class_of(pvc)
            sc = self.handle.get("storageclasses", class_name) if class_name else None
            if class_name and sc is None:
                return None, Status.unresolvable(f'storageclass.storage.k8s.io "{class_name}" not found')
            if sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer":
                s.delayed.append((pvc, sc))
            else:
                immediate = True
        if immediate:
            return None, Status.unresolvable(ERR_UNBOUND_IMMEDIATE)
        state.write(self.name, s)
        return None, OK

    def filter(self, state: CycleState, pod: dict, node_info: NodeInfo) -> Status:
        s: _State | None = state.read(self.name)
        if s is None:
            return OK
        node = node_info.node or {}
        reasons = []
        for pv in s.bound_pvs:
            required = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required")
            if not node_selector_matches(required, node):
                reasons.append(ERR_NODE_CONFLICT)
                break
        static, provision = [], []
        taken: set[str] = set()
        pvs = sorted(self.handle.listers["persistentvolumes"].list(), key=lambda p: _storage(
            (p.get("spec") or {}).get("capacity"))) if s.delayed and "persistentvolumes" in self.handle.listers else []
        for pvc, sc in s.delayed:
            pv = next((p for p in pvs if p["metadata"]["name"] not in taken and pv_matches_claim(p, pvc, node)), None)
            if pv is not None:
                taken.add(pv["metadata"]["name"])
                static.append((pvc, pv))
            elif sc.get("provisioner") != NO_PROVISIONER and topology_allowed(sc, node):
                provision.append(pvc)
            else:
                reasons.append(ERR_BIND_CONFLICT)
                break
        if reasons:
            return Status.unresolvable(*reasons)
        s.per_node[node_info.name] = (static, provision)
        return OK

    def reserve(self, state: CycleState, pod: dict, node_name: str) -> Status:
        s: _State | None = state.read(self.name)
        if s is not None:
            s.chosen = s.per_node.get(node_name)
        return OK

    def unreserve(self, state: CycleState, pod: dict, node_name: str) -> None:
        s: _State | None = state.read(self.name)
        if s is not None:
            s.chosen = None

    async def pre_bind(self, state: CycleState, pod: dict, node_name: str) -> Status:
        s: _State | None = state.read(self.name)
        if s is None or not s.chosen:
            return OK
        client = self.handle.client
        static, provision = s.chosen
        try:
            for pvc, pv in static:
                meta = pvc["metadata"]
                ref = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                       "name": meta["name"], "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
                await client.patch("", "v1", "persistentvolumes", pv["metadata"]["name"], {"spec": {"claimRef": ref}})
            for pvc in provision:
                meta = pvc["metadata"]
                await client.patch("", "v1", "persistentvolumeclaims", meta["name"],
                                   {"metadata": {"annotations": {SELECTED_NODE: node_name}}},
                                   namespace=meta["namespace"])
        except Exception as e:  # an API failure is an error status for this cycle, not a crash
            return Status.error(f"binding volumes: {e}")
        return OK
