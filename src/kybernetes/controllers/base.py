"""The shared controller loop: informer events become keys, workers call `reconcile(key)`.

A controller only maps events to keys and reconciles one key from informer caches; the
loop owns retries with per-key backoff and the work queue's "done" (DESIGN.md habit 3).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ..client.factory import InformerFactory
from ..client.informer import Informer, meta_key
from ..client.rest import ApiError, RESTClient
from ..client.workqueue import WorkQueue

log = logging.getLogger("kybernetes.controllers")


class Requeue(Exception):
    """Not an error: try this key again after `after` seconds."""

    def __init__(self, after: float = 1.0):
        super().__init__(f"requeue after {after}s")
        self.after = after


@dataclass
class ControllerContext:
    client: RESTClient
    informers: InformerFactory


class Controller:
    name = "controller"
    workers = 2

    def __init__(self, ctx: ControllerContext):
        self.ctx = ctx
        self.client = ctx.client
        self.queue = WorkQueue()
        self.watched: list[Informer] = []

    def watch(self, group: str, version: str, plural: str, to_keys=None) -> Informer:
        """Share an informer; by default each changed object queues its own key."""
        inf = self.ctx.informers.informer(group, version, plural)
        keys = to_keys or (lambda obj: [meta_key(obj)])

        def enqueue(obj):
            for key in keys(obj):
                self.queue.add(key)

        inf.add_handler(enqueue, lambda old, new: enqueue(new), enqueue)
        self.watched.append(inf)
        return inf

    async def reconcile(self, key) -> None:
        raise NotImplementedError

    async def put_status(self, group: str, version: str, plural: str, obj: dict, status: dict) -> dict | None:
        """Write `status` through the object's /status: None when the object is gone; a write
        conflict (someone else wrote first) retries the key at once with fresh caches."""
        try:
            return await self.client.update(group, version, plural, {**obj, "status": status},
                                            obj["metadata"].get("namespace", ""), subresource="status")
        except ApiError as e:
            if e.code == 404:
                return None
            if e.code == 409:
                raise Requeue(0.05) from None
            raise

    async def run(self, stop: asyncio.Event) -> None:
        await self.ctx.informers.wait_synced(*self.watched)
        workers = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        await stop.wait()
        self.queue.shutdown()
        await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            try:
                await self.reconcile(key)
                self.queue.forget(key)
            except Requeue as r:
                self.queue.add_after(key, r.after)
            except Exception as e:  # noqa: BLE001 - any failure is retried with backoff
                log.warning("%s: reconcile %s failed: %s", self.name, key, e)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)
