"""The SQLite backend: the conformance suite, reopening, and surviving `kill -9`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from kybernetes.storage.interface import KeyNotFoundError, RevisionMismatchError
from kybernetes.storage.sqlite import SQLiteStorage

from .storage_conformance import StorageConformance


@pytest.fixture
async def storage(tmp_path):
    s = SQLiteStorage(str(tmp_path / "state.db"))
    yield s
    await s.close()


class TestSQLiteConformance(StorageConformance):
    pass


async def test_reopen_keeps_state_and_revision(tmp_path):
    path = str(tmp_path / "state.db")
    s = SQLiteStorage(path)
    await s.create("/a", b"1")
    rev = await s.update("/a", b"2", 0)
    await s.compact(rev - 1)
    await s.close()
    s = SQLiteStorage(path)
    assert (await s.get("/a")).value == b"2"
    assert await s.current_revision() == rev
    assert await s.compacted_revision() == rev - 1
    assert await s.create("/b", b"x") == rev + 1
    await s.close()


async def test_reopen_after_compacting_away_the_newest_row_keeps_the_revision(tmp_path):
    """The newest write was a deletion and compaction dropped its log row: the revision must not go back."""
    path = str(tmp_path / "state.db")
    s = SQLiteStorage(path)
    await s.create("/a", b"1")
    await s.create("/b", b"1")
    rev, _ = await s.delete("/b")
    await s.compact(rev)
    await s.close()
    s = SQLiteStorage(path)
    assert await s.current_revision() == rev
    assert await s.create("/c", b"x") == rev + 1
    await s.close()


async def test_compactor_runs_on_schedule(tmp_path):
    s = SQLiteStorage(str(tmp_path / "state.db"))
    for i in range(30):
        await s.create(f"/x/{i}", b"v")
    stop = asyncio.Event()
    task = asyncio.create_task(s.run_compactor(stop, 0.05, 10))
    async with asyncio.timeout(5):
        while await s.compacted_revision() < 20:
            await asyncio.sleep(0.02)
    stop.set()
    await task
    assert await s.compacted_revision() == 20
    await s.close()


def test_kill_9_loses_no_acknowledged_write(tmp_path):
    """A writer killed mid-stream leaves every write it reported, and no torn one."""
    path = tmp_path / "state.db"
    script = textwrap.dedent(f"""
        import asyncio, sys
        from kybernetes.storage.sqlite import SQLiteStorage
        async def main():
            s = SQLiteStorage({str(path)!r})
            i = 0
            while True:
                await s.create(f"/k/{{i:06d}}", b"v" * 512)
                print(i, flush=True)
                i += 1
        asyncio.run(main())
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    acked = -1
    for line in proc.stdout:
        acked = int(line)
        if acked >= 300:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    async def check():
        s = SQLiteStorage(str(path))
        kvs, rev = await s.list("/k/")
        await s.close()
        return kvs, rev

    kvs, rev = asyncio.run(check())
    assert len(kvs) >= acked + 1
    assert [kv.key for kv in kvs] == [f"/k/{i:06d}" for i in range(len(kvs))]
    assert all(kv.value == b"v" * 512 for kv in kvs)
    assert rev == len(kvs)


async def test_rows_kept_in_memory_follow_every_write(tmp_path):
    """The in-memory copy of recent rows answers get() and the revision checks exactly as the database would."""
    s = SQLiteStorage(str(tmp_path / "state.db"))
    assert await s.get("/k") is None  # a miss is remembered ...
    rev = await s.create("/k", b"1")  # ... and replaced by the create
    assert (await s.get("/k")).mod_revision == rev
    rev2 = await s.update("/k", b"2", rev)
    with pytest.raises(RevisionMismatchError):
        await s.update("/k", b"3", rev)
    kv = await s.get("/k")
    assert (kv.value, kv.mod_revision, kv.create_revision) == (b"2", rev2, rev)
    await s.delete("/k", rev2)
    assert await s.get("/k") is None
    with pytest.raises(KeyNotFoundError):
        await s.update("/k", b"4", 0)
    await s.close()
    reopened = SQLiteStorage(str(tmp_path / "state.db"))  # and the database agrees
    assert await reopened.get("/k") is None
    await reopened.close()


async def test_the_wal_starts_over_under_writes_that_never_pause(tmp_path, monkeypatch):
    """A PASSIVE checkpoint alone never lets SQLite restart the WAL while writes keep coming (each
    lands during the copy), and the file grew without end; the storage finishes each checkpoint
    on its writer so the next write starts the WAL from its beginning."""
    import kybernetes.storage.sqlite as sqlite_backend

    monkeypatch.setattr(sqlite_backend, "CHECKPOINT_EVERY", 100)
    path = tmp_path / "state.db"
    s = SQLiteStorage(str(path))
    keys = [f"/registry/pods/ns/pod-{i:04d}" for i in range(200)]
    for k in keys:
        await s.create(k, os.urandom(3000))
    written = 0
    for _ in range(15):
        for k in keys:
            await s.update(k, os.urandom(3000), 0)
            written += 3000
            await asyncio.sleep(0)  # the checkpoint runs beside the writes, as in the server
    wal = os.path.getsize(str(path) + "-wal")
    # the 3,000 updates put about 80 MB through the WAL (seven 4 KiB pages each: the row, its
    # overflow pages, the log's row and its index); a WAL that starts over after every checkpoint
    # holds the writes of one checkpoint's time, a few hundred here
    assert wal < 24 << 20, (wal, written)
    last = {k: (await s.get(k)).value for k in keys}
    await s.close()
    s = SQLiteStorage(str(path))
    assert {k: (await s.get(k)).value for k in keys} == last
    await s.close()


async def test_a_database_with_the_earlier_without_rowid_table_still_works(tmp_path):
    """Databases made before kv became a rowid table keep their layout: every statement runs on both."""
    import sqlite3

    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, create_rev INTEGER NOT NULL,
                         mod_rev INTEGER NOT NULL) WITHOUT ROWID;
    """)
    db.close()
    s = SQLiteStorage(str(path))
    rev = await s.create("/a", b"1")
    rev = await s.update("/a", b"2", rev)
    await s.create("/b", b"x" * 5000)
    assert (await s.get("/a")).value == b"2"
    kvs, _ = await s.list("/")
    assert [kv.key for kv in kvs] == ["/a", "/b"]
    await s.close()
    check = sqlite3.connect(path)
    assert "WITHOUT ROWID" in check.execute("SELECT sql FROM sqlite_master WHERE name='kv'").fetchone()[0]
    check.close()
