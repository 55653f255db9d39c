"""The userspace proxier: asyncio TCP and UDP relays, no iptables.

For every service port it listens on
- the NodePort on every address of the host (0.0.0.0:nodePort),
- each load balancer ingress and external IP on the service port (when the address is local),
- the ClusterIP on the service port. A ClusterIP is not an address of any interface, so the
  old kube-proxy userspace mode sent it to a local port with iptables REDIRECT. Without
  iptables we make the whole service CIDR a local address range instead:
  `ip route replace local 10.43.0.0/16 dev lo table local` (what `kyb proxy --mode userspace`
  does when it may), after which a socket can bind any ClusterIP and packets from pods and
  from the host to it are delivered locally. Without that route (no privileges) ClusterIP
  listeners fail to bind, which is logged, and only NodePorts are served.

Connections are balanced round-robin over the usable endpoints (local ones for the Local
traffic policies); a connect failure moves on to the next endpoint. On a load balancer ingress
address, `loadBalancerSourceRanges` are enforced: a connection or datagram from outside them is
closed or dropped unanswered. sessionAffinity ClientIP
pins a client address to its endpoint for the timeout. UDP keeps one upstream socket per
client address and closes it after `udp_idle` seconds without traffic, or as soon as its endpoint
is no longer usable (the userspace counterpart of flushing a removed UDP endpoint's conntrack
entries), so a client that keeps sending from the same port reaches the new endpoints.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from dataclasses import dataclass, field

from .model import Endpoint, NodeConfig, ServicePort

log = logging.getLogger("kybernetes.proxy.userspace")


def listen_addresses(ports: dict[str, ServicePort]) -> dict[tuple[str, str, int], tuple[str, bool]]:
    """(protocol, address, port) -> (service port key, external?) for every listener wanted."""
    out: dict[tuple[str, str, int], tuple[str, bool]] = {}
    for key in sorted(ports):
        sp = ports[key]
        if sp.protocol not in ("tcp", "udp"):
            continue
        out[(sp.protocol, sp.cluster_ip, sp.port)] = (key, False)
        for ip in sp.external_ips + sp.load_balancer_ips:
            out.setdefault((sp.protocol, ip, sp.port), (key, True))
        if sp.node_port:
            out.setdefault((sp.protocol, "0.0.0.0", sp.node_port), (key, True))
    return out


def endpoints_for(sp: ServicePort, node: str, external: bool) -> tuple[Endpoint, ...]:
    eps = sp.usable()
    if (sp.external_local if external else sp.internal_local):
        eps = tuple(e for e in eps if e.node == node)
    return eps


@dataclass
class Balancer:
    endpoints: tuple[Endpoint, ...] = ()
    affinity_seconds: int = 0
    next: int = 0
    sticky: dict[str, tuple[Endpoint, float]] = field(default_factory=dict)
    source_ranges: tuple[ipaddress.IPv4Network, ...] = ()  # empty: every source

    def admits(self, client_ip: str) -> bool:
        if not self.source_ranges:
            return True
        try:
            ip = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        return any(ip in net for net in self.source_ranges)

    def order(self, client_ip: str) -> list[Endpoint]:
        """Endpoints to try for a new connection, best first."""
        eps = list(self.endpoints)
        if not eps:
            return []
        start = self.next % len(eps)
        self.next = start + 1
        ordered = eps[start:] + eps[:start]
        if self.affinity_seconds:
            pinned = self.sticky.get(client_ip)
            if pinned and pinned[1] > time.monotonic() and pinned[0] in eps:
                ordered.remove(pinned[0])
                ordered.insert(0, pinned[0])
        return ordered

    def chose(self, client_ip: str, ep: Endpoint) -> None:
        if self.affinity_seconds:
            self.sticky[client_ip] = (ep, time.monotonic() + self.affinity_seconds)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


class _UDPSession(asyncio.DatagramProtocol):
    def __init__(self, listener: _UDPListener, client: tuple, endpoint: Endpoint):
        self.listener, self.client, self.endpoint = listener, client, endpoint
        self.transport: asyncio.DatagramTransport | None = None
        self.last = time.monotonic()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.last = time.monotonic()
        if self.listener.transport is not None:
            self.listener.transport.sendto(data, self.client)


class _UDPListener(asyncio.DatagramProtocol):
    def __init__(self, proxier: UserspaceProxier, balancer: Balancer):
        self.proxier, self.balancer = proxier, balancer
        self.transport: asyncio.DatagramTransport | None = None
        self.sessions: dict[tuple, _UDPSession] = {}
        self.pending: dict[tuple, list[bytes]] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if not self.balancer.admits(addr[0]):
            return
        s = self.sessions.get(addr)
        if s is not None and s.transport is not None:
            s.last = time.monotonic()
            s.transport.sendto(data)
        elif addr in self.pending:
            self.pending[addr].append(data)
        else:
            self.pending[addr] = [data]
            asyncio.ensure_future(self._open(addr))

    async def _open(self, addr) -> None:
        loop = asyncio.get_running_loop()
        try:
            for ep in self.balancer.order(addr[0]):
                try:
                    _, session = await loop.create_datagram_endpoint(lambda ep=ep: _UDPSession(self, addr, ep),
                                                                     remote_addr=(ep.ip, ep.port))
                except OSError:
                    continue
                self.balancer.chose(addr[0], ep)
                self.sessions[addr] = session
                for data in self.pending.get(addr, ()):
                    session.transport.sendto(data)
                return
        finally:
            self.pending.pop(addr, None)

    def sweep(self, idle: float) -> None:
        """Close sessions idle for `idle` seconds or whose endpoint the balancer no longer has."""
        now = time.monotonic()
        usable = {e.address for e in self.balancer.endpoints}
        for addr, s in list(self.sessions.items()):
            if now - s.last > idle or s.endpoint.address not in usable:
                s.transport.close()
                del self.sessions[addr]

    def close(self) -> None:
        for s in self.sessions.values():
            s.transport.close()
        self.sessions.clear()
        if self.transport is not None:
            self.transport.close()


class UserspaceProxier:
    def __init__(self, node: NodeConfig, connect_timeout: float = 2.0, udp_idle: float = 60.0):
        self.node = node
        self.connect_timeout, self.udp_idle = connect_timeout, udp_idle
        self.listeners: dict[tuple[str, str, int], object] = {}
        self.balancers: dict[tuple[str, str, int], Balancer] = {}
        self.failed: set[tuple[str, str, int]] = set()
        self.syncs = 0

    async def _handle_tcp(self, balancer: Balancer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        client = (writer.get_extra_info("peername") or ("", 0))[0]
        try:
            if not balancer.admits(client):
                log.debug("connection from %s outside loadBalancerSourceRanges closed", client)
                return
            for ep in balancer.order(client):
                try:
                    up_r, up_w = await asyncio.wait_for(asyncio.open_connection(ep.ip, ep.port), self.connect_timeout)
                except (OSError, TimeoutError):
                    log.debug("connect to %s failed, trying the next endpoint", ep.address)
                    continue
                balancer.chose(client, ep)
                try:
                    await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
                finally:
                    up_w.close()
                return
        finally:
            writer.close()

    async def _open(self, addr: tuple[str, str, int], balancer: Balancer):
        proto, host, port = addr
        if proto == "tcp":
            return await asyncio.start_server(lambda r, w: self._handle_tcp(balancer, r, w), host, port,
                                              reuse_address=True, backlog=512)
        loop = asyncio.get_running_loop()
        transport, listener = await loop.create_datagram_endpoint(lambda: _UDPListener(self, balancer),
                                                                  local_addr=(host, port))
        return listener

    @staticmethod
    def _close(server) -> None:
        server.close()

    async def sync(self, ports: dict[str, ServicePort]) -> bool:
        want = listen_addresses(ports)
        for addr in [a for a in self.listeners if a not in want]:
            self._close(self.listeners.pop(addr))
            self.balancers.pop(addr, None)
        for addr, (key, external) in want.items():
            sp = ports[key]
            b = self.balancers.setdefault(addr, Balancer())
            b.endpoints = endpoints_for(sp, self.node.name, external)
            b.affinity_seconds = sp.affinity_seconds
            b.source_ranges = tuple(ipaddress.ip_network(r) for r in sp.source_ranges) \
                if addr[1] in sp.load_balancer_ips else ()
            if addr in self.listeners:
                continue
            try:
                self.listeners[addr] = await self._open(addr, b)
                self.failed.discard(addr)
            except OSError as e:
                if addr not in self.failed:
                    log.warning("cannot listen on %s %s:%d for %s: %s", addr[0], addr[1], addr[2], key, e)
                self.failed.add(addr)
        for listener in self.listeners.values():
            if isinstance(listener, _UDPListener):
                listener.sweep(self.udp_idle)
        self.syncs += 1
        return True

    async def close(self) -> None:
        for server in self.listeners.values():
            self._close(server)
        self.listeners.clear()
