"""ServiceLB: addresses for LoadBalancer Services, after k3s's ServiceLB (klipper-lb).

k3s runs a DaemonSet of port-forwarding pods per LoadBalancer Service and publishes the
addresses of the nodes that run them. Here every node's proxy already accepts traffic for
load balancer ingress addresses (KUBE-EXT chains, or userspace listeners), so the controller
only publishes addresses:
- without a pool: the ExternalIP (else InternalIP) of every Ready node, sorted;
- with `--service-lb-pool` (a CIDR or FIRST-LAST range): one address of the pool per
  Service, kept for the Service's life (`spec.loadBalancerIP` is honoured when free).
Services with a `spec.loadBalancerClass` belong to another implementation and are left alone;
a Service that stops being a LoadBalancer loses its ingress.
"""

from __future__ import annotations

import ipaddress
import logging

from ..client.informer import meta_key
from .base import Controller

log = logging.getLogger("kybernetes.controllers.servicelb")


def parse_pool(text: str) -> list[str]:
    """'10.0.0.0/29' or '10.0.0.10-10.0.0.20' -> the usable addresses, in order."""
    text = (text or "").strip()
    if not text:
        return []
    if "-" in text:
        first, last = (ipaddress.ip_address(x.strip()) for x in text.split("-", 1))
        return [str(ipaddress.ip_address(i)) for i in range(int(first), int(last) + 1)]
    net = ipaddress.ip_network(text, strict=False)
    return [str(ip) for ip in (net.hosts() if net.num_addresses > 2 else net)]


def node_addresses(nodes: list[dict]) -> list[str]:
    out = set()
    for node in nodes:
        st = node.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or ())
        if not ready or (node.get("spec") or {}).get("unschedulable"):
            continue
        addrs = {a.get("type"): a.get("address") for a in st.get("addresses") or ()}
        ip = addrs.get("ExternalIP") or addrs.get("InternalIP")
        if ip:
            out.add(ip)
    return sorted(out, key=lambda a: ipaddress.ip_address(a))


def _ingress_ips(svc: dict) -> list[str]:
    return [i.get("ip") for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
            if i.get("ip")]


def is_ours(svc: dict) -> bool:
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def pool_address(svc: dict, services: list[dict], pool: list[str]) -> str:
    """The pool address of `svc`: the one it has, the one it asks for, else the first free one."""
    key = meta_key(svc)
    used = {ip for s in services if meta_key(s) != key and is_ours(s) for ip in _ingress_ips(s)}
    for ip in _ingress_ips(svc) + [(svc.get("spec") or {}).get("loadBalancerIP") or ""]:
        if ip in pool and ip not in used:
            return ip
    return next((ip for ip in pool if ip not in used), "")


class ServiceLBController(Controller):
    name = "service-lb"

    def __init__(self, ctx):
        super().__init__(ctx)
        opts = getattr(ctx, "options", None) or {}
        self.pool = parse_pool(opts.get("service_lb_pool") or "")
        self.services = self.watch("", "v1", "services")
        self.nodes = self.watch("", "v1", "nodes", to_keys=self._all_lb_services)

    def _all_lb_services(self, node: dict) -> list[str]:
        return [meta_key(s) for s in self.services.list() if is_ours(s)]

    def wanted(self, svc: dict) -> list[str]:
        if not is_ours(svc):
            return []
        if self.pool:
            ip = pool_address(svc, self.services.list(), self.pool)
            return [ip] if ip else []
        return node_addresses(self.nodes.list())

    async def reconcile(self, key: str) -> None:
        svc = self.services.get(key)
        if svc is None:
            return
        have = _ingress_ips(svc)
        if not is_ours(svc) and (svc.get("spec") or {}).get("loadBalancerClass"):
            return
        want = self.wanted(svc)
        if have == want:
            return
        ns, name = svc["metadata"].get("namespace", "default"), svc["metadata"]["name"]
        ingress = [{"ip": ip, "ipMode": "VIP"} for ip in want]
        body = {"metadata": {"resourceVersion": svc["metadata"]["resourceVersion"]},
                "status": {"loadBalancer": {"ingress": ingress or None}}}
        await self.client.patch("", "v1", "services", name, body, ns, subresource="status")
        log.info("service %s: load balancer ingress %s", key, want or "none")
