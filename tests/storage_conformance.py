"""The storage conformance suite: etcd's semantics, written once, run against every backend.

A backend's test module defines a `storage` fixture (an open, empty backend) and
imports `StorageConformance` so pytest collects these tests for it.
"""

from __future__ import annotations

import asyncio

import pytest

from kybernetes.storage.interface import (
    CompactedError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    RevisionMismatchError,
)


async def collect(watch, count: int, timeout: float = 5.0) -> list:
    """The first `count` events of a watch, or fail after `timeout` seconds."""
    events = []

    async def run():
        async for batch in watch:
            events.extend(batch)
            if len(events) >= count:
                return

    await asyncio.wait_for(run(), timeout)
    return events


class StorageConformance:
    async def test_create_get(self, storage):
        rev = await storage.create("/a/1", b"one")
        kv = await storage.get("/a/1")
        assert (kv.value, kv.create_revision, kv.mod_revision) == (b"one", rev, rev)
        assert await storage.get("/a/2") is None
        assert await storage.current_revision() == rev

    async def test_create_existing_fails(self, storage):
        await storage.create("/a/1", b"one")
        with pytest.raises(KeyExistsError):
            await storage.create("/a/1", b"again")
        assert (await storage.get("/a/1")).value == b"one"

    async def test_revisions_increase_across_keys(self, storage):
        r1 = await storage.create("/a/1", b"x")
        r2 = await storage.create("/b/1", b"y")
        r3 = await storage.update("/a/1", b"z", r1)
        assert r1 < r2 < r3
        kv = await storage.get("/a/1")
        assert (kv.create_revision, kv.mod_revision) == (r1, r3)

    async def test_update_compare_and_swap(self, storage):
        r1 = await storage.create("/a/1", b"x")
        r2 = await storage.update("/a/1", b"y", r1)
        with pytest.raises(RevisionMismatchError) as err:
            await storage.update("/a/1", b"stale", r1)
        assert err.value.current.mod_revision == r2
        assert (await storage.get("/a/1")).value == b"y"
        await storage.update("/a/1", b"any", 0)
        with pytest.raises(KeyNotFoundError):
            await storage.update("/a/missing", b"v", 0)

    async def test_delete(self, storage):
        r1 = await storage.create("/a/1", b"x")
        with pytest.raises(RevisionMismatchError):
            await storage.delete("/a/1", r1 + 100)
        rev, old = await storage.delete("/a/1", r1)
        assert rev > r1 and old.value == b"x"
        assert await storage.get("/a/1") is None
        with pytest.raises(KeyNotFoundError):
            await storage.delete("/a/1")

    async def test_list_prefix_order_limit(self, storage):
        for k in ("/p/b", "/p/a", "/p/c", "/q/a", "/pa"):
            await storage.create(k, k.encode())
        kvs, rev = await storage.list("/p/")
        assert [kv.key for kv in kvs] == ["/p/a", "/p/b", "/p/c"]
        assert rev == await storage.current_revision()
        page, _ = await storage.list("/p/", limit=2)
        assert [kv.key for kv in page] == ["/p/a", "/p/b"]
        rest, _ = await storage.list("/p/", start_after="/p/b")
        assert [kv.key for kv in rest] == ["/p/c"]
        assert await storage.count("/p/") == 3

    async def test_list_at_old_revision(self, storage):
        r1 = await storage.create("/p/a", b"1")
        await storage.create("/p/b", b"2")
        r3 = await storage.update("/p/a", b"1b", r1)
        await storage.delete("/p/b")
        await storage.create("/p/c", b"3")
        kvs, rev = await storage.list("/p/", revision=r3)
        assert rev == r3
        assert [(kv.key, kv.value) for kv in kvs] == [("/p/a", b"1b"), ("/p/b", b"2")]
        kvs, _ = await storage.list("/p/", revision=r1)
        assert [(kv.key, kv.value) for kv in kvs] == [("/p/a", b"1")]
        with pytest.raises(FutureRevisionError):
            await storage.list("/p/", revision=rev + 1000)

    async def test_watch_live_and_history(self, storage):
        r0 = await storage.create("/w/a", b"0")
        watch = storage.watch("/w/", r0 - 1)
        await storage.update("/w/a", b"1", 0)
        await storage.create("/other/x", b"not mine")
        await storage.delete("/w/a")
        events = await collect(watch, 3)
        watch.close()
        assert [(e.type, e.kv.key, e.kv.value) for e in events] == [
            ("PUT", "/w/a", b"0"), ("PUT", "/w/a", b"1"), ("DELETE", "/w/a", b"1")]
        revs = [e.kv.mod_revision for e in events]
        assert revs == sorted(revs) and len(set(revs)) == 3

    async def test_watch_under_concurrent_writes_loses_nothing(self, storage):
        start = await storage.create("/c/seed", b"s")
        writes = asyncio.gather(*(storage.create(f"/c/{i:03d}", b"v") for i in range(50)))
        watch = storage.watch("/c/", start)
        await writes
        events = await collect(watch, 50)
        watch.close()
        keys = [e.kv.key for e in events]
        assert sorted(keys) == [f"/c/{i:03d}" for i in range(50)] and len(keys) == 50

    async def test_compaction(self, storage):
        r1 = await storage.create("/k/a", b"1")
        r2 = await storage.update("/k/a", b"2", r1)
        await storage.create("/k/b", b"b")
        r4 = await storage.update("/k/a", b"3", 0)
        await storage.compact(r2)
        assert await storage.compacted_revision() == r2
        with pytest.raises(CompactedError):
            storage.watch("/k/", r1 - 1)
        kvs, _ = await storage.list("/k/", revision=r4 - 1)
        assert [(kv.key, kv.value) for kv in kvs] == [("/k/a", b"2"), ("/k/b", b"b")]
        with pytest.raises(CompactedError):
            await storage.list("/k/", revision=r1)
        watch = storage.watch("/k/", r2)
        events = await collect(watch, 2)
        watch.close()
        assert [e.kv.value for e in events] == [b"b", b"3"]
        live, _ = await storage.list("/k/")
        assert [kv.value for kv in live] == [b"3", b"b"]

    async def test_db_size(self, storage):
        before = await storage.db_size()
        for i in range(200):
            await storage.create(f"/s/{i}", b"x" * 1000)
        assert await storage.db_size() > before
