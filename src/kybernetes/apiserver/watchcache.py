"""The watch cache: one per resource prefix, serving lists, gets and watches from memory.

It lists its prefix once, then follows a single storage watch. Every change becomes a
`CacheEvent` appended to a bounded history; a client watch from revision R replays the
history after R and then follows live events. A watch from a revision older than the
history's start gets `410 Expired`, as upstream's cacher answers. Each event's JSON is
encoded once and the bytes shared by every watcher that receives it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from ..storage.interface import Event, KeyValue, Storage

log = logging.getLogger("kybernetes.watchcache")

DEFAULT_HISTORY = 20000
KEPT_LIMIT = 4096  # objects handed over by writers and not yet seen on the storage watch


class KeptCheck:
    """KYB_VERIFY_KEPT=1 (the test suite sets it): every object a writer hands over is compared with
    what decoding the stored bytes gives, when it arrives and again a second later (a writer that
    changed it after handing it over), and a difference ends the process at once with exit code 3,
    so that no test can pass over it."""

    def __init__(self):
        self.pending: deque[tuple[float, str, dict, dict]] = deque()

    def arrived(self, key: str, kept: dict, decoded: dict) -> None:
        self._compare(key, kept, decoded)
        self.pending.append((time.monotonic() + 1.0, key, kept, decoded))
        while self.pending and self.pending[0][0] <= time.monotonic():
            _, k, a, b = self.pending.popleft()
            self._compare(k, a, b)

    def finish(self) -> None:
        while self.pending:
            _, k, a, b = self.pending.popleft()
            self._compare(k, a, b)

    @staticmethod
    def _compare(key: str, kept: dict, decoded: dict) -> None:
        if kept != decoded:
            log.critical("kept object diverged from its stored bytes at %s:\nkept    %s\ndecoded %s",
                         key, kept, decoded)
            logging.shutdown()
            os._exit(3)


KEPT_CHECK = KeptCheck() if os.environ.get("KYB_VERIFY_KEPT") == "1" else None


def decode(kv: KeyValue, revision: int | None = None) -> dict:
    """Object from storage bytes, with resourceVersion set from the revision."""
    obj = orjson.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision if revision is not None else kv.mod_revision)
    return obj


@dataclass(slots=True)
class CacheEvent:
    type: str  # ADDED, MODIFIED, DELETED
    key: str
    obj: dict
    revision: int
    prev: dict | None = None
    _line: bytes | None = None

    def line(self) -> bytes:
        """The event as one JSON line, encoded once and shared."""
        if self._line is None:
            self._line = orjson.dumps({"type": self.type, "object": self.obj}) + b"\n"
        return self._line


@dataclass(slots=True)
class Entry:
    obj: dict
    revision: int
    _bytes: bytes | None = None

    def encoded(self) -> bytes:
        if self._bytes is None:
            self._bytes = orjson.dumps(self.obj)
        return self._bytes


class TooOldError(Exception):
    def __init__(self, requested: int, oldest: int):
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(eq=False)
class Watcher:
    """One client watch: events are appended by the cache and drained by the client."""

    matches: Callable[[CacheEvent], bool]
    pending: list = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    def push(self, event: CacheEvent) -> None:
        self.pending.append(event)
        self.wake.set()

    async def next_batch(self, timeout: float | None = None) -> list[CacheEvent]:
        """Wait for events; an empty list means timeout or closed."""
        if not self.pending and not self.closed:
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout)
            except TimeoutError:
                return []
        batch, self.pending = self.pending, []
        return batch

    def take_pending(self) -> list[CacheEvent]:
        batch, self.pending = self.pending, []
        return batch


def bucket_of(key: str) -> str:
    """"/registry/core/pods/ns/name" -> "/registry/core/pods/"."""
    parts = key.split("/", 4)
    return "/".join(parts[:4]) + "/"


class Bucket:
    """The objects and recent events of one resource (one storage prefix)."""

    def __init__(self, prefix: str, oldest: int, history_limit: int, kept: dict | None = None):
        self.prefix = prefix
        self.kept = kept if kept is not None else {}  # (key, revision) -> the object a writer handed over
        self.store: dict[str, Entry] = {}
        self.history: deque[CacheEvent] = deque()
        self.history_limit = history_limit
        self.oldest = oldest  # watches from revisions >= oldest can be served
        self.watchers: set[Watcher] = set()

    def apply(self, ev: Event) -> None:
        kv = ev.kv
        rev = kv.mod_revision
        old = self.store.get(kv.key)
        if ev.type == "DELETE":
            if old is None:
                return
            obj = dict(old.obj)
            obj["metadata"] = dict(obj["metadata"], resourceVersion=str(rev))
            del self.store[kv.key]
            cev = CacheEvent("DELETED", kv.key, obj, rev, old.obj)
        else:
            obj = self.kept.pop((kv.key, rev), None) if self.kept else None
            if obj is None:
                obj = decode(kv)
            elif KEPT_CHECK is not None:
                KEPT_CHECK.arrived(kv.key, obj, decode(kv))
            self.store[kv.key] = Entry(obj, rev)
            cev = CacheEvent("MODIFIED" if old is not None else "ADDED", kv.key, obj, rev, old.obj if old else None)
        self.history.append(cev)
        if len(self.history) > self.history_limit:
            self.oldest = self.history.popleft().revision
        for w in self.watchers:
            if w.matches(cev):
                w.push(cev)

    def items(self, key_prefix: str) -> list[Entry]:
        """Entries under a key prefix (a namespace or the whole resource), in key order."""
        if key_prefix == self.prefix:
            keys = sorted(self.store)
        else:
            keys = sorted(k for k in self.store if k.startswith(key_prefix))
        return [self.store[k] for k in keys]

    def watch(self, from_revision: int, current: int, matches: Callable[[CacheEvent], bool]) -> Watcher:
        """A watcher seeded with every history event after `from_revision`."""
        if from_revision < self.oldest:
            raise TooOldError(from_revision, self.oldest)
        w = Watcher(matches)
        if from_revision < current:
            for ev in self.history:
                if ev.revision > from_revision and matches(ev):
                    w.pending.append(ev)
            if w.pending:
                w.wake.set()
        self.watchers.add(w)
        return w

    def unwatch(self, w: Watcher) -> None:
        self.watchers.discard(w)


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


class WatchCache:
    """Everything under /registry/, kept in memory and bucketed by resource.

    One storage watch feeds all buckets, so the cache always knows the cluster-wide
    revision it reflects; a read waits until that revision reaches storage's current
    one, which gives read-your-writes without touching storage.
    """

    def __init__(self, storage: Storage, root: str = "/registry/", history: int = DEFAULT_HISTORY):
        self.storage = storage
        self.root = root
        self.buckets: dict[str, Bucket] = {}
        self.history_limit = history
        self.revision = 0
        self.start_revision = 0
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._storage_watch = None
        self.kept: dict[tuple[str, int], dict] = {}

    def bucket(self, prefix: str) -> Bucket:
        b = self.buckets.get(prefix)
        if b is None:
            b = self.buckets[prefix] = Bucket(prefix, self.start_revision, self.history_limit, self.kept)
        return b

    def keep(self, key: str, revision: int, obj: dict) -> None:
        """The object a write just stored at `revision`, as decoding its bytes would give it, handed
        over by a writer that will only read it from now on: the cache takes it instead of decoding
        the stored bytes again (a tenth of the API server's CPU under a write load). Nobody may
        change it afterwards, the writer included."""
        if len(self.kept) >= KEPT_LIMIT:  # events that never came (a storage watch restarted)
            self.kept.clear()
        self.kept[(key, revision)] = obj

    async def start(self) -> None:
        kvs, rev = await self.storage.list(self.root)
        self.revision = self.start_revision = rev
        for kv in kvs:
            self.bucket(bucket_of(kv.key)).store[kv.key] = Entry(decode(kv), kv.mod_revision)
        self._storage_watch = self.storage.watch(self.root, rev)
        self._task = asyncio.create_task(self._follow(), name="watchcache")
        self._ready.set()

    async def stop(self) -> None:
        if KEPT_CHECK is not None:
            KEPT_CHECK.finish()
        if self._storage_watch is not None:
            self._storage_watch.close()
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for b in self.buckets.values():
            for w in list(b.watchers):
                w.closed = True
                w.wake.set()

    async def _follow(self) -> None:
        try:
            async for batch in self._storage_watch:
                for ev in batch:
                    self.bucket(bucket_of(ev.kv.key)).apply(ev)
                    self.revision = ev.kv.mod_revision
                self._release_waiters()
        except asyncio.CancelledError:
            raise
        except Exception:  # a dead cache must be visible, not silent
            log.exception("watch cache stopped")
            raise

    def _release_waiters(self) -> None:
        if not self._waiters:
            return
        keep = []
        for rev, fut in self._waiters:
            if self.revision >= rev:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((rev, fut))
        self._waiters = keep

    async def wait_for(self, revision: int, timeout: float = 5.0) -> None:
        """Block until the cache reflects `revision`."""
        await self._ready.wait()
        if self.revision >= revision:
            return
        # a future and a timer, not asyncio.wait_for: every pod create waits here once under load,
        # and wait_for's extra futures and callbacks cost more than the wait
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._waiters.append((revision, fut))
        timer = loop.call_later(timeout, _expire, fut)
        try:
            await fut
        finally:
            timer.cancel()

    async def sync(self) -> None:
        """Catch up with storage's current revision (consistent reads)."""
        await self.wait_for(await self.storage.current_revision())
