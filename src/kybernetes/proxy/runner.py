"""Bounded syncs: changes are coalesced for `min_interval`, and at most one sync runs at a time.

Upstream's BoundedFrequencyRunner, small: `request()` from event handlers, `run(stop)` owns
the only task that calls the sync function; a failed sync is retried after `retry` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("kybernetes.proxy")


class SyncRunner:
    def __init__(self, name: str, fn: Callable[[], Awaitable[object]], min_interval: float = 0.1,
                 retry: float = 1.0, periodic: float = 0.0):
        self.name, self.fn = name, fn
        self.min_interval, self.retry, self.periodic = min_interval, retry, periodic
        self._wake = asyncio.Event()
        self.runs = 0
        self.failures = 0
        self.last_requested = 0.0
        self.synced = asyncio.Event()

    def request(self) -> None:
        if not self._wake.is_set():
            self.last_requested = time.monotonic()
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                waiter = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({waiter, stopper}, timeout=self.periodic or None,
                                   return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if stop.is_set():
                    return
                await asyncio.sleep(self.min_interval)  # coalesce a burst of changes into one sync
                self._wake.clear()
                try:
                    await self.fn()
                    self.runs += 1
                    self.synced.set()
                except Exception as e:  # noqa: BLE001 - retried; the proxy never dies of one bad sync
                    self.failures += 1
                    log.warning("%s sync failed (retrying in %.1fs): %s", self.name, self.retry, e)
                    await asyncio.sleep(self.retry)
                    self._wake.set()
        finally:
            stopper.cancel()
