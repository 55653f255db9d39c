"""Pod network across nodes, host-gw style: a route to every other node's podCIDR via its InternalIP.

Routes are installed with iproute2 under their own protocol number (`proto 0xkb`, 203), so
the routes of Nodes that went away are found and deleted without touching anyone else's.
"""

from __future__ import annotations

import ipaddress
import json
import logging

from .iptables import run_cmd

log = logging.getLogger("kybernetes.proxy.hostgw")

ROUTE_PROTO = "203"


def node_internal_ip(node: dict) -> str:
    for a in (node.get("status") or {}).get("addresses") or ():
        if a.get("type") == "InternalIP":
            return a.get("address") or ""
    return ""


def desired_routes(nodes: list[dict], self_name: str) -> dict[str, str]:
    """podCIDR -> gateway (the node's InternalIP) for every other node with both."""
    out = {}
    for node in nodes:
        if node["metadata"]["name"] == self_name:
            continue
        cidr, ip = (node.get("spec") or {}).get("podCIDR") or "", node_internal_ip(node)
        try:
            if cidr and ip and ipaddress.ip_network(cidr).version == 4 and ipaddress.ip_address(ip).version == 4:
                out[str(ipaddress.ip_network(cidr))] = ip
        except ValueError:
            continue
    return out


class HostGateway:
    def __init__(self, node_name: str, run=run_cmd):
        self.node_name = node_name
        self.run = run

    async def current(self) -> dict[str, str]:
        code, out = await self.run(["ip", "-j", "-4", "route", "show", "proto", ROUTE_PROTO])
        if code != 0:
            raise RuntimeError(f"ip route show failed: {out.strip()}")
        return {r["dst"]: r.get("gateway", "") for r in json.loads(out or "[]")}

    async def sync(self, nodes: list[dict]) -> None:
        want, have = desired_routes(nodes, self.node_name), await self.current()
        for cidr, gw in want.items():
            if have.get(cidr) != gw:
                code, out = await self.run(["ip", "route", "replace", cidr, "via", gw, "proto", ROUTE_PROTO])
                if code != 0:
                    raise RuntimeError(f"route {cidr} via {gw}: {out.strip()}")
                log.info("route %s via %s", cidr, gw)
        for cidr in have.keys() - want.keys():
            await self.run(["ip", "route", "del", cidr, "proto", ROUTE_PROTO])
            log.info("removed route %s", cidr)
