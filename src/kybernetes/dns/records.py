"""What the cluster zone contains, kept from Service and EndpointSlice informers.

`ClusterRecords.lookup(name, qtype)` is pure: it reads the informer caches and returns
an `Answer` (records, or NXDOMAIN, or NODATA), so the logic is testable without sockets.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

TTL = 5


@dataclass
class Record:
    name: str  # absolute, lowercase, with a trailing dot
    type: str  # "A", "SRV", "CNAME", "PTR"
    value: str | tuple  # address, target, or (priority, weight, port, target) for SRV
    ttl: int = TTL


@dataclass
class Answer:
    rcode: str = "NOERROR"  # or "NXDOMAIN"
    records: list[Record] = field(default_factory=list)


def _ready(ep: dict, publish_not_ready: bool) -> bool:
    if publish_not_ready:
        return True
    cond = ep.get("conditions") or {}
    return cond.get("ready") is not False


class ClusterRecords:
    """Answers for the cluster zone from Service and EndpointSlice caches.

    `services` and `slices` are mappings like an informer store (values are objects);
    `zone` is the cluster domain, `cluster.local` by default.
    """

    def __init__(self, services, slices, zone: str = "cluster.local"):
        self.services = services
        self.slices = slices
        self.zone = zone.strip(".").lower()

    def in_zone(self, name: str) -> bool:
        n = name.lower().rstrip(".")
        return n == self.zone or n.endswith("." + self.zone)

    # --- indexes over the caches -------------------------------------------------------------
    def _service(self, ns: str, name: str) -> dict | None:
        return self.services.get(f"{ns}/{name}")

    def _namespaces(self) -> set[str]:
        return {key.split("/", 1)[0] for key in self.services.keys()}

    def _endpoints(self, svc: dict) -> list[tuple[dict, dict]]:
        """(endpoint, slice) pairs of the Service's EndpointSlices."""
        meta = svc["metadata"]
        out = []
        for sl in self.slices.values():
            sm = sl["metadata"]
            if sm.get("namespace") != meta["namespace"]:
                continue
            if (sm.get("labels") or {}).get("kubernetes.io/service-name") != meta["name"]:
                continue
            if sl.get("addressType", "IPv4") != "IPv4":
                continue
            for ep in sl.get("endpoints") or ():
                out.append((ep, sl))
        return out

    def _ready_endpoints(self, svc: dict) -> list[tuple[dict, dict]]:
        publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
        return [(ep, sl) for ep, sl in self._endpoints(svc) if _ready(ep, publish)]

    # --- lookup --------------------------------------------------------------------------------
    def lookup(self, name: str, qtype: str) -> Answer:
        qname = name.lower().rstrip(".") + "."
        labels = qname[: -(len(self.zone) + 2)].split(".") if qname != self.zone + "." else []
        labels = [x for x in labels if x]
        records, exists = self._records(labels, qname)
        if not exists:
            return Answer("NXDOMAIN")
        cnames = [r for r in records if r.type == "CNAME"]
        if cnames:
            return Answer("NOERROR", cnames)
        return Answer("NOERROR", [r for r in records if r.type == qtype])

    def _records(self, labels: list[str], qname: str) -> tuple[list[Record], bool]:
        """All records of the name, and whether the name exists at all."""
        if not labels:
            return [], True
        if labels[-1] == "svc":
            return self._svc_records(labels[:-1], qname)
        if labels[-1] == "pod":
            return self._pod_records(labels[:-1], qname)
        return [], False

    def _pod_records(self, labels: list[str], qname: str) -> tuple[list[Record], bool]:
        if len(labels) == 1:
            return [], labels[0] in self._namespaces()
        if len(labels) != 2:
            return [], False
        try:
            ip = ipaddress.IPv4Address(labels[0].replace("-", "."))
        except ValueError:
            return [], False
        return [Record(qname, "A", str(ip))], True

    def _svc_records(self, labels: list[str], qname: str) -> tuple[list[Record], bool]:
        if not labels:
            return [], True
        if len(labels) == 1:  # ns.svc.cluster.local
            return [], labels[0] in self._namespaces()
        ns, svc_name = labels[-1], labels[-2]
        svc = self._service(ns, svc_name)
        if svc is None:
            return [], False
        rest = labels[:-2]
        spec = svc.get("spec") or {}
        if not rest:
            return self._service_records(svc, qname), True
        if len(rest) == 1:  # hostname.svc.ns.svc: an endpoint of a headless Service
            if spec.get("clusterIP") not in (None, "", "None"):
                return [], False
            out = []
            for ep, _ in self._ready_endpoints(svc):
                if self._endpoint_host(ep) == rest[0]:
                    out += [Record(qname, "A", a) for a in ep.get("addresses") or ()]
            return out, bool(out)
        if len(rest) == 2 and rest[0].startswith("_") and rest[1].startswith("_"):
            return self._srv_records(svc, rest[0][1:], rest[1][1:], qname)
        return [], False

    @staticmethod
    def _endpoint_host(ep: dict) -> str:
        if ep.get("hostname"):
            return ep["hostname"].lower()
        addrs = ep.get("addresses") or ["0.0.0.0"]
        return addrs[0].replace(".", "-")

    def _service_records(self, svc: dict, qname: str) -> list[Record]:
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            return [Record(qname, "CNAME", spec.get("externalName", "").rstrip(".").lower() + ".")]
        cluster_ip = spec.get("clusterIP")
        if cluster_ip and cluster_ip != "None":
            return [Record(qname, "A", ip) for ip in (spec.get("clusterIPs") or [cluster_ip]) if ":" not in ip]
        seen, out = set(), []
        for ep, _ in self._ready_endpoints(svc):
            for a in ep.get("addresses") or ():
                if a not in seen:
                    seen.add(a)
                    out.append(Record(qname, "A", a))
        return out

    def _srv_records(self, svc: dict, port: str, proto: str, qname: str) -> tuple[list[Record], bool]:
        spec = svc.get("spec") or {}
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        svc_fqdn = f"{name}.{ns}.svc.{self.zone}."
        headless = spec.get("clusterIP") in (None, "", "None")
        out = []
        if not headless:
            for p in spec.get("ports") or ():
                if p.get("name", "").lower() == port and p.get("protocol", "TCP").lower() == proto:
                    out.append(Record(qname, "SRV", (0, 100, int(p["port"]), svc_fqdn)))
            return out, bool(out)
        eps = self._ready_endpoints(svc)
        weight = max(1, 100 // max(1, len(eps)))
        for ep, sl in eps:
            for p in sl.get("ports") or ():
                if (p.get("name") or "").lower() == port and (p.get("protocol") or "TCP").lower() == proto:
                    target = f"{self._endpoint_host(ep)}.{svc_fqdn}"
                    out.append(Record(qname, "SRV", (0, weight, int(p["port"]), target)))
        return out, bool(out)

    def additional_for(self, records: list[Record]) -> list[Record]:
        """A records of SRV targets, as CoreDNS puts them in the additional section."""
        extra = []
        for r in records:
            if r.type == "SRV":
                extra += [x for x in self.lookup(r.value[3], "A").records if x.type == "A"]
        return extra

    def soa(self) -> Record:
        return Record(self.zone + ".", "SOA",
                      (f"ns.dns.{self.zone}.", f"hostmaster.{self.zone}.", 1, 7200, 1800, 86400, TTL))
