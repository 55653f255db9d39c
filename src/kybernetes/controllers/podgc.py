"""Pod garbage collection (upstream podgc): clean up pods nobody else will.

Every `gc-period` (20 s):
- terminated pods (Succeeded/Failed) beyond `--terminated-pod-gc-threshold` (12500; 0
  disables) are deleted, oldest first;
- pods bound to a Node that no longer exists are deleted once the Node has been
  missing for the quarantine time (40 s), after marking them Failed (DisruptionTarget
  DeletionByPodGC), with grace period 0;
- pods being deleted that were never scheduled are deleted with grace period 0.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..api.meta import rfc3339
from ..client.rest import ApiError
from .base import Controller

log = logging.getLogger("kybernetes.controllers.podgc")

GC_KEY = "podgc"
QUARANTINE = 40.0


class PodGCController(Controller):
    name = "pod-garbage-collector"
    workers = 1

    def __init__(self, ctx):
        super().__init__(ctx)
        opts = getattr(ctx, "options", None) or {}
        threshold = opts.get("terminated_pod_gc_threshold")
        self.threshold = 12500 if threshold is None else int(threshold)
        self.period = float(opts.get("pod_gc_period") or 20.0)
        self.quarantine = float(opts.get("pod_gc_quarantine") or QUARANTINE)
        self.pods = self.watch("", "v1", "pods", lambda pod: [])
        self.nodes = self.watch("", "v1", "nodes", lambda node: [])
        self.missing_since: dict[str, float] = {}

    async def run(self, stop: asyncio.Event) -> None:
        ticker = asyncio.create_task(self._tick(stop))
        try:
            await super().run(stop)
        finally:
            ticker.cancel()

    async def _tick(self, stop: asyncio.Event) -> None:
        await self.ctx.informers.wait_synced(*self.watched)
        while not stop.is_set():
            self.queue.add(GC_KEY)
            try:
                await asyncio.wait_for(stop.wait(), self.period)
            except TimeoutError:
                pass

    async def reconcile(self, key: str) -> None:
        pods = self.pods.list()
        if self.threshold > 0:
            await self.gc_terminated(pods)
        await self.gc_orphaned(pods)
        await self.gc_unscheduled_terminating(pods)

    async def _delete(self, pod: dict, force: bool) -> None:
        meta = pod["metadata"]
        body = {"preconditions": {"uid": meta["uid"]}}
        if force:
            body["gracePeriodSeconds"] = 0
        try:
            await self.client.delete("", "v1", "pods", meta["name"], meta.get("namespace", ""), body=body)
        except ApiError as e:
            if e.code not in (404, 409):
                raise

    async def gc_terminated(self, pods: list[dict]) -> None:
        done = [p for p in pods if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")
                and not p["metadata"].get("deletionTimestamp")]
        excess = len(done) - self.threshold
        if excess <= 0:
            return
        done.sort(key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))
        log.info("deleting %d terminated pods over the threshold of %d", excess, self.threshold)
        for pod in done[:excess]:
            await self._delete(pod, force=False)

    async def gc_orphaned(self, pods: list[dict]) -> None:
        now = time.monotonic()
        missing: set[str] = set()
        for pod in pods:
            node = (pod.get("spec") or {}).get("nodeName")
            if node and self.nodes.get(node) is None:
                missing.add(node)
        for node in list(self.missing_since):
            if node not in missing:
                del self.missing_since[node]
        gone: set[str] = set()
        for node in missing:
            first = self.missing_since.setdefault(node, now)
            if now - first < self.quarantine:
                continue
            try:  # the cache may lag: ask the server before deleting anything
                await self.client.get("", "v1", "nodes", node)
            except ApiError as e:
                if e.code == 404:
                    gone.add(node)
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") in gone:
                await self._mark_failed(pod, "PodGC: node no longer exists")
                await self._delete(pod, force=True)

    async def gc_unscheduled_terminating(self, pods: list[dict]) -> None:
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp") and not (pod.get("spec") or {}).get("nodeName"):
                await self._delete(pod, force=True)

    async def _mark_failed(self, pod: dict, message: str) -> None:
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        conds = [c for c in status.get("conditions") or () if c.get("type") != "DisruptionTarget"]
        conds.append({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                      "message": message, "lastTransitionTime": rfc3339()})
        meta = pod["metadata"]
        try:
            await self.client.patch("", "v1", "pods", meta["name"], {"status": {"phase": "Failed", "conditions": conds}},
                                    meta.get("namespace", ""), subresource="status")
        except ApiError as e:
            if e.code != 404:
                raise
