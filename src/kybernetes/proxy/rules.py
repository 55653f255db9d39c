"""iptables rules of the proxy, as upstream kube-proxy lays them out: pure functions, no I/O.

nat:    PREROUTING, OUTPUT -> KUBE-SERVICES -> KUBE-SVC-<h> (cluster policy) | KUBE-SVL-<h> (local
        policy) -> KUBE-SEP-<h> (DNAT to one endpoint); NodePorts through KUBE-NODEPORTS and external
        addresses (externalIPs, load balancer ingress) through KUBE-EXT-<h>; KUBE-MARK-MASQ marks
        packets that KUBE-POSTROUTING masquerades.
        A LoadBalancer with loadBalancerSourceRanges sends its ingress traffic through KUBE-FW-<h>, which
        passes allowed sources on to KUBE-EXT-<h>; the rest leaves the chain without DNAT.
filter: KUBE-SERVICES / KUBE-EXTERNAL-SERVICES reject traffic to services without endpoints,
        KUBE-FORWARD accepts marked and established forwarded traffic, KUBE-PROXY-FIREWALL drops new
        connections to a firewalled LoadBalancer IP that were not DNATed (so not allowed), and
        KUBE-NODEPORTS accepts the health check node ports.

Chain names hash the ServicePortName and protocol (and the endpoint) with SHA-256 and keep 16
base32 characters, as upstream does, so names are the same as upstream's for the same service.
`build` gives every chain and its rules; `restore_text` renders the input of
`iptables-restore --noflush`: all of it for a full sync, or only the chains of changed
services (plus the small top-level chains) for a partial sync, deleting stale chains.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass, field

from .model import Endpoint, NodeConfig, ServicePort

MASQ_MARK = "0x4000"
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-", "KUBE-FW-")
NAT_TOP = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")
FILTER_TOP = ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL")

# (table, built-in chain, rule) jumps into our chains; installed once with `iptables -C || -I`
JUMPS = (
    ("filter", "INPUT", "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service "
                        "portals\" -j KUBE-EXTERNAL-SERVICES"),
    ("filter", "FORWARD", "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service "
                          "portals\" -j KUBE-EXTERNAL-SERVICES"),
    ("filter", "FORWARD", "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" "
                          "-j KUBE-SERVICES"),
    ("filter", "FORWARD", "-m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD"),
    ("filter", "OUTPUT", "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" "
                         "-j KUBE-SERVICES"),
    ("filter", "INPUT", "-m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS"),
    *[("filter", chain, "-m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" "
                        "-j KUBE-PROXY-FIREWALL") for chain in ("INPUT", "OUTPUT", "FORWARD")],
    ("nat", "PREROUTING", "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"),
    ("nat", "OUTPUT", "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"),
    ("nat", "POSTROUTING", "-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING"),
)


def chain_hash(*parts: str) -> str:
    return base64.b32encode(hashlib.sha256("".join(parts).encode()).digest()).decode()[:16]


def svc_chain(sp: ServicePort) -> str:
    return "KUBE-SVC-" + chain_hash(sp.key, sp.protocol)


def svl_chain(sp: ServicePort) -> str:
    return "KUBE-SVL-" + chain_hash(sp.key, sp.protocol)


def ext_chain(sp: ServicePort) -> str:
    return "KUBE-EXT-" + chain_hash(sp.key, sp.protocol)


def fw_chain(sp: ServicePort) -> str:
    return "KUBE-FW-" + chain_hash(sp.key, sp.protocol)


def sep_chain(sp: ServicePort, ep: Endpoint) -> str:
    return "KUBE-SEP-" + chain_hash(sp.key, sp.protocol, ep.address)


def _contains(cidr: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _c(text: str) -> str:
    return f'-m comment --comment "{text}"'


@dataclass
class Ruleset:
    """Every chain the proxy wants, with its rules (the text after `-A CHAIN`)."""

    nat: dict[str, list[str]] = field(default_factory=dict)
    filter: dict[str, list[str]] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)  # per-service nat chain -> ServicePort key

    def chain(self, name: str, owner: str) -> list[str]:
        self.owner[name] = owner
        return self.nat.setdefault(name, [])


def _policy_chain(rs: Ruleset, sp: ServicePort, chain: str, endpoints: tuple[Endpoint, ...]) -> None:
    """Affinity lookups, then a random split over `endpoints` (upstream's writeServiceToEndpointRules)."""
    rules = rs.chain(chain, sp.key)
    if sp.affinity_seconds:
        for ep in endpoints:
            rules.append(f"{_c(f'{sp.key} -> {ep.address}')} -m recent --name {sep_chain(sp, ep)} --rcheck "
                         f"--seconds {sp.affinity_seconds} --reap -j {sep_chain(sp, ep)}")
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        split = f" -m statistic --mode random --probability {1.0 / (n - i):0.10f}" if i < n - 1 else ""
        rules.append(f"{_c(f'{sp.key} -> {ep.address}')}{split} -j {sep_chain(sp, ep)}")


def _endpoint_chain(rs: Ruleset, sp: ServicePort, ep: Endpoint) -> None:
    name = sep_chain(sp, ep)
    if name in rs.nat:
        return
    rules = rs.chain(name, sp.key)
    p = sp.protocol
    rules.append(f"{_c(sp.key)} -s {ep.ip}/32 -j KUBE-MARK-MASQ")  # hairpin: a pod reaching itself
    recent = f" -m recent --name {name} --set" if sp.affinity_seconds else ""
    rules.append(f"{_c(sp.key)}{recent} -m {p} -p {p} -j DNAT --to-destination {ep.address}")


def _service(rs: Ruleset, sp: ServicePort, node: NodeConfig) -> None:
    p, key = sp.protocol, sp.key
    match = f"-m {p} -p {p}"
    cluster_eps = sp.usable()
    local_eps = tuple(e for e in cluster_eps if e.node == node.name)
    internal_eps = local_eps if sp.internal_local else cluster_eps
    external_eps = local_eps if sp.external_local else cluster_eps
    cluster, local = svc_chain(sp), svl_chain(sp)
    internal_chain = local if sp.internal_local else cluster
    external_policy = local if sp.external_local else cluster
    uses_external = bool(cluster_eps) and sp.externally_accessible
    external_chain = ext_chain(sp) if sp.externally_accessible else external_policy
    uses_fw = bool(cluster_eps) and bool(sp.load_balancer_ips) and bool(sp.source_ranges)
    lb_chain = fw_chain(sp) if uses_fw else external_chain

    if cluster_eps and (not sp.internal_local or sp.externally_accessible):
        _policy_chain(rs, sp, cluster, cluster_eps)
        for ep in cluster_eps:
            _endpoint_chain(rs, sp, ep)
    if local_eps and (sp.internal_local or sp.external_local):
        _policy_chain(rs, sp, local, local_eps)
        for ep in local_eps:
            _endpoint_chain(rs, sp, ep)

    # cluster IP
    vip = f"{_c(f'{key} cluster IP')} {match} -d {sp.cluster_ip}/32 --dport {sp.port}"
    if internal_eps:
        chain = rs.nat[internal_chain]
        if node.masquerade_all:
            chain.insert(0, f"{vip} -j KUBE-MARK-MASQ")
        elif node.cluster_cidr:  # off-cluster traffic to a VIP may be bounced off-node: masquerade it
            chain.insert(0, f"{vip} ! -s {node.cluster_cidr} -j KUBE-MARK-MASQ")
        rs.nat["KUBE-SERVICES"].append(f"{vip} -j {internal_chain}")
    else:
        why = "has no local endpoints" if cluster_eps else "has no endpoints"
        rs.filter["KUBE-SERVICES"].append(
            f"{_c(f'{key} {why}')} {match} -d {sp.cluster_ip}/32 --dport {sp.port} -j REJECT")

    if not sp.externally_accessible:
        return
    verdict = "DROP" if cluster_eps else "REJECT"
    why = "has no local endpoints" if cluster_eps else "has no endpoints"
    if uses_external:
        ext = rs.chain(external_chain, key)
        if not sp.external_local:
            ext.append(f"{_c(f'masquerade traffic for {key} external destinations')} -j KUBE-MARK-MASQ")
        else:
            if node.cluster_cidr:  # pods reaching an external address act as if from outside: cluster policy
                ext.append(f"{_c(f'pod traffic for {key} external destinations')} -s {node.cluster_cidr} -j {cluster}")
            ext.append(f"{_c(f'masquerade LOCAL traffic for {key} external destinations')} "
                       f"-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ")
            ext.append(f"{_c(f'route LOCAL traffic for {key} external destinations')} "
                       f"-m addrtype --src-type LOCAL -j {cluster}")
        if external_eps:
            ext.append(f"-j {external_policy}")
    for ip in sp.external_ips:
        dst = f"{match} -d {ip}/32 --dport {sp.port}"
        if uses_external:
            rs.nat["KUBE-SERVICES"].append(f"{_c(f'{key} external IP')} {dst} -j {external_chain}")
        if not external_eps:
            rs.filter["KUBE-EXTERNAL-SERVICES"].append(f"{_c(f'{key} {why}')} {dst} -j {verdict}")
    for ip in sp.load_balancer_ips:
        dst = f"{match} -d {ip}/32 --dport {sp.port}"
        if uses_external:
            rs.nat["KUBE-SERVICES"].append(f"{_c(f'{key} loadbalancer IP')} {dst} -j {lb_chain}")
        if uses_fw:
            rs.filter["KUBE-PROXY-FIREWALL"].append(
                f"{_c(f'{key} traffic not accepted by {lb_chain}')} {dst} -j DROP")
        if not external_eps:
            rs.filter["KUBE-EXTERNAL-SERVICES"].append(f"{_c(f'{key} {why}')} {dst} -j {verdict}")
    if uses_fw:  # upstream's firewall chain: allowed sources go on to the external chain
        fw = rs.chain(lb_chain, key)
        allowed = _c(f"{key} loadbalancer IP")
        fw += [f"{allowed} -s {cidr} -j {external_chain}" for cidr in sp.source_ranges]
        if node.node_ip and any(_contains(cidr, node.node_ip) for cidr in sp.source_ranges):
            # a VIP that is a local address loops back with itself as the source
            fw += [f"{allowed} -s {ip}/32 -j {external_chain}" for ip in sp.load_balancer_ips]
        fw.append(_c(f"other traffic to {key} will be dropped by KUBE-PROXY-FIREWALL"))
    if sp.health_check_node_port:  # accepted whether or not this node has local endpoints
        rs.filter["KUBE-NODEPORTS"].append(f"{_c(f'{key} health check node port')} -m tcp -p tcp "
                                           f"--dport {sp.health_check_node_port} -j ACCEPT")
    if sp.node_port:
        if uses_external:
            rs.nat["KUBE-NODEPORTS"].append(f"{_c(key)} {match} --dport {sp.node_port} -j {external_chain}")
        if not external_eps:
            rs.filter["KUBE-EXTERNAL-SERVICES"].append(
                f"{_c(f'{key} {why}')} -m addrtype --dst-type LOCAL {match} --dport {sp.node_port} -j {verdict}")


def build(ports: dict[str, ServicePort], node: NodeConfig) -> Ruleset:
    rs = Ruleset()
    for name in NAT_TOP:
        rs.nat[name] = []
    for name in FILTER_TOP:
        rs.filter[name] = []
    if not node.tcp_be_liberal:  # upstream drops INVALID unless conntrack is liberal about TCP windows
        rs.filter["KUBE-FORWARD"].append("-m conntrack --ctstate INVALID -j DROP")
    rs.filter["KUBE-FORWARD"] += [
        f"{_c('kubernetes forwarding rules')} -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT",
        f"{_c('kubernetes forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]
    rs.nat["KUBE-POSTROUTING"] += [
        f"-m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        f"-j MARK --xor-mark {MASQ_MARK}",
        f"{_c('kubernetes service traffic requiring SNAT')} -j MASQUERADE",
    ]
    rs.nat["KUBE-MARK-MASQ"].append(f"-j MARK --or-mark {MASQ_MARK}")
    for key in sorted(ports):
        _service(rs, ports[key], node)
    nodeports = _c("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
    if node.node_port_addresses:
        for ip in node.node_port_addresses:
            rs.nat["KUBE-SERVICES"].append(f"{nodeports} -d {ip}/32 -j KUBE-NODEPORTS")
    else:
        rs.nat["KUBE-SERVICES"].append(f"{nodeports} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    return rs


@dataclass
class RestoreInput:
    text: str
    written_chains: list[str]  # per-service chains written (flushed and refilled)
    deleted_chains: list[str]
    rules: int  # -A lines


def restore_text(rs: Ruleset, changed: set[str] | None = None, existing: set[str] = frozenset()) -> RestoreInput:
    """Input for `iptables-restore --noflush`; `changed` None means a full sync.

    `existing` are the per-service nat chains present now; those no longer wanted are deleted.
    """
    out: list[str] = ["*filter"]
    rules = 0
    out += [f":{name} - [0:0]" for name in rs.filter]
    for name, chain in rs.filter.items():
        out += [f"-A {name} {r}" for r in chain]
        rules += len(chain)
    out += ["COMMIT", "*nat"]
    written = [n for n in rs.nat if n not in NAT_TOP and (changed is None or rs.owner.get(n) in changed)]
    stale = sorted(n for n in existing if n.startswith(SERVICE_CHAIN_PREFIXES) and n not in rs.nat)
    names = [*NAT_TOP, *written]
    out += [f":{name} - [0:0]" for name in [*names, *stale]]
    for name in names:
        out += [f"-A {name} {r}" for r in rs.nat[name]]
        rules += len(rs.nat[name])
    out += [f"-X {name}" for name in stale]
    out.append("COMMIT")
    return RestoreInput("\n".join(out) + "\n", written, stale, rules)


def service_chains_in(save_text: str) -> set[str]:
    """Per-service chain names declared in `iptables-save -t nat` output."""
    return {line[1:].split()[0] for line in save_text.splitlines()
            if line.startswith(":") and line[1:].startswith(SERVICE_CHAIN_PREFIXES)}
