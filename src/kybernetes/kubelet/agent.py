"""`kyb sim-nodes` / `kyb server --sim-nodes N`: many simulated nodes in one process.

Like kwok, every node is a real API client: it registers its Node, renews its Lease,
reports its status and runs the pods bound to it through the `sim` runtime. One Node
informer (label node.kybernetes.io/sim=true), one informer of bound pods, one pod worker
pool and one heartbeat loop serve all nodes of the process.

A Node annotated `sim.kybernetes.io/heartbeat: "false"` plays a node that lost its
connection: no Lease renewals, no node status and no pod status from then on.

With `client_ca` (the cluster CA, PEM) one kubelet HTTPS server (`kubelet.server`) serves
logs for all nodes of the process on `kubelet_address:kubelet_port` (port 0: any free one);
each Node advertises it (annotation kubelet.kybernetes.io/address and daemonEndpoints port).
Container logs are written under `log_dir`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..client.informer import Informer, meta_key
from ..client.rest import RESTClient, wait_for_server
from .heartbeat import Heartbeats
from .node import HEARTBEAT_ANNOTATION, SIM_LABEL, NodeHandle, node_labels, post_node_status, register_node, sim_node_ip
from .pods import PodWorkers
from .runtime.sim import SimRuntime
from .server import ADDRESS_ANNOTATION, KubeletServer

log = logging.getLogger("kybernetes.kubelet.sim")


class SimNodes:
    def __init__(self, client: RESTClient, count: int, prefix: str = "sim-node-", first: int = 0,
                 heartbeat_interval: float = 10.0, status_report: float = 300.0, workers: int = 64,
                 log_dir: str | None = None, client_ca: bytes | None = None, kubelet_address: str = "127.0.0.1",
                 kubelet_port: int = 0):
        self.client = client
        self.nodes: dict[str, NodeHandle] = {}
        for i in range(first, first + count):
            name = f"{prefix}{i}"
            ip = sim_node_ip(i)
            self.nodes[name] = NodeHandle(name, ip, SimRuntime(ip, log_dir=log_dir),
                                          labels=node_labels(name, {SIM_LABEL: "true"}))
        self.node_informer = Informer(client, "", "v1", "nodes", label_selector=f"{SIM_LABEL}=true")
        self.pod_informer = Informer(client, "", "v1", "pods", field_selector="spec.nodeName!=")
        self.pod_informer.add_indexer("node", lambda p: [(p.get("spec") or {}).get("nodeName") or ""])
        # Every upstream kubelet runs its own pod workers; one process standing in for thousands of nodes needs
        # many syncs in flight (each waits on a status write): 8 started about 17 pods/s on a busy server.
        self.workers = PodWorkers(client, self.pod_informer, self.nodes, workers)
        self.heartbeats = Heartbeats(client, self.nodes, heartbeat_interval, status_report)
        for h in self.nodes.values():
            h.runtime.on_event = self.workers.runtime_event
        self.node_informer.add_handler(self._node_changed, lambda old, new: self._node_changed(new), self._node_gone)
        self.pod_informer.add_handler(self._pod_changed, lambda old, new: self._pod_changed(new), self._pod_changed)
        self.ready = asyncio.Event()
        self.kubelet_server = None
        if client_ca is not None:
            self.kubelet_server = KubeletServer(self.nodes, lambda ns, name: self.pod_informer.get(f"{ns}/{name}"),
                                                self.pod_informer.list, client_ca, kubelet_address, kubelet_port)

    # --- informer handlers -------------------------------------------------------------------------
    def _node_changed(self, node: dict) -> None:
        h = self.nodes.get(node["metadata"]["name"])
        if h is None:
            return
        h.api_node = node
        h.uid = node["metadata"]["uid"]
        reachable = ((node["metadata"].get("annotations") or {}).get(HEARTBEAT_ANNOTATION) or "").lower() != "false"
        cidr = (node.get("spec") or {}).get("podCIDR") or ""
        changed = reachable != h.reachable or (cidr and str(h.runtime.pod_cidr or "") != cidr)
        h.reachable = reachable
        if cidr and str(h.runtime.pod_cidr or "") != cidr:
            h.runtime.update_runtime_config(cidr)
        if changed and reachable:
            self.heartbeats.kick(h.name)
            for pod in self.pod_informer.by_index("node", h.name):
                self.workers.enqueue(meta_key(pod))

    def _node_gone(self, node: dict) -> None:
        h = self.nodes.get(node["metadata"]["name"])
        if h is not None:  # deleted behind our back: register again, as a restarted kubelet would
            h.api_node, h.lease = None, None
            asyncio.get_running_loop().create_task(self._register(h))

    def _pod_changed(self, pod: dict) -> None:
        if (pod.get("spec") or {}).get("nodeName") in self.nodes:
            self.workers.enqueue(meta_key(pod))

    # --- running -------------------------------------------------------------------------------------
    async def _register(self, h: NodeHandle, sem: asyncio.Semaphore | None = None) -> None:
        """Create the Node and report its status at once; its Lease follows within one interval."""
        for attempt in range(10):
            try:
                async with sem or asyncio.Semaphore(1):
                    await register_node(self.client, h)
                    await post_node_status(self.client, h, time.monotonic())
                self.heartbeats.schedule(h.name)
                return
            except Exception as e:  # noqa: BLE001 - keep trying like the kubelet does
                log.warning("registering node %s failed: %s", h.name, e)
                await asyncio.sleep(min(2 ** attempt * 0.2, 5))

    async def run(self, stop: asyncio.Event) -> None:
        await wait_for_server(self.client)
        if self.kubelet_server is not None:
            await self.kubelet_server.start()
            for h in self.nodes.values():
                h.kubelet_port = self.kubelet_server.bound_port
                h.annotations[ADDRESS_ANNOTATION] = self.kubelet_server.host
        sem = asyncio.Semaphore(16)
        await asyncio.gather(*(self._register(h, sem) for h in self.nodes.values()))
        log.info("%d simulated nodes registered", len(self.nodes))
        tasks = [asyncio.create_task(self.node_informer.run(stop)), asyncio.create_task(self.pod_informer.run(stop)),
                 asyncio.create_task(self.heartbeats.run(stop))]
        await asyncio.gather(self.node_informer.synced.wait(), self.pod_informer.synced.wait())
        tasks.append(asyncio.create_task(self.workers.run(stop)))
        self.ready.set()
        try:
            await stop.wait()
        finally:
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.kubelet_server is not None:
                await self.kubelet_server.stop()


async def run_sim_nodes(client: RESTClient, stop: asyncio.Event, count: int, prefix: str = "sim-node-",
                        first: int = 0) -> None:
    await SimNodes(client, count, prefix, first).run(stop)
