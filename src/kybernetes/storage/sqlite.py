"""The SQLite backend: current state plus a revision log, one writer, etcd's semantics.

Two tables. `kv` holds the live value of every key (lists scan it: O(live keys)); `log`
holds one row per revision (watches replay it; compaction trims it). Both change in the
same transaction, so a crash leaves either the whole write or none of it. The database
runs in WAL mode with one writer: the event loop itself, which serialises writes and
runs each (tens of microseconds) inline, since handing every write to a thread cost more
than the write (BENCHMARKS.md). Reads that may be long (history replay for a watch, a
list at an old revision) run in a thread on a second connection, as do WAL checkpoints; compaction
runs on the writer in small chunks so it never stalls the loop for long. Watchers are
fed from the writer's commits, right after each commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from .interface import (
    CompactedError,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatchError,
)

log = logging.getLogger("kybernetes.storage")

PUT, DELETE = 0, 1
COMPACT_CHUNK = 500
RECENT_KEYS = 16384  # keys whose current row is kept in memory (5,000 nodes renew 5,000 Leases)
CHECKPOINT_EVERY = 1000  # writes between WAL checkpoints
WAL_SIZE_LIMIT = 64 << 20  # the WAL file is cut back to this when it starts over
# kv is a rowid table (the key has its own index): in a WITHOUT ROWID table a row keeps at most
# about 1,000 bytes in its leaf, so every write of a pod (3 KB) rewrote two overflow pages and the
# free list as well, seven pages a write instead of three. Databases made before keep their
# WITHOUT ROWID table; every statement works on both.
SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY, key TEXT NOT NULL, type INTEGER NOT NULL, value BLOB NOT NULL,
    create_rev INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection):
    """One write transaction: committed whole, or rolled back whole."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _checkpoint_passive(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")


def _set_meta(db: sqlite3.Connection, name: str, value: int) -> None:
    db.execute("INSERT INTO meta(name, value) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
               (name, value))


def prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix`."""
    return prefix + "\U0010ffff" if prefix else "\U0010ffff"


class SQLiteWatch:
    """Events under a prefix, delivered in batches; history first, then live commits."""

    def __init__(self, storage: SQLiteStorage, prefix: str, from_revision: int):
        self.storage = storage
        self.prefix = prefix
        self.end = prefix_end(prefix)
        self.from_revision = from_revision
        self.queue: asyncio.Queue[list[Event] | None] = asyncio.Queue()
        self.closed = False
        self.buffering = True
        self.buffer: list[Event] = []

    def matches(self, key: str) -> bool:
        return self.prefix <= key < self.end

    def deliver(self, events: list[Event]) -> None:
        mine = [e for e in events if self.matches(e.kv.key)]
        if not mine or self.closed:
            return
        if self.buffering:
            self.buffer.extend(mine)
        else:
            self.queue.put_nowait(mine)

    async def _start(self) -> None:
        try:
            history = await self.storage._history(self.prefix, self.from_revision)
        except Exception as e:  # compacted while starting: hand the error to the reader
            self.queue.put_nowait(None)
            self._error = e
            return
        last = history[-1].kv.mod_revision if history else self.from_revision
        if history:
            self.queue.put_nowait(history)
        rest = [e for e in self.buffer if e.kv.mod_revision > last]
        self.buffer = []
        self.buffering = False
        if rest:
            self.queue.put_nowait(rest)

    _error: Exception | None = None

    async def __aiter__(self) -> AsyncIterator[list[Event]]:
        while not self.closed:
            batch = await self.queue.get()
            if batch is None:
                if self._error is not None:
                    raise self._error
                return
            yield batch

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.storage._watchers.discard(self)
            self.queue.put_nowait(None)


class SQLiteStorage:
    """Storage on one SQLite file. Construct, then use from one event loop."""

    def __init__(self, path: str):
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-reader")
        self._db: sqlite3.Connection | None = None  # the writer, used on the loop thread only
        self._reader: sqlite3.Connection | None = None  # used in the executor thread only
        self._watchers: set[SQLiteWatch] = set()
        self._rev = 0
        self._compacted = 0
        self._opened = False
        self._open_lock = asyncio.Lock()
        self._since_checkpoint = 0
        self._checkpoint: asyncio.Future | None = None
        # The current row of recently read or written keys (None: no such key). This process is the
        # database's only writer and updates it with every commit, so it is never stale; an update
        # otherwise read its row twice (the caller's get, then the revision check).
        self._recent: dict[str, KeyValue | None] = {}

    # --- plumbing -----------------------------------------------------------------------------
    def _open_sync(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints (with their fsync) run in the thread
        db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        db.executescript(SCHEMA)
        self._db = db
        row = db.execute("SELECT value FROM meta WHERE name='compacted'").fetchone()
        self._compacted = row[0] if row else 0
        # The revision is not written on every commit: it is the newest row of the log, or the compacted
        # revision when compaction removed that row (a deletion); compaction never touches rows above it.
        # A database of an earlier version also kept it in meta.
        newest = db.execute("SELECT MAX(rev) FROM log").fetchone()[0] or 0
        row = db.execute("SELECT value FROM meta WHERE name='rev'").fetchone()
        self._rev = max(newest, self._compacted, row[0] if row else 0)
        reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        reader.execute("PRAGMA busy_timeout=5000")
        self._reader = reader

    async def _open(self) -> None:
        if not self._opened:
            async with self._open_lock:
                if not self._opened:
                    await asyncio.get_running_loop().run_in_executor(self._executor, self._open_sync)
                    self._opened = True

    async def _run(self, fn, *args):
        """Run `fn` on the writer connection, inline on the loop thread."""
        await self._open()
        return fn(*args)

    async def _read(self, fn, *args):
        """Run `fn(reader, ...)` on the read-only connection, in the reader thread."""
        await self._open()
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, self._reader, *args)

    def _write(self, fn) -> tuple[int, list[Event]]:
        """Run `fn(db, rev)` in one transaction at the next revision."""
        db = self._db
        rev = self._rev + 1
        with _transaction(db):
            events = fn(db, rev)
        self._rev = rev
        for ev in events:
            self._remember(ev.kv.key, ev.kv if ev.type == "PUT" else None)
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY and self._checkpoint is None:
            self._checkpoint = asyncio.ensure_future(self._run_checkpoint())
        return rev, events

    async def _run_checkpoint(self) -> None:
        """Copy the WAL into the database, and let it start over.

        The bulk is copied off the loop, in the reader's thread (PASSIVE: never blocks the writer).
        SQLite starts the WAL over only at a write that finds every frame copied, which never
        happens under steady writes (each lands while the copy runs), so the file grew without
        end (2 GB in a minute of a 5,000-node cluster) and page lookups slowed with it. The few
        frames written during the copy are therefore copied on the writer's own connection,
        between two writes: then the next write starts the WAL from its beginning. Passes in
        the thread first shrink that remainder to what a few milliseconds bring.
        """
        try:
            for _ in range(4):
                t0 = time.perf_counter()
                await self._read(_checkpoint_passive)
                if time.perf_counter() - t0 < 0.005:
                    break
            if self._db is not None:
                _checkpoint_passive(self._db)
        finally:
            self._since_checkpoint = 0
            self._checkpoint = None

    def _dispatch(self, events: list[Event]) -> None:
        for w in list(self._watchers):
            w.deliver(events)

    @staticmethod
    def _row_kv(row) -> KeyValue:
        return KeyValue(row[0], bytes(row[1]), row[2], row[3])

    def _get_sync(self, key: str) -> KeyValue | None:
        try:
            return self._recent[key]
        except KeyError:
            pass
        row = self._db.execute("SELECT key, value, create_rev, mod_rev FROM kv WHERE key=?", (key,)).fetchone()
        kv = self._row_kv(row) if row else None
        self._remember(key, kv)
        return kv

    def _remember(self, key: str, kv: KeyValue | None) -> None:
        recent = self._recent
        recent.pop(key, None)
        recent[key] = kv
        if len(recent) > RECENT_KEYS:
            del recent[next(iter(recent))]

    # --- reads --------------------------------------------------------------------------------
    async def get(self, key: str) -> KeyValue | None:
        return await self._run(self._get_sync, key)

    @staticmethod
    def _range(prefix: str, start_after: str) -> tuple[str, str, str]:
        """(operator, low, high) of the key range under `prefix` after `start_after`."""
        if start_after and start_after >= prefix:
            return ">", start_after, prefix_end(prefix)
        return ">=", prefix, prefix_end(prefix)

    def _list_current(self, prefix: str, limit: int, start_after: str):
        op, lo, hi = self._range(prefix, start_after)
        sql = f"SELECT key, value, create_rev, mod_rev FROM kv WHERE key {op} ? AND key < ? ORDER BY key"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [self._row_kv(r) for r in self._db.execute(sql, (lo, hi))]

    def _list_at(self, db: sqlite3.Connection, prefix: str, revision: int, limit: int, start_after: str):
        """Keys as of an older revision: live rows, then every change made after it undone."""
        op, lo, hi = self._range(prefix, start_after)
        db.execute("BEGIN")  # one snapshot for the three queries
        try:
            state = {r[0]: self._row_kv(r) for r in db.execute(
                f"SELECT key, value, create_rev, mod_rev FROM kv WHERE key {op} ? AND key < ?", (lo, hi))}
            changed = [r[0] for r in db.execute(
                f"SELECT DISTINCT key FROM log WHERE rev > ? AND key {op} ? AND key < ?", (revision, lo, hi))]
            for key in changed:
                row = db.execute("SELECT key, value, create_rev, rev, type FROM log WHERE key=? AND rev<=? "
                                 "ORDER BY rev DESC LIMIT 1", (key, revision)).fetchone()
                if row is None or row[4] == DELETE:
                    state.pop(key, None)
                else:
                    state[key] = KeyValue(row[0], bytes(row[1]), row[2], row[3])
        finally:
            db.execute("COMMIT")
        kvs = [state[k] for k in sorted(state)]
        return kvs[:limit] if limit else kvs

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = ""):
        await self._open()
        current = self._rev
        if revision and revision > current:
            raise FutureRevisionError(revision, current)
        if revision and revision < self._compacted:
            raise CompactedError(revision, self._compacted)
        if not revision or revision == current:
            return self._list_current(prefix, limit, start_after), current
        return await self._read(self._list_at, prefix, revision, limit, start_after), revision

    async def count(self, prefix: str) -> int:
        def run():
            return self._db.execute("SELECT COUNT(*) FROM kv WHERE key >= ? AND key < ?",
                                    (prefix, prefix_end(prefix))).fetchone()[0]
        return await self._run(run)

    # --- writes -------------------------------------------------------------------------------
    async def create(self, key: str, value: bytes) -> int:
        def fn(db, rev):
            try:  # the primary key says whether it exists: no lookup first
                db.execute("INSERT INTO kv VALUES (?, ?, ?, ?)", (key, value, rev, rev))
            except sqlite3.IntegrityError:
                raise KeyExistsError(key) from None
            db.execute("INSERT INTO log VALUES (?, ?, ?, ?, ?)", (rev, key, PUT, value, rev))
            return [Event("PUT", KeyValue(key, value, rev, rev))]

        rev, events = await self._run(self._write, fn)
        self._dispatch(events)
        return rev

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        def fn(db, rev):
            cur = self._get_sync(key)
            if cur is None:
                raise KeyNotFoundError(key)
            if expected_revision and cur.mod_revision != expected_revision:
                raise RevisionMismatchError(key, cur)
            db.execute("UPDATE kv SET value=?, mod_rev=? WHERE key=?", (value, rev, key))
            db.execute("INSERT INTO log VALUES (?, ?, ?, ?, ?)", (rev, key, PUT, value, cur.create_revision))
            return [Event("PUT", KeyValue(key, value, cur.create_revision, rev), cur)]

        rev, events = await self._run(self._write, fn)
        self._dispatch(events)
        return rev

    async def delete(self, key: str, expected_revision: int = 0) -> tuple[int, KeyValue]:
        def fn(db, rev):
            cur = self._get_sync(key)
            if cur is None:
                raise KeyNotFoundError(key)
            if expected_revision and cur.mod_revision != expected_revision:
                raise RevisionMismatchError(key, cur)
            db.execute("DELETE FROM kv WHERE key=?", (key,))
            db.execute("INSERT INTO log VALUES (?, ?, ?, ?, ?)", (rev, key, DELETE, cur.value, cur.create_revision))
            return [Event("DELETE", KeyValue(key, cur.value, cur.create_revision, rev), cur)]

        rev, events = await self._run(self._write, fn)
        self._dispatch(events)
        return rev, events[0].prev

    # --- watch --------------------------------------------------------------------------------
    def _history_sync(self, db: sqlite3.Connection, prefix: str, from_revision: int) -> list[Event]:
        if from_revision < self._compacted:
            raise CompactedError(from_revision, self._compacted)
        rows = db.execute(
            "SELECT rev, key, type, value, create_rev FROM log WHERE rev > ? AND key >= ? AND key < ? ORDER BY rev",
            (from_revision, prefix, prefix_end(prefix)))
        return [Event("DELETE" if t == DELETE else "PUT", KeyValue(k, bytes(v), c, r)) for r, k, t, v, c in rows]

    async def _history(self, prefix: str, from_revision: int) -> list[Event]:
        return await self._read(self._history_sync, prefix, from_revision)

    def watch(self, prefix: str, from_revision: int) -> SQLiteWatch:
        if self._opened and from_revision < self._compacted:
            raise CompactedError(from_revision, self._compacted)
        w = SQLiteWatch(self, prefix, from_revision)
        self._watchers.add(w)
        asyncio.get_running_loop().create_task(w._start())
        return w

    # --- maintenance ----------------------------------------------------------------------------
    async def current_revision(self) -> int:
        await self._open()
        return self._rev

    async def compacted_revision(self) -> int:
        await self._open()
        return self._compacted

    async def compact(self, revision: int) -> None:
        """Drop log rows at or below `revision`, keeping each live key's value as of then.

        A row goes when it is a deletion or a later row of its key (at or below the target)
        supersedes it. Runs in chunks of COMPACT_CHUNK revisions, one short transaction
        each, yielding to the loop between them; the compacted revision advances per chunk.
        """
        await self._open()
        target = min(revision, self._rev)
        while self._compacted < target:
            lo = self._compacted
            hi = min(target, lo + COMPACT_CHUNK)
            db = self._db
            with _transaction(db):
                db.execute("DELETE FROM log WHERE rev > ? AND rev <= ? AND (type = ? OR EXISTS (SELECT 1 FROM log "
                           "AS later WHERE later.key = log.key AND later.rev > log.rev AND later.rev <= ?))",
                           (lo, hi, DELETE, target))
                _set_meta(db, "compacted", hi)
            self._compacted = hi
            await asyncio.sleep(0)

    async def run_compactor(self, stop: asyncio.Event, interval: float, retain: int) -> None:
        """Every `interval` seconds, compact all but the newest `retain` revisions."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
                return
            except TimeoutError:
                pass
            current = await self.current_revision()
            if current - retain > await self.compacted_revision():
                await self.compact(current - retain)
                log.info("compacted revisions up to %d; database %d bytes", current - retain, await self.db_size())

    async def db_size(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return total

    async def close(self) -> None:
        for w in list(self._watchers):
            w.close()

        def close_reader(reader):
            reader.close()

        if self._opened:
            if self._checkpoint is not None:
                await asyncio.gather(self._checkpoint, return_exceptions=True)
            await self._read(close_reader)
            self._db.close()
            self._db = self._reader = None
            self._opened = False
        self._executor.shutdown(wait=False)
