"""Informers: list then watch one resource, keep a local cache, tell handlers.

Resumes the watch from the last revision it saw; on 410 Expired it lists again and
reports the differences. Reads in controllers come from `store`, never from the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp

from .rest import ApiError, RESTClient

log = logging.getLogger("kybernetes.informer")


def meta_key(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


class Informer:
    def __init__(self, client: RESTClient, group: str, version: str, plural: str, namespace: str = "",
                 label_selector: str = "", field_selector: str = "", resync: float = 0):
        self.client = client
        self.gvr = (group, version, plural)
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync = resync
        self.store: dict[str, dict] = {}
        self.indexers: dict[str, Callable[[dict], list[str]]] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self.handlers: list[tuple[Callable | None, Callable | None, Callable | None]] = []
        self.synced = asyncio.Event()
        self.revision = ""

    def add_handler(self, on_add=None, on_update=None, on_delete=None) -> None:
        self.handlers.append((on_add, on_update, on_delete))

    def add_indexer(self, name: str, fn: Callable[[dict], list[str]]) -> None:
        self.indexers[name] = fn
        self._indices[name] = {}
        for key, obj in self.store.items():
            for value in fn(obj):
                self._indices[name].setdefault(value, set()).add(key)

    def by_index(self, name: str, value: str) -> list[dict]:
        return [self.store[k] for k in self._indices[name].get(value, ()) if k in self.store]

    def get(self, key: str) -> dict | None:
        return self.store.get(key)

    def list(self) -> list[dict]:
        return list(self.store.values())

    # --- cache maintenance ------------------------------------------------------------------------
    def _index(self, key: str, old: dict | None, new: dict | None) -> None:
        for name, fn in self.indexers.items():
            idx = self._indices[name]
            for value in fn(old) if old else ():
                idx.get(value, set()).discard(key)
            for value in fn(new) if new else ():
                idx.setdefault(value, set()).add(key)

    def _put(self, obj: dict) -> None:
        key = meta_key(obj)
        old = self.store.get(key)
        self.store[key] = obj
        self._index(key, old, obj)
        for on_add, on_update, _ in self.handlers:
            if old is None and on_add:
                on_add(obj)
            elif old is not None and on_update:
                on_update(old, obj)

    def _remove(self, obj: dict) -> None:
        key = meta_key(obj)
        old = self.store.pop(key, None)
        self._index(key, old, None)
        for _, _, on_delete in self.handlers:
            if on_delete:
                on_delete(old or obj)

    def _params(self) -> dict:
        return {"labelSelector": self.label_selector or None, "fieldSelector": self.field_selector or None}

    async def _list(self) -> None:
        result = await self.client.list(*self.gvr, self.namespace, **self._params())
        seen = set()
        for obj in result.get("items") or ():
            obj.setdefault("apiVersion", result.get("apiVersion"))
            obj.setdefault("kind", (result.get("kind") or "").removesuffix("List"))
            seen.add(meta_key(obj))
            self._put(obj)
        for key in [k for k in self.store if k not in seen]:
            self._remove(self.store[key])
        self.revision = result["metadata"]["resourceVersion"]
        self.synced.set()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        need_list = True
        while not stop.is_set():
            try:
                if need_list:
                    await self._list()
                    need_list = False
                await self._watch(stop)
                backoff = 0.2
            except ApiError as e:
                if e.code == 410:
                    need_list = True
                    continue
                log.warning("%s: %s", "/".join(self.gvr), e)
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as e:
                log.debug("%s: watch broke: %s", "/".join(self.gvr), e)
            if stop.is_set():
                return
            try:
                await asyncio.wait_for(stop.wait(), backoff)
            except TimeoutError:
                pass
            backoff = min(backoff * 2, 5.0)

    async def _watch(self, stop: asyncio.Event) -> None:
        params = {**self._params(), "resourceVersion": self.revision, "allowWatchBookmarks": True,
                  "timeoutSeconds": 300}
        stream = self.client.watch(*self.gvr, self.namespace, **params)

        async def consume() -> None:
            async for event in stream:
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise ApiError(obj, int(obj.get("code") or 500))
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if rv:
                    self.revision = rv
                if kind in ("ADDED", "MODIFIED"):
                    self._put(obj)
                elif kind == "DELETED":
                    self._remove(obj)

        # One task reads the whole stream (a task and a wait per event cost more than the event itself);
        # stopping cancels it.
        consumer = asyncio.ensure_future(consume())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            done, _ = await asyncio.wait({consumer, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if consumer in done:
                consumer.result()
        finally:
            stopper.cancel()
            if not consumer.done():
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer
            await stream.aclose()
