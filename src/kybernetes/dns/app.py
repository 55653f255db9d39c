"""`kyb dns`: the cluster DNS component, an API client watching Services and EndpointSlices."""

from __future__ import annotations

import asyncio
import logging

from ..client.factory import InformerFactory
from ..client.rest import ApiError, RESTClient, wait_for_server
from .records import ClusterRecords
from .server import DNSServer

log = logging.getLogger("kybernetes.dns")


async def publish(client: RESTClient, cluster_ip: str, address: str, port: int) -> None:
    """Make this server the `kube-dns` Service of kube-system, as CoreDNS is in a real cluster.

    The Service has no selector; its EndpointSlice names the address and port this process
    listens on, so the proxy on every node sends 10.43.0.10:53 here.
    """
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "kube-dns", "namespace": "kube-system",
                            "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "kyb-dns"}},
               "spec": {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                        "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": port},
                                  {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": port}]}}
    slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
              "metadata": {"name": "kube-dns-kyb", "namespace": "kube-system",
                           "labels": {"kubernetes.io/service-name": "kube-dns",
                                      "endpointslice.kubernetes.io/managed-by": "kyb-dns"}},
              "addressType": "IPv4",
              "endpoints": [{"addresses": [address], "conditions": {"ready": True, "serving": True}}],
              "ports": [{"name": "dns", "port": port, "protocol": "UDP"},
                        {"name": "dns-tcp", "port": port, "protocol": "TCP"}]}
    try:
        await client.create("", "v1", "services", service, "kube-system")
    except ApiError as e:
        if e.code != 409:
            raise
        current = await client.get("", "v1", "services", "kube-dns", "kube-system")
        current["spec"]["ports"] = service["spec"]["ports"]
        await client.update("", "v1", "services", current, "kube-system")
    await client.patch("discovery.k8s.io", "v1", "endpointslices", "kube-dns-kyb", slice_, "kube-system",
                       patch_type="application/apply-patch+yaml", fieldManager="kyb-dns", force=True)


async def run_dns(client: RESTClient, stop: asyncio.Event, host: str, port: int,
                  upstreams: list[tuple[str, int]], zone: str = "cluster.local",
                  ready: asyncio.Future | None = None, cluster_ip: str = "") -> None:
    await wait_for_server(client)
    factory = InformerFactory(client)
    services = factory.informer("", "v1", "services")
    slices = factory.informer("discovery.k8s.io", "v1", "endpointslices")
    factory.start(stop)
    await factory.wait_synced(services, slices)
    server = DNSServer(ClusterRecords(services.store, slices.store, zone), upstreams)
    for informer in (services, slices):
        informer.add_handler(server.invalidate, server.invalidate, server.invalidate)
    bound = await server.start(host, port)
    log.info("cluster DNS for %s on %s:%d (udp, tcp); forwarding to %s", zone, host, bound,
             ", ".join(f"{h}:{p}" for h, p in upstreams) or "nobody")
    if cluster_ip:
        await publish(client, cluster_ip, host, bound)
        log.info("published as kube-system/kube-dns at %s:53", cluster_ip)
    if ready is not None and not ready.done():
        ready.set_result(bound)
    try:
        await stop.wait()
    finally:
        await server.stop()
        await factory.join()
