"""`kyb proxy` and the proxy of every agent: informers on Services, EndpointSlices and Nodes.

Any change requests a sync; the runner coalesces them (100 ms) and runs one at a time. The
sync recomputes the service ports from the caches and hands them to the mode's proxier,
which works out what changed, and to the health check server (healthcheck.py), in both modes.
The node's own InternalIP comes from its Node object (for loadBalancerSourceRanges that cover
the node). With `host_gw` the same Node informer keeps the routes to the other nodes' pod
CIDRs (see hostgw.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
from pathlib import Path

from ..client.factory import InformerFactory
from ..client.rest import RESTClient, wait_for_server
from .healthcheck import ServiceHealthServer
from .hostgw import HostGateway, node_internal_ip
from .iptables import IptablesProxier, run_cmd
from .model import NodeConfig, health_checks, service_ports
from .runner import SyncRunner
from .userspace import UserspaceProxier

log = logging.getLogger("kybernetes.proxy")


def conntrack_tcp_be_liberal() -> bool:
    """The sysctl upstream reads to decide whether to drop INVALID packets (of this network namespace)."""
    try:
        return Path("/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal").read_text().strip() not in ("", "0")
    except OSError:
        return False


def default_mode() -> str:
    return "iptables" if os.geteuid() == 0 and shutil.which("iptables-restore") else "userspace"


async def make_service_cidr_local(cidr: str) -> bool:
    """Userspace mode: make every ClusterIP a local address so listeners can bind them (see userspace.py)."""
    if os.geteuid() != 0 or not cidr:
        return False
    code, out = await run_cmd(["ip", "route", "replace", "local", cidr, "dev", "lo", "table", "local"])
    if code != 0:
        log.warning("cannot make %s local (ClusterIPs will not be served): %s", cidr, out.strip())
    return code == 0


class Proxy:
    def __init__(self, client: RESTClient, node: NodeConfig, mode: str = "iptables", service_cidr: str = "",
                 host_gw: bool = False, min_sync_interval: float = 0.1):
        self.client, self.node, self.mode = client, node, mode
        self.service_cidr = service_cidr
        self.proxier = IptablesProxier(node) if mode == "iptables" else UserspaceProxier(node)
        self.runner = SyncRunner(f"{mode} proxy", self._sync, min_sync_interval,
                                 periodic=30.0 if mode == "userspace" else 0.0)
        self.host_gw = HostGateway(node.name) if host_gw else None
        self.routes = SyncRunner("host-gw routes", self._sync_routes, min_sync_interval, periodic=60.0)
        self.ready = asyncio.Event()
        self.sync_ok = True
        self.health = ServiceHealthServer(node.node_port_addresses, lambda: self.sync_ok)

    def _own_ip(self) -> str:
        node = self.nodes.get(self.node.name) or next(
            (n for n in self.nodes.list() if n["metadata"]["name"] == self.node.name), None)
        return node_internal_ip(node) if node else ""

    async def _sync(self) -> None:
        ip = self._own_ip()
        if ip != self.node.node_ip:
            self.node = dataclasses.replace(self.node, node_ip=ip)
            if isinstance(self.proxier, IptablesProxier):
                self.proxier.set_node(self.node)  # rewrites every chain, not only those of changed services
            else:
                self.proxier.node = self.node
        ports = service_ports(self.services.list(), self.slices.list())
        try:
            await self.proxier.sync(ports)
            self.sync_ok = True
        except Exception:
            self.sync_ok = False
            raise
        finally:
            await self.health.sync(health_checks(ports, self.node.name))

    async def _sync_routes(self) -> None:
        await self.host_gw.sync(self.nodes.list())

    async def run(self, stop: asyncio.Event) -> None:
        await wait_for_server(self.client)
        if self.mode == "userspace":
            await make_service_cidr_local(self.service_cidr)
        factory = InformerFactory(self.client)
        self.services = factory.informer("", "v1", "services")
        self.slices = factory.informer("discovery.k8s.io", "v1", "endpointslices")
        self.nodes = factory.informer("", "v1", "nodes")
        for inf in (self.services, self.slices):
            inf.add_handler(lambda o: self.runner.request(), lambda o, n: self.runner.request(),
                            lambda o: self.runner.request())
        self.nodes.add_handler(lambda o: self._node_update(None, o), lambda o, n: self._node_update(o, n),
                               lambda o: self._node_update(o, None))
        factory.start(stop)
        await factory.wait_synced(self.services, self.slices, self.nodes)
        tasks = [asyncio.create_task(self.runner.run(stop))]
        self.runner.request()
        if self.host_gw is not None:
            tasks.append(asyncio.create_task(self.routes.run(stop)))
            self.routes.request()
        log.info("proxy (%s mode) running for node %s", self.mode, self.node.name)
        self.ready.set()
        try:
            await asyncio.gather(*tasks)
        finally:
            if isinstance(self.proxier, UserspaceProxier):
                await self.proxier.close()
            await self.health.close()
            await factory.join()

    def _node_update(self, old: dict | None, new: dict | None) -> None:
        def key(n):
            return ((n or {}).get("spec") or {}).get("podCIDR"), ((n or {}).get("status") or {}).get("addresses")

        if key(old) == key(new):  # heartbeats change nothing that routes or rules depend on
            return
        if self.host_gw is not None:
            self.routes.request()
        if (new or old or {}).get("metadata", {}).get("name") == self.node.name:
            self.runner.request()  # our own InternalIP (loadBalancerSourceRanges)


async def run_proxy(client: RESTClient, stop: asyncio.Event, node_name: str, mode: str = "", cluster_cidr: str = "",
                    service_cidr: str = "10.43.0.0/16", node_port_addresses: tuple[str, ...] = (),
                    host_gw: bool = False) -> None:
    mode = mode or default_mode()
    node = NodeConfig(node_name, cluster_cidr, tuple(node_port_addresses),
                      tcp_be_liberal=mode == "iptables" and conntrack_tcp_be_liberal())
    await Proxy(client, node, mode, service_cidr, host_gw).run(stop)
