"""The watch cache takes the object a writer hands over instead of decoding the stored bytes, and
the suite's check (KYB_VERIFY_KEPT) catches a writer that changes it afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import orjson

from kybernetes.apiserver.watchcache import WatchCache
from kybernetes.storage.sqlite import SQLiteStorage


async def test_a_kept_object_is_the_cache_entry_and_others_are_decoded(tmp_path):
    storage = SQLiteStorage(str(tmp_path / "state.db"))
    cache = WatchCache(storage)
    await cache.start()
    try:
        key = "/registry/core/configmaps/default/a"
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}
        rev = await storage.create(key, orjson.dumps(obj))
        obj["metadata"]["resourceVersion"] = str(rev)
        cache.keep(key, rev, obj)
        other = "/registry/core/configmaps/default/b"
        rev_b = await storage.create(other, b'{"metadata":{"name":"b"}}')
        await cache.wait_for(rev_b)
        bucket = cache.bucket("/registry/core/configmaps/")
        assert bucket.store[key].obj is obj
        assert bucket.store[other].obj == {"metadata": {"name": "b", "resourceVersion": str(rev_b)}}
        assert cache.kept == {}
    finally:
        await cache.stop()
        await storage.close()


def test_the_check_ends_a_process_whose_kept_object_was_changed_after_the_write(tmp_path):
    script = textwrap.dedent(f"""
        import asyncio, orjson
        from kybernetes.apiserver.watchcache import WatchCache
        from kybernetes.storage.sqlite import SQLiteStorage

        async def main():
            storage = SQLiteStorage({str(tmp_path / "state.db")!r})
            cache = WatchCache(storage)
            await cache.start()
            key = "/registry/core/configmaps/default/a"
            obj = {{"metadata": {{"name": "a"}}, "data": {{"x": "1"}}}}
            rev = await storage.create(key, orjson.dumps(obj))
            obj["metadata"]["resourceVersion"] = str(rev)
            cache.keep(key, rev, obj)
            await cache.wait_for(rev)
            obj["data"]["x"] = "changed by its writer"  # a bug the check must catch
            await cache.stop()
            print("not caught")

        asyncio.run(main())
    """)
    env = dict(os.environ, KYB_VERIFY_KEPT="1")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    assert "kept object diverged" in proc.stderr and "not caught" not in proc.stdout
