"""Watch responses: chunked JSON lines from the watch cache.

A watch from revision R replays the cache history after R, then follows live events;
R older than the history gets one ERROR event with a 410 Expired Status, exactly as
upstream. With selectors, an object that starts or stops matching becomes ADDED or
DELETED for that watcher, as upstream's filtered watch does. Each event's bytes are
shared between watchers whenever nothing about it is specific to one of them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import orjson
from aiohttp import web

from ..api.resources import ResourceType
from .watchcache import CacheEvent, TooOldError

BOOKMARK_INTERVAL = 60.0
COALESCE_BELOW = 64
WRITE_CHUNK = 128 * 1024
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def watch_timeout(query) -> float:
    raw = query.get("timeoutSeconds")
    if raw:
        try:
            return max(0.0, float(int(raw)))
        except ValueError:
            pass
    return random.uniform(1800, 3600)


class WatchStream:
    """One client's watch: selection, encoding and the write loop."""

    def __init__(
        self,
        rt: ResourceType,
        key_prefix: str,
        matches: Callable[[dict], bool],
        encode_object: Callable[[dict], dict] | None,
        shareable: bool,
        bookmarks: bool,
    ):
        self.rt = rt
        self.key_prefix = key_prefix
        self.matches = matches
        self.encode_object = encode_object  # conversion/table hook; None = object as stored
        self.shareable = shareable
        self.bookmarks = bookmarks

    def selects(self, ev: CacheEvent) -> bool:
        if not ev.key.startswith(self.key_prefix):
            return False
        if ev.type == "MODIFIED":
            return self.matches(ev.obj) or (ev.prev is not None and self.matches(ev.prev))
        return self.matches(ev.obj)

    def line(self, ev: CacheEvent) -> bytes:
        etype = ev.type
        if etype == "MODIFIED" and ev.prev is not None:
            now_m, was_m = self.matches(ev.obj), self.matches(ev.prev)
            if now_m and not was_m:
                etype = "ADDED"
            elif was_m and not now_m:
                etype = "DELETED"
        if etype == ev.type and self.shareable:
            return ev.line()
        obj = self.encode_object(ev.obj) if self.encode_object else ev.obj
        return orjson.dumps({"type": etype, "object": obj}) + b"\n"

    def bookmark(self, revision: int, initial_end: bool = False) -> bytes:
        meta: dict = {"resourceVersion": str(revision)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        return orjson.dumps({"type": "BOOKMARK", "object": {
            "kind": self.rt.kind, "apiVersion": self.rt.api_version, "metadata": meta}}) + b"\n"


def expired_event(requested: int, oldest: int) -> bytes:
    return orjson.dumps({"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"too old resource version: {requested} ({oldest})",
        "reason": "Expired", "code": 410}}) + b"\n"


async def write_lines(response: web.StreamResponse, lines) -> None:
    """Write event lines in pieces of about WRITE_CHUNK bytes, waiting for the socket between them.

    One huge write (a replay of thousands of events) makes the transport buffer megabytes
    and move them around on every partial send; bounded pieces keep that linear."""
    pending: list[bytes] = []
    size = 0
    for line in lines:
        pending.append(line)
        size += len(line)
        if size >= WRITE_CHUNK:
            await response.write(b"".join(pending))
            pending, size = [], 0
    if pending:
        await response.write(b"".join(pending))


async def serve_watch(
    request: web.Request,
    cache,
    stream: WatchStream,
    resource_version: str,
    send_initial_events: bool | None,
) -> web.StreamResponse:
    query = request.query
    timeout = watch_timeout(query)
    deadline = time.monotonic() + timeout
    await cache.sync()
    bucket = cache.bucket(stream.rt.storage_key)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                       "Cache-Control": "no-cache, private"})
    response.enable_chunked_encoding()
    await response.prepare(request)

    initial: list[bytes] = []
    if resource_version in ("", "0") or send_initial_events:
        start = cache.revision
        for entry in bucket.items(stream.key_prefix):
            if stream.matches(entry.obj):
                obj = stream.encode_object(entry.obj) if stream.encode_object else entry.obj
                initial.append(orjson.dumps({"type": "ADDED", "object": obj}) + b"\n")
        if send_initial_events and stream.bookmarks:
            initial.append(stream.bookmark(start, initial_end=True))
    else:
        try:
            start = int(resource_version)
        except ValueError:
            start = -1
        if start < 0:
            await response.write(orjson.dumps({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": f"invalid resource version: {resource_version}", "reason": "BadRequest",
                "code": 400}}) + b"\n")
            await response.write_eof()
            return response
    try:
        watcher = bucket.watch(start, cache.revision, stream.selects)
    except TooOldError as e:
        await response.write(expired_event(e.requested, e.oldest))
        await response.write_eof()
        return response
    try:
        if initial:
            await write_lines(response, initial)
        next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            wait = deadline - now
            if stream.bookmarks:
                wait = min(wait, max(0.0, next_bookmark - now))
            batch = await watcher.next_batch(wait)
            if watcher.closed and not batch:
                break
            if batch and len(batch) < COALESCE_BELOW:
                # let writes finishing in this loop turn join the batch: one TLS record and
                # one send for many events when the server is busy, no delay when it is not
                await asyncio.sleep(0)
                batch += watcher.take_pending()
            if batch:
                await write_lines(response, (stream.line(ev) for ev in batch))
            elif stream.bookmarks and time.monotonic() >= next_bookmark:
                await response.write(stream.bookmark(cache.revision))
                next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
    except ConnectionResetError:
        return response
    finally:
        bucket.unwatch(watcher)
    try:
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response
