"""What the kubelet reads from the API for a pod's environment and volumes.

As upstream's kubelet, through caches fed by watches once a stop event is given:
- ConfigMaps and Secrets: one watch per object a pod asked for (`fieldSelector=metadata.name=`,
  upstream's watch-based configmap and secret managers). A watch nobody read for
  `IDLE_SECONDS` is stopped: the volume resync reads the ones pods still mount every few seconds.
- Services: one informer over every namespace (upstream's service lister), for the
  environment variables of the Services.
Without a stop event (tests, one-off readers) every read is a request. Claims and volumes
are read directly; TokenRequest is a create. `None` stands for an object that does not exist.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from ..client.informer import Informer
from ..client.rest import ApiError, RESTClient

IDLE_SECONDS = 300.0
SYNC_WAIT = 5.0  # a cache not listed by then (API away, forbidden): the read goes to the API itself


@dataclass
class _Watched:
    informer: Informer
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    used: float = 0.0


class ObjectSource:
    def __init__(self, client: RESTClient, stop: asyncio.Event | None = None):
        self.client = client
        self.stop = stop
        self._watched: dict[tuple[str, str, str], _Watched] = {}
        self._services: _Watched | None = None
        self._closer: asyncio.Task | None = None  # stops every watch when the agent stops

    async def _get(self, group: str, version: str, plural: str, name: str, namespace: str = "") -> dict | None:
        try:
            return await self.client.get(group, version, plural, name, namespace)
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    def _start(self, informer: Informer) -> _Watched:
        w = _Watched(informer, used=time.monotonic())
        w.task = asyncio.get_running_loop().create_task(informer.run(w.stop))
        if self._closer is None:
            self._closer = asyncio.ensure_future(self._close_on_stop())
        return w

    async def _close_on_stop(self) -> None:
        await self.stop.wait()
        for w in [*self._watched.values(), *([self._services] if self._services else [])]:
            w.stop.set()

    async def _synced(self, w: _Watched) -> bool:
        w.used = time.monotonic()
        if not w.informer.synced.is_set():
            try:
                await asyncio.wait_for(w.informer.synced.wait(), SYNC_WAIT)
            except TimeoutError:
                return False
        return True

    async def _cached(self, plural: str, namespace: str, name: str) -> dict | None:
        if self.stop is None:
            return await self._get("", "v1", plural, name, namespace)
        self._expire()
        key = (plural, namespace, name)
        w = self._watched.get(key)
        if w is None:
            w = self._watched[key] = self._start(Informer(self.client, "", "v1", plural, namespace,
                                                          field_selector=f"metadata.name={name}"))
        if not await self._synced(w):
            return await self._get("", "v1", plural, name, namespace)
        return w.informer.get(f"{namespace}/{name}")

    def _expire(self) -> None:
        idle = time.monotonic() - IDLE_SECONDS
        for key in [k for k, w in self._watched.items() if w.used < idle]:
            self._watched.pop(key).stop.set()

    async def configmap(self, namespace: str, name: str) -> dict | None:
        return await self._cached("configmaps", namespace, name)

    async def secret(self, namespace: str, name: str) -> dict | None:
        return await self._cached("secrets", namespace, name)

    async def claim(self, namespace: str, name: str) -> dict | None:
        return await self._get("", "v1", "persistentvolumeclaims", name, namespace)

    async def volume(self, name: str) -> dict | None:
        return await self._get("", "v1", "persistentvolumes", name)

    async def services(self, namespace: str) -> list[dict]:
        """The Services of `namespace` and of `default` (which holds the `kubernetes` Service)."""
        wanted = {namespace, "default"}
        if self.stop is not None:
            if self._services is None:
                self._services = self._start(Informer(self.client, "", "v1", "services"))
            if await self._synced(self._services):
                return [s for s in self._services.informer.list() if s["metadata"].get("namespace") in wanted]
        out = (await self.client.list("", "v1", "services", namespace)).get("items") or []
        if namespace != "default":
            out += (await self.client.list("", "v1", "services", "default")).get("items") or []
        return out

    async def token(self, namespace: str, account: str, spec: dict) -> dict:
        """TokenRequest: `status` with `token` and `expirationTimestamp`."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        out = await self.client.create("", "v1", "serviceaccounts", body, namespace, subresource="token", name=account)
        return out.get("status") or {}
