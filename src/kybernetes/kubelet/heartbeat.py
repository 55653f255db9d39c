"""Node heartbeats for many nodes from one loop: Lease renewals and node status reports.

Each node renews its Lease in `kube-node-lease` every `interval` seconds (upstream:
a quarter of the 40 s lease duration) and re-posts its status every `report` seconds
or at once when the API holds another status. One loop serves all nodes of the
process: renewals are spread over the interval with jitter and run a bounded number
at a time, so thousands of nodes make a steady trickle of requests, not bursts.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time

from ..api.meta import rfc3339_micro
from ..client.rest import ApiError, RESTClient
from .node import NodeHandle, post_node_status, status_outdated

log = logging.getLogger("kybernetes.kubelet.heartbeat")

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40


def lease_object(h: NodeHandle) -> dict:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": h.name, "namespace": LEASE_NAMESPACE,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": h.name, "uid": h.uid}]},
            "spec": {"holderIdentity": h.name, "leaseDurationSeconds": LEASE_DURATION,
                     "renewTime": rfc3339_micro()}}


async def renew_lease(client: RESTClient, h: NodeHandle) -> None:
    """Update the cached Lease's renewTime; on a conflict or a missing Lease, read or create it."""
    for _ in range(3):
        if h.lease is None:
            try:
                h.lease = await client.get("coordination.k8s.io", "v1", "leases", h.name, LEASE_NAMESPACE)
            except ApiError as e:
                if e.code != 404:
                    raise
                try:
                    h.lease = await client.create("coordination.k8s.io", "v1", "leases", lease_object(h),
                                                  LEASE_NAMESPACE)
                    return
                except ApiError as e2:
                    if e2.code != 409:
                        raise
                    continue
        lease = h.lease
        lease.setdefault("spec", {}).update(holderIdentity=h.name, leaseDurationSeconds=LEASE_DURATION,
                                            renewTime=rfc3339_micro())
        try:
            h.lease = await client.update("coordination.k8s.io", "v1", "leases", lease, LEASE_NAMESPACE)
            return
        except ApiError as e:
            if e.code not in (404, 409):
                raise
            h.lease = None


class Heartbeats:
    def __init__(self, client: RESTClient, nodes: dict[str, NodeHandle], interval: float = 10.0,
                 report: float = 300.0, concurrency: int = 64, jitter: float = 0.04):
        self.client = client
        self.nodes = nodes
        self.interval, self.report, self.jitter = interval, report, jitter
        # 64 in flight: at 5,000 nodes (500 renewals/s) a loaded API server answers in hundreds of ms, and
        # 16 slots then renewed fewer Leases than fall due, so nodes went NotReady
        self.sem = asyncio.Semaphore(concurrency)
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}  # the one valid entry per node; others in the heap are stale
        self._wake = asyncio.Event()
        self.beats = 0

    def schedule(self, name: str, delay: float | None = None) -> None:
        """Beat for `name` after `delay` (default: a random point of the interval, spreading the nodes)."""
        if delay is None:
            delay = random.uniform(0, self.interval)
        due = time.monotonic() + delay
        self._due[name] = due
        heapq.heappush(self._heap, (due, name))
        self._wake.set()

    def kick(self, name: str) -> None:
        self.schedule(name, 0.0)

    async def beat(self, h: NodeHandle) -> None:
        if not h.reachable:
            return
        async with self.sem:
            try:
                await renew_lease(self.client, h)
                now = time.monotonic()
                if status_outdated(h) or now - h.last_status_post >= self.report:
                    await post_node_status(self.client, h, now)
                self.beats += 1
            except Exception as e:  # noqa: BLE001 - a failed beat is retried at the next one
                log.warning("heartbeat of node %s failed: %s", h.name, e)

    async def run(self, stop: asyncio.Event) -> None:
        pending: set[asyncio.Task] = set()
        while not stop.is_set():
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                due, name = heapq.heappop(self._heap)
                h = self.nodes.get(name)
                if h is None or self._due.get(name) != due:
                    continue  # replaced by a later schedule() or a kick
                nxt = now + self.interval * (1 + random.uniform(-self.jitter, self.jitter))
                self._due[name] = nxt
                heapq.heappush(self._heap, (nxt, name))
                task = asyncio.create_task(self.beat(h))
                pending.add(task)
                task.add_done_callback(pending.discard)
            timeout = max(0.0, self._heap[0][0] - time.monotonic()) if self._heap else self.interval
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
