"""API server benchmark: storage alone vs. the full HTTPS path, in one run, same SQLite file.

Measures, and prints side by side:
  1. writes/s through the storage layer alone (SQLiteStorage.create)
  2. pod creates/s through HTTPS with 16 concurrent clients (a real `kyb server` process, API
     server alone: its controller manager and scheduler are switched off)
  3. GET p50/p99 at a paced 200 requests/s
  4. LIST of 10,000 pods (JSON and Table)
  5. watch events/s delivered to each of 100 watchers replaying 10,000 pod events
  6. the floor under (2): the same client and pods against a do-nothing aiohttp HTTPS endpoint
     (TLS, HTTP and JSON only), and against one that also does the storage layer's create and
     nothing else; no API server built on this stack can create faster than the second

Usage: python benchmarks/apiserver.py [--pods 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from kybernetes.storage.sqlite import SQLiteStorage  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pod(i: int) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"pod-{i:06d}", "namespace": "bench", "labels": {"app": "bench", "shard": str(i % 10)}},
        "spec": {"containers": [{"name": "c", "image": "busybox:stable", "command": ["sleep", "3600"],
                                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
    }


async def bench_storage(db: Path, n: int) -> float:
    store = SQLiteStorage(str(db))
    value = orjson.dumps(pod(0))
    t0 = time.perf_counter()
    for i in range(n):
        await store.create(f"/bench/storage/{i:07d}", value)
    elapsed = time.perf_counter() - t0
    await store.close()
    return n / elapsed


def serve_floor(tls: str, port: int, db: str) -> None:
    """The floor endpoint: decode the pod, store it (unless `db` is "none"), send it back.

    Runs in its own process, as the API server does, with the API server's certificates and
    client-certificate check.
    """
    from aiohttp import web

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(f"{tls}/serving-kube-apiserver.crt", f"{tls}/serving-kube-apiserver.key")
    ctx.load_verify_locations(f"{tls}/server-ca.crt")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    store = SQLiteStorage(db) if db != "none" else None

    async def create(request: web.Request) -> web.Response:
        obj = orjson.loads(await request.read())
        if store is not None:
            await store.create(f"/bench/floor/{obj['metadata']['name']}", orjson.dumps(obj))
        return web.Response(body=orjson.dumps(obj), status=201, content_type="application/json")

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/api/v1/namespaces/bench/pods", create)
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=ctx, print=None, access_log=None)


class Client:
    def __init__(self, url: str, tls: Path, connections: int):
        ctx = ssl.create_default_context(cafile=str(tls / "server-ca.crt"))
        ctx.load_cert_chain(str(tls / "client-admin.crt"), str(tls / "client-admin.key"))
        self.url = url
        self.ctx = ctx
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=connections))

    async def close(self):
        await self.session.close()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_creates(client: Client, n: int, pid: int, workers: int = 16) -> tuple[float, float]:
    """(creates/s, the server's CPU microseconds per create)."""
    counter = iter(range(n))
    errors = 0

    async def worker():
        nonlocal errors
        for i in counter:
            async with client.session.post(f"{client.url}/api/v1/namespaces/bench/pods",
                                           data=orjson.dumps(pod(i)),
                                           headers={"Content-Type": "application/json"}) as r:
                await r.read()
                if r.status != 201:
                    errors += 1

    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    if errors:
        print(f"  ! {errors} creates failed")
    return n / elapsed, cpu / n * 1e6


async def bench_get(client: Client, n_pods: int, rate: float = 200.0, seconds: float = 5.0) -> tuple[float, float]:
    latencies: list[float] = []
    interval = 1.0 / rate

    async def one(i: int):
        t = time.perf_counter()
        async with client.session.get(f"{client.url}/api/v1/namespaces/bench/pods/pod-{i % n_pods:06d}") as r:
            await r.read()
            assert r.status == 200, r.status
        latencies.append(time.perf_counter() - t)

    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i * 7919)))
    await asyncio.gather(*tasks)
    latencies.sort()
    return statistics.median(latencies) * 1000, latencies[int(len(latencies) * 0.99) - 1] * 1000


async def bench_list(client: Client, table: bool = False) -> tuple[float, int]:
    headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"} if table else {}
    t0 = time.perf_counter()
    async with client.session.get(f"{client.url}/api/v1/namespaces/bench/pods", headers=headers) as r:
        body = await r.read()
    elapsed = time.perf_counter() - t0
    data = orjson.loads(body)
    return elapsed, len(data.get("items") or data.get("rows") or [])


