"""Health check node ports: what a cloud load balancer asks each node about a `Local` Service.

For every Service of type LoadBalancer with `externalTrafficPolicy: Local`, the API server allocates
`spec.healthCheckNodePort`, and the proxy of every node serves HTTP there (upstream's
ServiceHealthServer, pkg/proxy/healthcheck): any request is answered with

    {"service": {"namespace": "ns", "name": "svc"}, "localEndpoints": N, "serviceProxyHealthy": true}

with status 200 when this node has ready endpoints of the Service (N > 0) and the proxy is healthy,
503 otherwise, so a load balancer only sends traffic to nodes that keep it local. The header
`X-Load-Balancing-Endpoint-Weight` carries N, as upstream's does. One listener per Service on each
node port address (every address when none are configured); listeners of Services that went away
are closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

log = logging.getLogger("kybernetes.proxy.healthcheck")

MAX_REQUEST = 16384


def response(namespace: str, name: str, endpoints: int, proxy_healthy: bool) -> bytes:
    ok = endpoints > 0 and proxy_healthy
    body = json.dumps({"service": {"namespace": namespace, "name": name}, "localEndpoints": endpoints,
                       "serviceProxyHealthy": proxy_healthy}, indent="\t").encode()
    head = (f"HTTP/1.1 {'200 OK' if ok else '503 Service Unavailable'}\r\n"
            "Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
            f"X-Load-Balancing-Endpoint-Weight: {endpoints}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + body


class ServiceHealthServer:
    def __init__(self, addresses: tuple[str, ...] = (), healthy: Callable[[], bool] = lambda: True):
        self.addresses = addresses or ("0.0.0.0",)
        self.healthy = healthy
        self.endpoints: dict[tuple[str, str], int] = {}
        self.ports: dict[tuple[str, str], int] = {}
        self.servers: dict[tuple[str, str], list[asyncio.AbstractServer]] = {}

    async def _handle(self, svc: tuple[str, str], reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            writer.write(response(svc[0], svc[1], self.endpoints.get(svc, 0), self.healthy()))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def sync(self, wanted: dict[tuple[str, str], tuple[int, int]]) -> None:
        """`wanted`: (namespace, name) -> (health check node port, local ready endpoints)."""
        self.endpoints = {svc: n for svc, (_, n) in wanted.items()}
        for svc in [s for s in self.servers if s not in wanted or wanted[s][0] != self.ports.get(s)]:
            for server in self.servers.pop(svc):
                server.close()
            self.ports.pop(svc, None)
            log.info("closed health check for %s/%s", *svc)
        for svc, (port, _) in wanted.items():
            if svc in self.servers:
                continue
            servers = []
            try:
                for addr in self.addresses:
                    servers.append(await asyncio.start_server(
                        lambda r, w, svc=svc: self._handle(svc, r, w), addr, port, reuse_address=True,
                        limit=MAX_REQUEST))
            except OSError as e:
                for server in servers:
                    server.close()
                log.warning("cannot serve the health check of %s/%s on port %d: %s", svc[0], svc[1], port, e)
                continue
            self.servers[svc], self.ports[svc] = servers, port
            log.info("serving the health check of %s/%s on port %d", svc[0], svc[1], port)

    async def close(self) -> None:
        await self.sync({})
