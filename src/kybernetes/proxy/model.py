"""What the proxy programs, computed from Services, EndpointSlices and the node: pure functions, no I/O.

One `ServicePort` per (Service, port), named like upstream's ServicePortName ("ns/name:port"),
with the endpoints of its EndpointSlices that the proxy may use: ready ones, or when none is
ready the serving-and-terminating ones (upstream's ProxyTerminatingEndpoints). Equality of
two `ServicePort`s is what partial syncs compare to decide which chains to rewrite.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"


@dataclass(frozen=True, order=True)
class Endpoint:
    ip: str
    port: int
    node: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str  # "tcp", "udp", "sctp"
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    external_local: bool = False  # externalTrafficPolicy: Local
    internal_local: bool = False  # internalTrafficPolicy: Local
    affinity_seconds: int = 0  # sessionAffinity ClientIP timeout; 0: none
    source_ranges: tuple[str, ...] = ()  # loadBalancerSourceRanges (IPv4 CIDRs): who may use the LB IPs
    health_check_node_port: int = 0  # LoadBalancer with externalTrafficPolicy Local
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def key(self) -> str:
        """Upstream's ServicePortName string: ns/name:port (the port name may be empty)."""
        return f"{self.namespace}/{self.name}:{self.port_name}"

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.external_ips or self.load_balancer_ips)

    def usable(self) -> tuple[Endpoint, ...]:
        """Endpoints traffic may go to: ready ones, else serving terminating ones."""
        ready = tuple(e for e in self.endpoints if e.ready)
        return ready or tuple(e for e in self.endpoints if e.serving and e.terminating)

    @property
    def service(self) -> tuple[str, str]:
        return self.namespace, self.name


@dataclass(frozen=True)
class NodeConfig:
    name: str
    cluster_cidr: str = ""  # pod traffic comes from here (upstream's local detector)
    node_port_addresses: tuple[str, ...] = ()  # empty: every local address (addrtype LOCAL)
    masquerade_all: bool = False
    node_ip: str = ""  # lets the node itself through a loadBalancerSourceRanges firewall that covers it
    tcp_be_liberal: bool = False  # nf_conntrack_tcp_be_liberal set: no DROP of INVALID packets (as upstream)


