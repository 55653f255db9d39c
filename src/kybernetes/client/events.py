"""An event recorder as client-go's: core/v1 Events about objects, repeats counted.

`event(obj, type, reason, message)` returns at once; the write happens in the
background and never raises (failures are logged). As upstream's event correlator:
- repeats of the same (object, type, reason, message) within ten minutes PATCH the
  existing Event's `count` and `lastTimestamp` instead of creating another;
- from the tenth distinct message of one (object, type, reason) within ten minutes on,
  they are combined into one Event, "(combined from similar events): <message>";
- a token bucket per object (burst 25, one more every 5 minutes) drops what exceeds it,
  so a ReplicaSet creating 1,000 pods writes 25 events, not 1,000.
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
AGGREGATE_MAX_EVENTS = 10  # distinct messages of one object and reason before they are combined
SPAM_BURST, SPAM_QPS = 25, 1.0 / 300.0  # client-go's defaultSpamBurst and defaultSpamQPS
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
        self._similar: dict[tuple, tuple[set[str], float]] = {}  # (object, type, reason) -> (messages, last)
        self._tokens: dict[tuple, tuple[float, float]] = {}  # object -> (tokens, monotonic time of last refill)
        self._tasks: set[asyncio.Task] = set()
        self._lock = asyncio.Lock()

    def event(self, obj: dict, type_: str, reason: str, message: str, field_path: str = "") -> None:
        """Record an event in the background (needs a running loop; otherwise only logs).
        `field_path` names the part of the object it is about (`spec.containers{web}`)."""
        try:
            # stamped now, as upstream's recorder does, not when the writes before it are done
            task = asyncio.get_running_loop().create_task(self.emit(obj, type_, reason, message, field_path,
                                                                    stamp=rfc3339()))
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

    async def emit(self, obj: dict, type_: str, reason: str, message: str, field_path: str = "",
                   stamp: str = "") -> dict | None:
        try:
            async with self._lock:
                return await self._write(obj, type_, reason, message, field_path, stamp)
        except Exception as e:  # noqa: BLE001 - recording an event must never fail its caller
            log.warning("could not record event %s/%s on %s: %s", type_, reason,
                        (obj.get("metadata") or {}).get("name"), e)
            return None

    async def _write(self, obj: dict, type_: str, reason: str, message: str, field_path: str = "",
                     stamp: str = "") -> dict | None:
        ref = object_reference(obj)
        if field_path:
            ref["fieldPath"] = field_path
        # upstream puts events about cluster-scoped objects in "default"
        namespace = ref.get("namespace") or "default"
        obj_key = (ref.get("kind"), ref.get("apiVersion"), namespace, ref.get("name"), ref.get("uid"), field_path)
        mono = time.monotonic()
        key, message = self._aggregate(obj_key + (type_, reason), message, mono)
        if not self._take_token(obj_key[:5], mono):  # the spam filter counts the whole object
            log.debug("event %s/%s on %s dropped: too many events about it", type_, reason, ref.get("name"))
            return None
        stamp = stamp or rfc3339()
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

    def _aggregate(self, similar_key: tuple, message: str, mono: float) -> tuple[tuple, str]:
        """(cache key, message): the event's own, or the combined event's once the object and reason
        have had AGGREGATE_MAX_EVENTS distinct messages within the window (upstream EventAggregate)."""
        messages, last = self._similar.get(similar_key, (set(), mono))
        if mono - last > AGGREGATE_WINDOW:
            messages = set()
        messages.add(message)
        _bounded_put(self._similar, similar_key, (messages, mono))
        if len(messages) < AGGREGATE_MAX_EVENTS:
            return similar_key + (message,), message
        messages.pop()  # the set stays at its limit
        return similar_key + (None,), "(combined from similar events): " + message

    def _take_token(self, obj_key: tuple, mono: float) -> bool:
        """The spam filter: a token bucket per object, as upstream's EventSourceObjectSpamFilter."""
        tokens, last = self._tokens.get(obj_key, (float(SPAM_BURST), mono))
        tokens = min(float(SPAM_BURST), tokens + (mono - last) * SPAM_QPS)
        allowed = tokens >= 1.0
        _bounded_put(self._tokens, obj_key, (tokens - 1.0 if allowed else tokens, mono))
        return allowed

    def _remember(self, key: tuple, value: tuple) -> None:
        _bounded_put(self._seen, key, value)


def _bounded_put(cache: dict, key, value) -> None:
    """Insert as most recent; the least recently written entries go beyond CACHE_SIZE (an LRU, as upstream's)."""
    cache.pop(key, None)
    cache[key] = value
    while len(cache) > CACHE_SIZE:
        cache.pop(next(iter(cache)))

