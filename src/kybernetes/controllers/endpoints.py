"""Endpoints: for every Service with a selector, the addresses of the pods it selects (upstream endpoint controller).

Ready pods go to `addresses`, the others to `notReadyAddresses` (all to `addresses`
with `publishNotReadyAddresses`); pods without an IP, terminated or being deleted are
left out. Ports are the Service's, with named `targetPort`s resolved in each pod, and
addresses with the same ports share a subset. The `kubernetes` Service is the API
server's own. The helpers here serve the EndpointSlice controller too.
"""

from __future__ import annotations

from ..client.informer import meta_key
from ..client.rest import ApiError
from .base import Controller, Requeue

NS_INDEX = "namespace"
MAX_ADDRESSES = 1000
HEADLESS_LABEL = "service.kubernetes.io/headless"


def _ns_index(obj: dict) -> list[str]:
    return [obj["metadata"].get("namespace", "")]


def watch_services_and_pods(ctrl: Controller):
    """Services queue themselves; a pod queues every Service of its namespace selecting it (before or after)."""
    services = ctrl.watch("", "v1", "services")
    pods = ctrl.watch("", "v1", "pods", lambda pod: [])
    for inf in (services, pods):
        if NS_INDEX not in inf.indexers:
            inf.add_indexer(NS_INDEX, _ns_index)

    def enqueue(*objs):
        keys = set()
        for pod in objs:
            for svc in services.by_index(NS_INDEX, pod["metadata"].get("namespace", "")):
                if selects(svc, pod):
                    keys.add(meta_key(svc))
        for k in keys:
            ctrl.queue.add(k)

    pods.add_handler(enqueue, enqueue, enqueue)
    return services, pods


def is_managed_service(svc: dict) -> bool:
    meta = svc["metadata"]
    if meta.get("namespace") == "default" and meta.get("name") == "kubernetes":
        return False
    return bool((svc.get("spec") or {}).get("selector"))


def selects(svc: dict, pod: dict) -> bool:
    selector = (svc.get("spec") or {}).get("selector") or {}
    if not selector:
        return False
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def pod_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def pod_ip(pod: dict) -> str:
    return (pod.get("status") or {}).get("podIP") or ""


def should_include(pod: dict, include_terminating: bool) -> bool:
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") or not pod_ip(pod):
        return False
    return include_terminating or not pod["metadata"].get("deletionTimestamp")


def resolve_port(svc_port: dict, pod: dict) -> int | None:
    """The pod's port for a Service port: a number as is, a name looked up among its containers' ports."""
    target = svc_port.get("targetPort")
    if target is None or target == "" or target == 0:
        return int(svc_port["port"])
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    protocol = svc_port.get("protocol") or "TCP"
    for c in (pod.get("spec") or {}).get("containers") or ():
        for p in c.get("ports") or ():
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                return int(p["containerPort"])
    return None


def pod_ports(svc: dict, pod: dict) -> list[dict]:
    out = []
    for sp in (svc.get("spec") or {}).get("ports") or ():
        port = resolve_port(sp, pod)
        if port is None:
            continue
        entry = {"name": sp.get("name") or "", "port": port, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            entry["appProtocol"] = sp["appProtocol"]
        out.append(entry)
    return out


def target_ref(pod: dict) -> dict:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"], "uid": meta["uid"]}


def pod_hostname(svc: dict, pod: dict) -> str:
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
        return spec["hostname"]
    return ""


def service_labels(svc: dict) -> dict:
    labels = dict(svc["metadata"].get("labels") or {})
    if (svc.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels


def endpoint_subsets(svc: dict, pods: list[dict]) -> list[dict]:
    tolerate_unready = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    headless = (svc.get("spec") or {}).get("clusterIP") == "None"
    groups: dict[tuple, dict] = {}
    for pod in pods:
        if not selects(svc, pod) or not should_include(pod, tolerate_unready):
            continue
        ports = pod_ports(svc, pod)
        if not ports and not headless:
            continue
        addr = {"ip": pod_ip(pod), "targetRef": target_ref(pod)}
        if (pod.get("spec") or {}).get("nodeName"):
            addr["nodeName"] = pod["spec"]["nodeName"]
        if pod_hostname(svc, pod):
            addr["hostname"] = pod_hostname(svc, pod)
        key = tuple(sorted((p["name"], p["port"], p["protocol"]) for p in ports))
        group = groups.setdefault(key, {"addresses": [], "notReadyAddresses": [], "ports": ports})
        group["addresses" if tolerate_unready or pod_ready(pod) else "notReadyAddresses"].append(addr)
    subsets = []
    for key in sorted(groups):
        g = groups[key]
        subset = {}
        for field in ("addresses", "notReadyAddresses"):
            if g[field]:
                subset[field] = sorted(g[field], key=lambda a: (a["ip"], a["targetRef"]["name"]))
        if g["ports"]:
            subset["ports"] = [{k: v for k, v in p.items() if v != "" or k != "name"} for p in g["ports"]]
        subsets.append(subset)
    return subsets


class EndpointsController(Controller):
    name = "endpoint"
    workers = 2

    def __init__(self, ctx):
        super().__init__(ctx)
        self.services, self.pods = watch_services_and_pods(self)
        self.endpoints = self.watch("", "v1", "endpoints")

    async def reconcile(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        svc = self.services.get(key)
        current = self.endpoints.get(key)
        if svc is None:
            if current is not None and not (namespace == "default" and name == "kubernetes"):
                try:
                    await self.client.delete("", "v1", "endpoints", name, namespace)
                except ApiError as e:
                    if e.code != 404:
                        raise
            return
        if not is_managed_service(svc):
            return
        subsets = endpoint_subsets(svc, self.pods.by_index(NS_INDEX, namespace))
        labels = service_labels(svc)
        if current is not None and (current.get("subsets") or []) == subsets and \
                (current["metadata"].get("labels") or {}) == labels:
            return
        body = {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": namespace, "labels": labels}, "subsets": subsets}
        if current is None:
            try:
                await self.client.create("", "v1", "endpoints", body, namespace)
                return
            except ApiError as e:
                if e.code != 409:
                    raise
                current = await self.client.get("", "v1", "endpoints", name, namespace)
        body["metadata"] = {**current["metadata"], "labels": labels}
        body["metadata"].pop("managedFields", None)
        try:
            await self.client.update("", "v1", "endpoints", body, namespace)
        except ApiError as e:
            if e.code == 409:  # our cache is behind: look again when it caught up
                raise Requeue(0.1) from None
            raise
