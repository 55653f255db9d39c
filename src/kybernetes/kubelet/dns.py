"""A pod's resolv.conf from its dnsPolicy and dnsConfig (after upstream's pkg/kubelet/network/dns).

`pod_dns(pod, cluster_dns, domain, resolv_conf)` returns the nameservers, search domains and
options the runtime writes into the sandbox's /etc/resolv.conf:

- ClusterFirst (not hostNetwork) and ClusterFirstWithHostNet: the cluster DNS servers, the
  search list `<ns>.svc.<domain> svc.<domain> <domain>` followed by the node's own search
  domains, `options ndots:5`. Without cluster DNS servers the pod falls back to Default.
- Default (and ClusterFirst on the host network): the node's resolv.conf.
- None: only what `dnsConfig` says.
`dnsConfig` is then appended: nameservers and searches without duplicates, options merged by
name (the pod's value wins). Limits as upstream: 3 nameservers, 32 search domains of at most
2048 characters in all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32
MAX_SEARCH_CHARS = 2048
DEFAULT_OPTIONS = ["ndots:5"]


@dataclass
class DNSConfig:
    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def resolv_conf(self) -> str:
        lines = [f"nameserver {s}" for s in self.servers]
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n"


def parse_resolv_conf(text: str) -> DNSConfig:
    """nameserver lines, the last search line (without the root domain "."), every options line."""
    out = DNSConfig()
    for line in text.splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            out.servers.append(fields[1])
        elif fields[0] == "search":
            out.searches = [s.rstrip(".") for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            out.options.extend(fields[1:])
    return out


_host_files: dict[str, tuple[tuple[int, int, int], DNSConfig]] = {}


def read_host_dns(path: str) -> DNSConfig:
    """The node's resolv.conf, read and parsed again only when the file changed (a stat per pod)."""
    try:
        st = os.stat(path)
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        known = _host_files.get(path)
        if known is None or known[0] != stamp:
            with open(path) as f:
                known = _host_files[path] = (stamp, parse_resolv_conf(f.read()))
    except OSError:
        return DNSConfig()
    cfg = known[1]
    return DNSConfig(list(cfg.servers), list(cfg.searches), list(cfg.options))  # callers change theirs


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def merge_options(existing: list[str], pod_options: list[dict]) -> list[str]:
    merged: dict[str, str] = {}
    for op in existing:
        name, _, value = op.partition(":")
        merged[name] = value
    for op in pod_options:
        merged[op.get("name") or ""] = op.get("value") or ""
    return [f"{k}:{v}" if v else k for k, v in merged.items() if k]


def _fit_searches(searches: list[str]) -> list[str]:
    searches = searches[:MAX_SEARCH_PATHS]
    while searches and len(" ".join(searches)) > MAX_SEARCH_CHARS:
        searches = searches[:-1]
    return searches


def dns_type(pod: dict) -> str:
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not spec.get("hostNetwork")):
        return "cluster"
    return "host"


def pod_dns(pod: dict, cluster_dns: list[str], domain: str = "cluster.local",
            resolv_conf: str = "/etc/resolv.conf") -> DNSConfig:
    host = read_host_dns(resolv_conf) if resolv_conf else DNSConfig()
    kind = dns_type(pod)
    if kind == "none":
        cfg = DNSConfig()
    elif kind == "cluster" and cluster_dns:
        ns = pod["metadata"].get("namespace") or "default"
        cluster = [f"{ns}.svc.{domain}", f"svc.{domain}", domain] if domain else []
        cfg = DNSConfig(list(cluster_dns), _unique(cluster + host.searches), list(DEFAULT_OPTIONS))
    else:
        cfg = host
        if not resolv_conf:  # upstream: an empty --resolv-conf disables lookups
            cfg = DNSConfig(["127.0.0.1"], ["."])
    custom = (pod.get("spec") or {}).get("dnsConfig")
    if custom:
        cfg = DNSConfig(_unique(cfg.servers + list(custom.get("nameservers") or [])),
                        _unique(cfg.searches + list(custom.get("searches") or [])),
                        merge_options(cfg.options, custom.get("options") or []))
    cfg.servers = cfg.servers[:MAX_NAMESERVERS]
    cfg.searches = _fit_searches(cfg.searches)
    return cfg