def _int(value, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _ipv4(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).version == 4
    except ValueError:
        return False


def _cidrs(values) -> tuple[str, ...]:
    """IPv4 networks of loadBalancerSourceRanges, normalized; others and unparsable ones dropped (as upstream)."""
    out = set()
    for v in values or ():
        try:
            net = ipaddress.ip_network(str(v).strip(), strict=False)
        except ValueError:
            continue
        if net.version == 4:
            out.add(str(net))
    return tuple(sorted(out))


def _target(port: dict, slice_ports: list[dict]) -> int | None:
    for sp in slice_ports:
        if (sp.get("name") or "") == (port.get("name") or "") and (sp.get("protocol") or "TCP") == (
                port.get("protocol") or "TCP"):
            return _int(sp.get("port")) or None
    return None


def _endpoints(port: dict, slices: list[dict]) -> tuple[Endpoint, ...]:
    found: dict[str, Endpoint] = {}
    for sl in slices:
        if sl.get("addressType", "IPv4") != "IPv4":
            continue
        target = _target(port, sl.get("ports") or [])
        if target is None:
            continue
        for ep in sl.get("endpoints") or ():
            cond = ep.get("conditions") or {}
            ready = cond.get("ready") is not False  # nil means ready
            serving = cond.get("serving") if cond.get("serving") is not None else ready
            for ip in (ep.get("addresses") or [])[:1]:  # upstream uses the first address only
                e = Endpoint(ip, target, ep.get("nodeName") or "", ready, bool(serving),
                             bool(cond.get("terminating")))
                found.setdefault(e.address, e)
    return tuple(sorted(found.values()))


def service_ports(services: list[dict], slices: list[dict]) -> dict[str, ServicePort]:
    """Every proxied (Service, port) by key, from the API objects in the informer caches."""
    by_service: dict[tuple[str, str], list[dict]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc:
            by_service.setdefault((meta.get("namespace") or "", svc), []).append(sl)
    out: dict[str, ServicePort] = {}
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        labels = meta.get("labels") or {}
        if PROXY_NAME_LABEL in labels or HEADLESS_LABEL in labels:
            continue
        cluster_ip = spec.get("clusterIP") or ""
        if spec.get("type") == "ExternalName" or not _ipv4(cluster_ip):
            continue
        ns, name = meta.get("namespace") or "default", meta["name"]
        slices_of = by_service.get((ns, name), [])
        lb_ips: tuple[str, ...] = ()
        if spec.get("type") == "LoadBalancer":
            lb_ips = tuple(sorted({i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get(
                "ingress") or () if _ipv4(i.get("ip") or "") and i.get("ipMode", "VIP") == "VIP"}))
        affinity = 0
        if spec.get("sessionAffinity") == "ClientIP":
            cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
            affinity = _int(cfg.get("timeoutSeconds"), 10800) or 10800
        node_ports_allowed = spec.get("type") in ("NodePort", "LoadBalancer")
        external_local = spec.get("externalTrafficPolicy") == "Local" and node_ports_allowed
        health_port = _int(spec.get("healthCheckNodePort")) if external_local and spec.get(
            "type") == "LoadBalancer" else 0
        for port in spec.get("ports") or ():
            sp = ServicePort(
                namespace=ns, name=name, port_name=port.get("name") or "",
                protocol=(port.get("protocol") or "TCP").lower(), cluster_ip=cluster_ip, port=_int(port.get("port")),
                node_port=_int(port.get("nodePort")) if node_ports_allowed else 0,
                external_ips=tuple(sorted(ip for ip in spec.get("externalIPs") or () if _ipv4(ip))),
                load_balancer_ips=lb_ips,
                external_local=external_local,
                internal_local=spec.get("internalTrafficPolicy") == "Local",
                affinity_seconds=affinity, source_ranges=_cidrs(spec.get("loadBalancerSourceRanges")) if lb_ips else (),
                health_check_node_port=health_port, endpoints=_endpoints(port, slices_of))
            out[sp.key] = sp
    return out


def changed_keys(old: dict[str, ServicePort], new: dict[str, ServicePort]) -> set[str]:
    """Service ports added, removed or different between two states."""
    return {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}


def stale_udp_flows(old: dict[str, ServicePort], new: dict[str, ServicePort]) -> list[list[str]]:
    """`conntrack -D` argument lists for UDP flows that must not outlive an endpoint change.

    A removed endpoint's entries would keep sending a client's datagrams to a dead pod; a
    service that had no endpoints may have entries (to the VIP itself) that bypass the new DNAT.
    """
    cmds: list[list[str]] = []
    for key, before in old.items():
        if before.protocol != "udp":
            continue
        after = new.get(key)
        now = {e.ip for e in after.usable()} if after else set()
        for ip in sorted({e.ip for e in before.usable()} - now):
            cmds.append(["-D", "-p", "udp", "--orig-dst", before.cluster_ip, "--dst-nat", ip])
            for vip in before.external_ips + before.load_balancer_ips:
                cmds.append(["-D", "-p", "udp", "--orig-dst", vip, "--dst-nat", ip])
            if before.node_port:
                cmds.append(["-D", "-p", "udp", "--orig-port-dst", str(before.node_port), "--dst-nat", ip])
    for key, after in new.items():
        before = old.get(key)
        if after.protocol == "udp" and after.usable() and (before is None or not before.usable()):
            cmds.append(["-D", "-p", "udp", "--orig-dst", after.cluster_ip])
            if after.node_port:
                cmds.append(["-D", "-p", "udp", "--orig-port-dst", str(after.node_port)])
    return cmds


def health_checks(ports: dict[str, ServicePort], node: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(namespace, name) -> (healthCheckNodePort, local ready endpoints) for every Service that has one.

    As upstream counts them: ready endpoints on this node, each address once however many ports.
    """
    ips: dict[tuple[str, str], set[str]] = {}
    port_of: dict[tuple[str, str], int] = {}
    for sp in ports.values():
        if not sp.health_check_node_port:
            continue
        port_of[sp.service] = sp.health_check_node_port
        ips.setdefault(sp.service, set()).update(e.ip for e in sp.endpoints if e.ready and e.node == node)
    return {svc: (port, len(ips[svc])) for svc, port in port_of.items()}
