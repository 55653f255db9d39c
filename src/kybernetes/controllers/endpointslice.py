"""EndpointSlices: the endpoints of every Service with a selector, in slices of at most 100 (upstream endpointslice).

Each selected pod with an IP is an endpoint with conditions ready/serving/terminating,
targetRef, nodeName and hostname; endpoints whose resolved ports differ go to different
slices. Slices carry kubernetes.io/service-name and the managed-by label, and are
owned by the Service. Endpoints stay in the slice they are in while they exist, new
ones fill slices with room before a new slice is made, so updates touch few slices. A
Service without endpoints keeps one empty placeholder slice.
"""

from __future__ import annotations

from ..client.rest import ApiError
from .base import Controller, Requeue
from .endpoints import (
    NS_INDEX,
    is_managed_service,
    pod_hostname,
    pod_ip,
    pod_ports,
    pod_ready,
    selects,
    service_labels,
    should_include,
    target_ref,
    watch_services_and_pods,
)

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
SVC_INDEX = "service"


def _svc_index(sl: dict) -> list[str]:
    labels = sl["metadata"].get("labels") or {}
    if labels.get(MANAGED_BY) != CONTROLLER_NAME or not labels.get(SERVICE_NAME):
        return []
    return [f"{sl['metadata'].get('namespace', '')}/{labels[SERVICE_NAME]}"]


def _ports_key(ports) -> tuple:
    return tuple(sorted((p.get("name") or "", p.get("port"), p.get("protocol") or "TCP") for p in ports or ()))


def desired_endpoints(svc: dict, pods: list[dict]) -> dict[tuple, tuple[list[dict], dict[str, dict]]]:
    """ports key -> (ports, {pod uid: endpoint})."""
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    out: dict[tuple, tuple[list[dict], dict[str, dict]]] = {}
    for pod in pods:
        if not selects(svc, pod) or not should_include(pod, True):
            continue
        serving = pod_ready(pod)
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        ep = {"addresses": [pod_ip(pod)],
              "conditions": {"ready": publish or (serving and not terminating), "serving": serving,
                             "terminating": terminating},
              "targetRef": target_ref(pod)}
        if pod_hostname(svc, pod):
            ep["hostname"] = pod_hostname(svc, pod)
        if (pod.get("spec") or {}).get("nodeName"):
            ep["nodeName"] = pod["spec"]["nodeName"]
        ports = pod_ports(svc, pod)
        out.setdefault(_ports_key(ports), (ports, {}))[1][pod["metadata"]["uid"]] = ep
    return out


def _uid(ep: dict) -> str:
    return (ep.get("targetRef") or {}).get("uid") or ",".join(ep.get("addresses") or ())


def _sorted(eps: list[dict]) -> list[dict]:
    return sorted(eps, key=lambda e: (e["addresses"][0] if e.get("addresses") else "", _uid(e)))


