"""An event recorder as client-go's: core/v1 Events about objects, repeats counted.

`event(obj, type, reason, message)` returns at once; the write happens in the
background and never raises (failures are logged). Repeats of the same (object, type,
reason, message) within ten minutes PATCH the existing Event's `count` and
`lastTimestamp` instead of creating another, as upstream's event correlator does.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..api.meta import rfc3339
from .rest import ApiError, RESTClient

log = logging.getLogger("kybernetes.events")

NORMAL = "Normal"
WARNING = "Warning"
AGGREGATE_WINDOW = 600.0  # seconds a repeat still bumps the first Event's count
CACHE_SIZE = 4096


def object_reference(obj: dict) -> dict:
    meta = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""), "name": meta.get("name", ""),
           "namespace": meta.get("namespace", ""), "uid": meta.get("uid", ""),
           "resourceVersion": meta.get("resourceVersion", "")}
    return {k: v for k, v in ref.items() if v}


class EventRecorder:
    def __init__(self, client: RESTClient, component: str, host: str = ""):
        self.client = client
        self.component = component
        self.host = host
        # key -> (event name, namespace, count, first timestamp, monotonic time of last write)
        self._seen: dict[tuple, tuple[str, str, int, str, float]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._lock = asyncio.Lock()

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        """Record an event in the background (needs a running loop; otherwise only logs)."""
        try:
            task = asyncio.get_running_loop().create_task(self.emit(obj, type_, reason, message))
        except RuntimeError:
            log.info("event %s %s: %s", type_, reason, message)
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def eventf(self, obj: dict, type_: str, reason: str, fmt: str, *args) -> None:
        self.event(obj, type_, reason, fmt % args if args else fmt)

    async def flush(self) -> None:
        """Wait for the writes started so far (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def emit(self, obj: dict, type_: str, reason: str, message: str) -> dict | None:
        try:
            async with self._lock:
                return await self._write(obj, type_, reason, message)
        except Exception as e:  # noqa: BLE001 - recording an event must never fail its caller
            log.warning("could not record event %s/%s on %s: %s", type_, reason,
                        (obj.get("metadata") or {}).get("name"), e)
            return None

    async def _write(self, obj: dict, type_: str, reason: str, message: str) -> dict | None:
        ref = object_reference(obj)
        # upstream puts events about cluster-scoped objects in "default"
        namespace = ref.get("namespace") or "default"
        key = (ref.get("kind"), ref.get("apiVersion"), namespace, ref.get("name"), ref.get("uid"), type_, reason,
               message)
        stamp = rfc3339()
        mono = time.monotonic()
        seen = self._seen.get(key)
        if seen and mono - seen[4] < AGGREGATE_WINDOW:
            name, ns, count, first, _ = seen
            patch = {"count": count + 1, "lastTimestamp": stamp, "message": message}
            try:
                result = await self.client.patch("", "v1", "events", name, patch, ns,
                                                 patch_type="application/strategic-merge-patch+json")
                self._remember(key, (name, ns, count + 1, first, mono))
                return result
            except ApiError as e:
                if e.code != 404:
                    raise
                # the first Event expired or was deleted: start over with a new one
        name = f"{ref.get('name', 'unknown')}.{time.time_ns():x}"
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref,
            "reason": reason, "message": message, "type": type_,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "reportingComponent": self.component, "reportingInstance": self.host,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        }
        result = await self.client.create("", "v1", "events", body, namespace)
        self._remember(key, (name, namespace, 1, stamp, mono))
        return result

    def _remember(self, key: tuple, value: tuple) -> None:
        self._seen.pop(key, None)
        self._seen[key] = value
        while len(self._seen) > CACHE_SIZE:
            self._seen.pop(next(iter(self._seen)))