async def bench_watch(client: Client, from_rv: str, expected: int, watchers: int = 100) -> tuple[float, float]:
    """Each watcher replays `expected` events from `from_rv`; returns (slowest s, events/s per watcher)."""

    async def watch() -> float:
        t0 = time.perf_counter()
        seen = 0
        params = {"watch": "true", "resourceVersion": from_rv, "timeoutSeconds": "120"}
        async with client.session.get(f"{client.url}/api/v1/namespaces/bench/pods", params=params) as r:
            async for chunk in r.content.iter_any():
                seen += chunk.count(b"\n")
                if seen >= expected:
                    break
        return time.perf_counter() - t0

    t0 = time.perf_counter()
    times = await asyncio.gather(*(watch() for _ in range(watchers)))
    total = time.perf_counter() - t0
    return total, expected / max(times)


async def wait_ready(url: str, tls: Path, proc: subprocess.Popen, ready: Path | None = None) -> Client:
    """A client once `url` answers /readyz (and `ready`, the kubeconfig, exists)."""
    deadline = time.time() + 60
    while time.time() < deadline:
        assert proc.poll() is None, "server exited"
        if ready is None or ready.exists():
            client = Client(url, tls, 100)
            try:
                async with client.session.get(f"{url}/readyz") as r:
                    if r.status == 200:
                        return client
            except aiohttp.ClientError:
                pass
            await client.close()
        await asyncio.sleep(0.2)
    raise AssertionError("server did not start")


async def bench_floor(tls: Path, db: str, n: int) -> tuple[float, float]:
    """Creates/s of the same client against the floor endpoint (see `serve_floor`)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--floor-server", str(tls), str(port), db])
    try:
        client = await wait_ready(f"https://127.0.0.1:{port}", tls, proc)
        try:
            return await bench_creates(client, n, proc.pid)
        finally:
            await client.close()
    finally:
        proc.terminate()
        proc.wait(20)


async def main_async(args) -> None:
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kyb-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "server" / "db" / "state.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    storage_n = 20000
    storage_rate = await bench_storage(db, storage_n)

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kybernetes.cli.main", "server", "--data-dir", str(work),
                             "--port", str(port),
                             # the API server alone, as upstream's apiserver benchmarks measure it: no
                             # scheduler marking 10,000 node-less pods unschedulable during the GET test
                             "--disable-controller-manager", "--disable-scheduler", "--disable-agent"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    tls = work / "server" / "tls"
    url = f"https://127.0.0.1:{port}"
    try:
        client = await wait_ready(url, tls, proc, work / "kubeconfig.yaml")
        async with client.session.post(f"{url}/api/v1/namespaces", data=json.dumps(
                {"metadata": {"name": "bench"}}), headers={"Content-Type": "application/json"}) as r:
            assert r.status == 201, await r.text()
            rv_before = (await r.json())["metadata"]["resourceVersion"]
        create_rate, create_cpu = await bench_creates(client, args.pods, proc.pid)
        p50, p99 = await bench_get(client, args.pods)
        list_s, count = await bench_list(client)
        table_s, table_count = await bench_list(client, table=True)
        watch_total, per_watcher = await bench_watch(client, rv_before, args.pods)
        await client.close()
    finally:
        proc.terminate()
        proc.wait(20)
    try:  # the API server has stopped: the floor endpoints have both cores as it had
        echo_rate, echo_cpu = await bench_floor(tls, "none", args.pods)
        stored_rate, stored_cpu = await bench_floor(tls, str(db), args.pods)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"kybernetes API server benchmark — {time.strftime('%Y-%m-%d')} — {platform.node()} "
          f"({os.cpu_count()} cores, Python {platform.python_version()})")
    print(f"  storage layer writes/s (SQLite, {storage_n} creates):   {storage_rate:10.0f}")
    print(f"  pod creates/s over HTTPS (16 clients, {args.pods} pods): {create_rate:10.0f}"
          f"   = {create_rate / storage_rate:.2f}x the storage layer (target >= 0.33x and >= 1000/s),"
          f" server CPU {create_cpu:.0f} us/create")
    print(f"  floor: do-nothing HTTPS endpoint, same client:         {echo_rate:10.0f}"
          f"   = {echo_rate / storage_rate:.2f}x the storage layer, server CPU {echo_cpu:.0f} us/create")
    print(f"  floor: HTTPS endpoint doing the storage create only:   {stored_rate:10.0f}"
          f"   = {stored_rate / storage_rate:.2f}x the storage layer, server CPU {stored_cpu:.0f} us/create")
    print(f"  GET at 200 req/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms (target p99 < 20 ms)")
    print(f"  LIST {count} pods: {list_s * 1000:.0f} ms JSON, {table_s * 1000:.0f} ms Table ({table_count} rows)"
          f" (target < 1000 ms)")
    print(f"  100 watchers replaying {args.pods} events: all done in {watch_total:.2f} s, "
          f"slowest watcher {per_watcher:.0f} events/s (target >= 2000/s each)")


def main() -> None:
    if sys.argv[1:2] == ["--floor-server"]:
        serve_floor(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--keep", default="", help="keep the data directory here")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