class EndpointSliceController(Controller):
    name = "endpointslice"
    workers = 2

    def __init__(self, ctx):
        super().__init__(ctx)
        opts = getattr(ctx, "options", None) or {}
        self.max_per_slice = int(opts.get("max_endpoints_per_slice") or 100)
        self.services, self.pods = watch_services_and_pods(self)
        self.slices = self.watch("discovery.k8s.io", "v1", "endpointslices", _svc_index)
        if SVC_INDEX not in self.slices.indexers:
            self.slices.add_indexer(SVC_INDEX, _svc_index)
        # upstream's endpointSliceTracker: our writes per Service, slice name -> resourceVersion ("" deleted),
        # so a reconcile never acts on a cache that has not seen them yet
        self.written: dict[str, dict[str, str]] = {}

    def _cache_is_behind(self, key: str) -> bool:
        namespace = key.split("/", 1)[0]
        for name, rv in (self.written.get(key) or {}).items():
            cached = self.slices.get(f"{namespace}/{name}")
            if not rv:
                if cached is not None:
                    return True
            elif cached is None or int(cached["metadata"]["resourceVersion"]) < int(rv):
                return True
        self.written.pop(key, None)
        return False

    def _slice(self, svc: dict, ports: list[dict], endpoints: list[dict], address_type: str) -> dict:
        meta = svc["metadata"]
        labels = {**service_labels(svc), SERVICE_NAME: meta["name"], MANAGED_BY: CONTROLLER_NAME}
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"generateName": f"{meta['name']}-", "namespace": meta["namespace"], "labels": labels,
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": meta["name"],
                                                  "uid": meta["uid"], "controller": True,
                                                  "blockOwnerDeletion": True}]},
                "addressType": address_type, "endpoints": _sorted(endpoints), "ports": ports}

    async def reconcile(self, key: str) -> None:
        namespace, _ = key.split("/", 1)
        if self._cache_is_behind(key):
            raise Requeue(0.05)
        svc = self.services.get(key)
        existing = sorted(self.slices.by_index(SVC_INDEX, key), key=lambda s: s["metadata"]["name"])
        if svc is None or not is_managed_service(svc):
            for sl in existing if svc is None else ():
                await self._delete(sl, self.written.setdefault(key, {}))
            return
        families = (svc.get("spec") or {}).get("ipFamilies") or ["IPv4"]
        address_type = "IPv6" if families[0] == "IPv6" else "IPv4"
        pods = [p for p in self.pods.by_index(NS_INDEX, namespace) if (":" in pod_ip(p)) == (address_type == "IPv6")]
        wanted = desired_endpoints(svc, pods) or {(): ([], {})}  # a placeholder slice when nothing is selected
        keep: list[tuple[dict, dict]] = []  # (existing slice, desired slice)
        create: list[dict] = []
        unused = list(existing)
        for pkey, (ports, eps) in wanted.items():
            left = dict(eps)
            mine = [s for s in unused if _ports_key(s.get("ports")) == pkey and s.get("addressType") == address_type]
            for sl in mine:
                unused.remove(sl)
                kept = [left.pop(_uid(e)) for e in sl.get("endpoints") or () if _uid(e) in left]
                keep.append((sl, self._slice(svc, ports, kept, address_type)))
            pending = list(_sorted(list(left.values())))
            for _, desired in keep:
                if _ports_key(desired["ports"]) != pkey:
                    continue
                room = self.max_per_slice - len(desired["endpoints"])
                if room > 0 and pending:
                    desired["endpoints"] = _sorted(desired["endpoints"] + pending[:room])
                    pending = pending[room:]
            while pending:
                create.append(self._slice(svc, ports, pending[:self.max_per_slice], address_type))
                pending = pending[self.max_per_slice:]
        placeholder = not any(eps for _, eps in wanted.values())
        if placeholder and not keep and not create:
            create.append(self._slice(svc, [], [], address_type))
        # slices that lost every endpoint go; a Service without endpoints keeps one placeholder
        for sl, desired in list(keep):
            if not desired["endpoints"] and (not placeholder or keep[0][0] is not sl):
                keep.remove((sl, desired))
                unused.append(sl)
        written = self.written.setdefault(key, {})
        try:
            for sl, desired in keep:
                await self._update(sl, desired, written)
            for desired in create:
                made = await self.client.create("discovery.k8s.io", "v1", "endpointslices", desired, namespace)
                written[made["metadata"]["name"]] = made["metadata"]["resourceVersion"]
            for sl in unused:
                await self._delete(sl, written)
        except ApiError as e:
            if e.code == 409:
                raise Requeue(0.1) from None
            raise

    async def _update(self, current: dict, desired: dict, written: dict) -> None:
        same = (_sorted(current.get("endpoints") or []) == desired["endpoints"]
                and (current.get("ports") or []) == desired["ports"]
                and (current["metadata"].get("labels") or {}) == desired["metadata"]["labels"])
        if same:
            return
        meta = {k: v for k, v in current["metadata"].items() if k != "managedFields"}
        meta["labels"] = desired["metadata"]["labels"]
        meta["ownerReferences"] = desired["metadata"]["ownerReferences"]
        body = {**desired, "metadata": meta}
        done = await self.client.update("discovery.k8s.io", "v1", "endpointslices", body, meta["namespace"])
        written[meta["name"]] = done["metadata"]["resourceVersion"]

    async def _delete(self, sl: dict, written: dict) -> None:
        meta = sl["metadata"]
        written[meta["name"]] = ""
        try:
            await self.client.delete("discovery.k8s.io", "v1", "endpointslices", meta["name"], meta["namespace"])
        except ApiError as e:
            if e.code != 404:
                raise
