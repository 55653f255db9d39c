"""Services: ClusterIP, NodePort and health check node port allocation on top of the default strategy.

A LoadBalancer Service with `externalTrafficPolicy: Local` gets `spec.healthCheckNodePort` from
the node port range (the one requested, or any free one), kept across updates that leave it
empty, and dropped when the Service no longer needs it, as upstream's allocators do.

Allocations are derived from the Services in the watch cache (so they survive a restart
with nothing extra stored) plus a short-lived set of reservations for creates still in
flight, so two concurrent creates never receive the same address or port.
"""

from __future__ import annotations

import ipaddress
import random
import time

from ...api import errors
from ..strategy import Strategy

SERVICES_PREFIX = "/registry/core/services/"
RESERVATION_TTL = 30.0


class Allocator:
    """Free/used bookkeeping over a range; `used()` reads current Services."""

    def __init__(self, cache, service_cidr: str, node_port_range: tuple[int, int]):
        self.cache = cache
        self.network = ipaddress.ip_network(service_cidr)
        self.node_ports = node_port_range
        self._reserved_ips: dict[str, float] = {}
        self._reserved_ports: dict[tuple[int, str], float] = {}

    def _services(self):
        return self.cache.bucket(SERVICES_PREFIX).store.values()

    def _prune(self) -> None:
        now = time.monotonic()
        self._reserved_ips = {k: t for k, t in self._reserved_ips.items() if t > now}
        self._reserved_ports = {k: t for k, t in self._reserved_ports.items() if t > now}

    def used_ips(self) -> set[str]:
        used = set(self._reserved_ips)
        for e in self._services():
            spec = e.obj.get("spec") or {}
            for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
                if ip and ip != "None":
                    used.add(ip)
        return used

    def used_ports(self) -> set[tuple[int, str]]:
        used = set(self._reserved_ports)
        for e in self._services():
            spec = e.obj.get("spec") or {}
            for p in spec.get("ports") or ():
                if p.get("nodePort"):
                    used.add((int(p["nodePort"]), p.get("protocol", "TCP")))
            if spec.get("healthCheckNodePort"):
                used.add((int(spec["healthCheckNodePort"]), "TCP"))
        return used

    def in_range(self, ip: str) -> bool:
        try:
            return ipaddress.ip_address(ip) in self.network
        except ValueError:
            return False

    def allocate_ip(self, requested: str | None) -> str:
        self._prune()
        used = self.used_ips()
        if requested:
            if not self.in_range(requested):
                raise errors.invalid_error("Service", "", [errors.invalid(
                    "spec.clusterIPs", [requested],
                    f"failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. "
                    f"The range of valid IPs is {self.network}")])
            if requested in used:
                raise errors.invalid_error("Service", "", [errors.invalid(
                    "spec.clusterIPs", [requested],
                    f"failed to allocate IP {requested}: provided IP is already allocated")])
            ip = requested
        else:
            size = self.network.num_addresses
            base = int(self.network.network_address)
            ip = None
            # first address belongs to the kubernetes Service; last is broadcast
            offset = random.randrange(2, size - 1)
            for i in range(size - 3):
                candidate = str(ipaddress.ip_address(base + 2 + (offset - 2 + i) % (size - 3)))
                if candidate not in used:
                    ip = candidate
                    break
            if ip is None:
                raise errors.StatusError(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full")
        self._reserved_ips[ip] = time.monotonic() + RESERVATION_TTL
        return ip

    def allocate_port(self, requested: int | None, protocol: str, path: str) -> int:
        self._prune()
        used = self.used_ports()
        lo, hi = self.node_ports
        if requested:
            if not lo <= requested <= hi:
                raise errors.invalid_error("Service", "", [errors.invalid(
                    path, requested, f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}")])
            if (requested, protocol) in used:
                raise errors.invalid_error("Service", "", [errors.invalid(path, requested, "provided port is already allocated")])
            port = requested
        else:
            span = hi - lo + 1
            start = random.randrange(span)
            for i in range(span):
                port = lo + (start + i) % span
                if (port, protocol) not in used:
                    break
            else:
                raise errors.StatusError(500, "InternalError", "Internal error occurred: failed to allocate a nodePort: range is full")
        self._reserved_ports[(port, protocol)] = time.monotonic() + RESERVATION_TTL
        return port

    def release(self, svc: dict) -> None:
        spec = svc.get("spec") or {}
        for ip in spec.get("clusterIPs") or ():
            self._reserved_ips.pop(ip, None)
        for p in spec.get("ports") or ():
            if p.get("nodePort"):
                self._reserved_ports.pop((int(p["nodePort"]), p.get("protocol", "TCP")), None)
        if spec.get("healthCheckNodePort"):
            self._reserved_ports.pop((int(spec["healthCheckNodePort"]), "TCP"), None)


def _needs_node_ports(spec: dict) -> bool:
    t = spec.get("type", "ClusterIP")
    return t == "NodePort" or (t == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True))


def needs_health_check(spec: dict) -> bool:
    """Upstream's NeedsHealthCheck: a LoadBalancer that keeps external traffic on the node it arrives at."""
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def init_ip_family_fields(spec: dict, old_spec: dict | None = None) -> None:
    """ipFamilyPolicy and ipFamilies, where the writer left them out: kept from the old object, else
    defaulted from the ClusterIP. Upstream's service registry sets them while allocating, after
    defaulting, so the writer does not come to own them."""
    if spec.get("type") == "ExternalName":
        return
    old_spec = old_spec or {}
    if not spec.get("ipFamilyPolicy"):
        headless_without_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
        spec["ipFamilyPolicy"] = old_spec.get("ipFamilyPolicy") or (
            "RequireDualStack" if headless_without_selector else "SingleStack")
    if not spec.get("ipFamilies"):
        ip = spec.get("clusterIP") or ""
        spec["ipFamilies"] = list(old_spec.get("ipFamilies") or ["IPv6" if ":" in ip else "IPv4"])


class ServiceStrategy(Strategy):
    tracks_generation = False
    allocator: Allocator | None = None  # set by the server

    def prepare_for_create(self, obj: dict) -> None:
        obj["status"] = {"loadBalancer": {}}
        init_ip_family_fields(obj.setdefault("spec", {}))

    def prepare_for_update(self, new: dict, old: dict) -> None:
        new["status"] = old.get("status") or {"loadBalancer": {}}
        spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
        init_ip_family_fields(spec, old_spec if old_spec.get("type") != "ExternalName" else None)
        # an update that leaves clusterIP empty keeps the allocated one (kubectl replace, apply)
        if not spec.get("clusterIP") and old_spec.get("clusterIP") and spec.get("type") != "ExternalName":
            spec["clusterIP"] = old_spec["clusterIP"]
            spec["clusterIPs"] = list(old_spec.get("clusterIPs") or [old_spec["clusterIP"]])
        if _needs_node_ports(spec):
            old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                         for p in old_spec.get("ports") or ()}
            for i, p in enumerate(spec.get("ports") or ()):
                if not p.get("nodePort"):
                    prev = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
                    p["nodePort"] = prev or self.allocator.allocate_port(None, p.get("protocol", "TCP"),
                                                                         f"spec.ports[{i}].nodePort")
        else:
            for p in spec.get("ports") or ():
                p.pop("nodePort", None)
        old_hc = old_spec.get("healthCheckNodePort") if needs_health_check(old_spec) else None
        if needs_health_check(spec):
            hc = spec.get("healthCheckNodePort") or old_hc
            # the old port stays ours; a new or changed one is allocated like any node port
            spec["healthCheckNodePort"] = hc if hc and hc == old_hc else self.allocator.allocate_port(
                hc, "TCP", "spec.healthCheckNodePort")
        elif old_hc and spec.get("healthCheckNodePort") == old_hc:
            del spec["healthCheckNodePort"]  # no longer needed: released with the update

    def allocate(self, obj: dict) -> None:
        spec = obj.setdefault("spec", {})
        if spec.get("type") == "ExternalName":
            return
        requested = spec.get("clusterIP") or ((spec.get("clusterIPs") or [None])[0])
        if requested == "None":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
        else:
            ip = self.allocator.allocate_ip(requested)
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        if _needs_node_ports(spec):
            for i, p in enumerate(spec.get("ports") or ()):
                p["nodePort"] = self.allocator.allocate_port(p.get("nodePort"), p.get("protocol", "TCP"),
                                                             f"spec.ports[{i}].nodePort")
        if needs_health_check(spec):
            spec["healthCheckNodePort"] = self.allocator.allocate_port(
                spec.get("healthCheckNodePort"), "TCP", "spec.healthCheckNodePort")

    def release(self, obj: dict) -> None:
        if self.allocator:
            self.allocator.release(obj)
