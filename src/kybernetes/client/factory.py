"""Shared informers: one list+watch per resource, however many controllers read it."""

from __future__ import annotations

import asyncio

from .informer import Informer
from .rest import RESTClient


class InformerFactory:
    def __init__(self, client: RESTClient):
        self.client = client
        self.informers: dict[tuple[str, str, str], Informer] = {}
        self._tasks: dict[tuple[str, str, str], asyncio.Task] = {}
        self._stop: asyncio.Event | None = None

    def informer(self, group: str, version: str, plural: str) -> Informer:
        key = (group, version, plural)
        inf = self.informers.get(key)
        if inf is None:
            inf = self.informers[key] = Informer(self.client, group, version, plural)
            if self._stop is not None:
                self._tasks[key] = asyncio.create_task(inf.run(self._stop))
        return inf

    def start(self, stop: asyncio.Event) -> None:
        self._stop = stop
        for key, inf in self.informers.items():
            if key not in self._tasks:
                self._tasks[key] = asyncio.create_task(inf.run(stop))

    async def wait_synced(self, *informers: Informer) -> None:
        await asyncio.gather(*(i.synced.wait() for i in informers or self.informers.values()))

    async def join(self) -> None:
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
