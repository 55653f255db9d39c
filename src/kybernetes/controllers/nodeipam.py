"""Node IPAM: every Node gets its own pod CIDR out of the cluster CIDR (upstream nodeipam, range allocator).

The cluster CIDR (`--cluster-cidr`, default 10.42.0.0/16) is cut into /24s
(`node-cidr-mask-size`); a Node without `spec.podCIDR` gets the lowest free one in
`spec.podCIDR` and `spec.podCIDRs`. What is in use is rebuilt from the Nodes at start,
so a CIDR is never handed out twice; a deleted Node's CIDR becomes free again.
"""

from __future__ import annotations

import ipaddress
import logging

from ..client.rest import ApiError
from .base import Controller, Requeue

log = logging.getLogger("kybernetes.controllers.nodeipam")


class NodeIPAMController(Controller):
    name = "node-ipam"
    # A CIDR is chosen and marked used before the patch is awaited, so workers never race for one; several
    # workers keep many patches in flight (one at a time gave about 50 nodes/s on a busy server).
    workers = 8

    def __init__(self, ctx):
        super().__init__(ctx)
        opts = getattr(ctx, "options", None) or {}
        self.cluster_cidr = ipaddress.ip_network(opts.get("cluster_cidr") or "10.42.0.0/16", strict=False)
        self.mask = int(opts.get("node_cidr_mask_size") or (24 if self.cluster_cidr.version == 4 else 64))
        if self.mask < self.cluster_cidr.prefixlen:
            raise ValueError(f"node CIDR mask /{self.mask} is larger than the cluster CIDR {self.cluster_cidr}")
        self.nodes = self.watch("", "v1", "nodes")
        self.used: dict[str, str] = {}  # CIDR -> node name
        self.by_node: dict[str, str] = {}
        self._rebuilt = False
        self._net = int(self.cluster_cidr.network_address)
        self._step = 1 << (self.cluster_cidr.max_prefixlen - self.mask)
        self._count = 1 << (self.mask - self.cluster_cidr.prefixlen)
        self._low = 0  # no subnet below this index is free (the scan for the lowest free one starts here)

    def _occupy(self, node: str, cidr: str) -> None:
        self.used[cidr] = node
        self.by_node[node] = cidr

    def _rebuild(self) -> None:
        for node in self.nodes.list():
            cidr = (node.get("spec") or {}).get("podCIDR")
            if cidr:
                self._occupy(node["metadata"]["name"], str(ipaddress.ip_network(cidr, strict=False)))
        self._rebuilt = True

    def _subnet(self, index: int) -> str:
        return str(ipaddress.ip_network((self._net + index * self._step, self.mask)))

    def _release(self, cidr: str) -> None:
        net = ipaddress.ip_network(cidr, strict=False)
        if net.prefixlen == self.mask and net.subnet_of(self.cluster_cidr):
            self._low = min(self._low, (int(net.network_address) - self._net) // self._step)

    def _next_free(self) -> str | None:
        """The lowest free subnet; `_low` skips the prefix known to be taken (was a scan from the start)."""
        while self._low < self._count:
            s = self._subnet(self._low)
            if s not in self.used:
                return s
            self._low += 1
        return None

    async def reconcile(self, name: str) -> None:
        if not self._rebuilt:
            self._rebuild()
        node = self.nodes.get(name)
        if node is None:
            cidr = self.by_node.pop(name, None)
            if cidr is not None and self.used.get(cidr) == name:
                del self.used[cidr]
                self._release(cidr)
            return
        spec = node.get("spec") or {}
        if spec.get("podCIDR"):
            cidr = str(ipaddress.ip_network(spec["podCIDR"], strict=False))
            if self.used.get(cidr, name) != name:
                log.warning("nodes %s and %s both have pod CIDR %s", name, self.used[cidr], cidr)
            self._occupy(name, cidr)
            return
        cidr = self.by_node.get(name) or self._next_free()
        if cidr is None:
            log.error("cluster CIDR %s is exhausted: node %s gets no pod CIDR", self.cluster_cidr, name)
            raise Requeue(30.0)
        self._occupy(name, cidr)
        try:
            await self.client.patch("", "v1", "nodes", name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except ApiError as e:
            if e.code == 404:
                return
            raise
        log.info("node %s: pod CIDR %s", name, cidr)
