"""`kyb dns`: the cluster DNS component, an API client watching Services and EndpointSlices."""

from __future__ import annotations

import asyncio
import logging

from ..client.factory import InformerFactory
from ..client.rest import RESTClient, wait_for_server
from .records import ClusterRecords
from .server import DNSServer

log = logging.getLogger("kybernetes.dns")


async def run_dns(client: RESTClient, stop: asyncio.Event, host: str, port: int,
                  upstreams: list[tuple[str, int]], zone: str = "cluster.local",
                  ready: asyncio.Future | None = None) -> None:
    await wait_for_server(client)
    factory = InformerFactory(client)
    services = factory.informer("", "v1", "services")
    slices = factory.informer("discovery.k8s.io", "v1", "endpointslices")
    factory.start(stop)
    await factory.wait_synced(services, slices)
    server = DNSServer(ClusterRecords(services.store, slices.store, zone), upstreams)
    bound = await server.start(host, port)
    log.info("cluster DNS for %s on %s:%d (udp, tcp); forwarding to %s", zone, host, bound,
             ", ".join(f"{h}:{p}" for h, p in upstreams) or "nobody")
    if ready is not None and not ready.done():
        ready.set_result(bound)
    try:
        await stop.wait()
    finally:
        await server.stop()
        await factory.join()
