"""Scheduling throughput on simulated nodes: 1,000 pods onto 500 nodes and 10,000 pods onto 5,000, in one run.

For each size a real `kyb server --sim-nodes N` (API server, controller manager, scheduler and the
sim-nodes process, each its own process) is started; once the N nodes are Ready, P bare pods
(100m cpu, 500Mi memory each, as upstream's scheduler_perf pod-default) are created by 16 concurrent
clients, and the run ends when the scheduler has bound all of them. The scheduler writes its own
counters to $KYB_SCHEDULER_STATS (scheduler.Stats): time inside the scheduling algorithm (prefilter,
filter, score, select), time of the whole cycle, and the latency of the binding writes; the script
prints those beside the end-to-end rate and the CPU each process used.

    .venv/bin/python benchmarks/scheduler.py                 # both sizes
    .venv/bin/python benchmarks/scheduler.py --sizes 500:1000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from kybernetes.client.rest import RESTClient  # noqa: E402
from tests.cluster import Cluster, free_port  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# --- the server's process tree ------------------------------------------------------------------
def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(root: int) -> dict[int, str]:
    """pid -> role (api, scheduler, controller-manager, sim-nodes, ...) of `root` and its descendants."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                children.setdefault(int(_stat(int(d))[1]), []).append(int(d))
            except (OSError, IndexError):
                pass
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv]
        role = "server" if pid == root else next(
            (w for w in ("scheduler", "controller-manager", "sim-nodes") if w in words), " ".join(words[2:4]))
        out[pid] = role
        todo.extend(children.get(pid, ()))
    return out


def cpu_seconds(pid: int) -> float:
    try:
        f = _stat(pid)
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / CLK


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:
        return 0


def cpu_by_role(tree: dict[int, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pid, role in tree.items():
        out[role] = out.get(role, 0.0) + cpu_seconds(pid)
    return out


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


# --- waiting on the cluster ---------------------------------------------------------------------
async def wait_nodes_ready(client: RESTClient, count: int, timeout: float = 300.0) -> float:
    """Seconds until `count` nodes are Ready with a podCIDR (a watch from the start: no repeated lists)."""
    t0 = time.monotonic()
    ready: set[str] = set()

    def check(n: dict) -> None:
        name = n["metadata"]["name"]
        ok = bool((n.get("spec") or {}).get("podCIDR")) and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in (n.get("status") or {}).get("conditions") or ())
        if ok:
            ready.add(name)
        else:
            ready.discard(name)

    async def run() -> None:
        initial = await client.list("", "v1", "nodes")
        for n in initial["items"]:
            check(n)
        rv = initial["metadata"]["resourceVersion"]
        while len(ready) < count:
            async for ev in client.watch("", "v1", "nodes", resourceVersion=rv, timeoutSeconds=60):
                obj = ev["object"]
                if ev["type"] == "DELETED":
                    ready.discard(obj["metadata"]["name"])
                elif ev["type"] != "ERROR":
                    check(obj)
                    rv = obj["metadata"]["resourceVersion"]
                if len(ready) >= count:
                    return

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        raise TimeoutError(f"only {len(ready)} of {count} nodes Ready after {timeout:.0f}s") from None
    return time.monotonic() - t0


def pod_body(i: int) -> dict:
    return {"metadata": {"name": f"pod-{i:06d}", "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": {"cpu": "100m", "memory": "500Mi"},
                                                   "limits": {"cpu": "100m", "memory": "500Mi"}}}]}}


async def create_all(client: RESTClient, bodies, namespace: str, plural: str = "pods", group: str = "",
                     version: str = "v1", workers: int = 16) -> None:
    it = iter(bodies)

    async def worker() -> None:
        for body in it:
            await client.create(group, version, plural, body, namespace)

    await asyncio.gather(*(worker() for _ in range(workers)))


def start_cluster(work: Path, nodes: int, extra: list[str] | None = None) -> Cluster:
    """`kyb server --sim-nodes N`; a /11 cluster CIDR holds 8,192 node /24s."""
    c = Cluster(work, free_port(), extra_args=["--sim-nodes", str(nodes), "--cluster-cidr", "10.64.0.0/11",
                                               *(extra or [])])
    c.start(timeout=60)
    return c


# --- one size -----------------------------------------------------------------------------------
async def run_size(nodes: int, pods: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="kyb-sched-bench-") as tmp:
        work = Path(tmp)
        stats_file = work / "scheduler-stats.json"
        os.environ["KYB_SCHEDULER_STATS"] = str(stats_file)
        c = start_cluster(work, nodes)
        client = RESTClient.from_kubeconfig(c.kubeconfig)
        try:
            t_nodes = await wait_nodes_ready(client, nodes)
            await client.create("", "v1", "namespaces", {"metadata": {"name": "bench"}})
            await asyncio.sleep(3)  # let registration's tail (leases, IPAM) settle
            while not stats_file.exists():
                await asyncio.sleep(0.2)
            before = orjson.loads(stats_file.read_bytes())
            tree = process_tree(c.proc.pid)
            cpu0 = cpu_by_role(tree)
            load = loadavg()
            t0, w0 = time.monotonic(), time.time()
            await create_all(client, (pod_body(i) for i in range(pods)), "bench")
            t_created = time.monotonic() - t0
            deadline = t0 + 600
            while True:
                st = orjson.loads(stats_file.read_bytes())
                if st["bound"] - before["bound"] >= pods:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {st['bound'] - before['bound']} of {pods} pods bound")
                await asyncio.sleep(0.2)
            cpu1 = cpu_by_role(tree)
            rss = sum(rss_bytes(p) for p in tree)
            # the Scheduled events trail the bindings (one writer, as client-go's broadcaster): how far
            while True:
                st_events = orjson.loads(stats_file.read_bytes())
                if st_events["events_written"] - before["events_written"] >= pods or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        finally:
            await client.close()
            c.stop(timeout=30)
            os.environ.pop("KYB_SCHEDULER_STATS", None)
    d = {k: st[k] - before[k] for k in ("cycles", "algorithm_seconds", "algorithm_cpu_seconds", "cycle_seconds",
                                         "bound", "bind_seconds", "failed")}
    e2e = st["last_bound_wall"] - w0
    d["events"] = st_events["events_written"] - before["events_written"]
    d["events_after"] = st_events["last_event_wall"] - st["last_bound_wall"]
    return {"nodes": nodes, "pods": pods, "load": load, "t_nodes": t_nodes, "t_created": t_created, "e2e": e2e,
            "rate": pods / e2e, **d, "cpu": {k: cpu1.get(k, 0) - cpu0.get(k, 0) for k in cpu1}, "rss": rss}


def report(r: dict) -> None:
    n, p = r["nodes"], r["pods"]
    alg_ms = r["algorithm_seconds"] / max(r["cycles"], 1) * 1000
    alg_cpu_ms = r["algorithm_cpu_seconds"] / max(r["cycles"], 1) * 1000
    cyc_ms = r["cycle_seconds"] / max(r["bound"], 1) * 1000
    bind_ms = r["bind_seconds"] / max(r["bound"], 1) * 1000
    print(f"{p} pods onto {n} nodes (1-min load before: {r['load']})")
    print(f"  nodes Ready: {r['t_nodes']:.1f}s; pods created in {r['t_created']:.1f}s "
          f"({p / r['t_created']:.0f}/s)")
    print(f"  end to end (first create -> last bound): {r['e2e']:.1f}s = {r['rate']:.0f} pods/s")
    print(f"  scheduler decisions: {r['cycles']} cycles, algorithm (filter+score+select) {alg_cpu_ms:.2f} ms/pod "
          f"of CPU (= {1000 / alg_cpu_ms if alg_cpu_ms else 0:.0f} pods/s alone), {alg_ms:.2f} ms/pod wall; "
          f"whole cycle {cyc_ms:.2f} ms/pod wall")
    print(f"  binding (API writes): {r['bound']} bound, {r['failed']} failed, mean latency {bind_ms:.1f} ms "
          f"(concurrent)")
    print(f"  Scheduled events: {r['events']} written, the last {r['events_after']:.1f}s after the last binding "
          f"(one writer, as client-go's broadcaster)")
    cpu = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(r["cpu"].items(), key=lambda kv: -kv[1]) if v >= 0.05)
    print(f"  CPU during the run: {cpu}")
    print(f"  RSS of the server's process tree: {r['rss'] / 2**20:.0f} MiB")


async def main(sizes: list[tuple[int, int]]) -> None:
    print(f"kybernetes scheduler benchmark — {time.strftime('%Y-%m-%d')} — {platform.node()} "
          f"({os.cpu_count()} cores, Python {platform.python_version()})")
    results = []
    for nodes, pods in sizes:
        r = await run_size(nodes, pods)
        report(r)
        results.append(r)
    print("summary:")
    for r in results:
        alg = r["algorithm_cpu_seconds"] / max(r["cycles"], 1) * 1000
        target = " (target >= 300 pods/s)" if r["nodes"] >= 5000 else ""
        print(f"  {r['nodes']:>5} nodes, {r['pods']:>6} pods: {r['rate']:5.0f} pods/s end to end{target}; "
              f"algorithm {alg:.2f} ms/pod (CPU); bind {r['bind_seconds'] / max(r['bound'], 1) * 1000:.0f} ms")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="500:1000,5000:10000", help="nodes:pods,... (default 500:1000,5000:10000)")
    a = ap.parse_args()
    asyncio.run(main([tuple(int(x) for x in s.split(":")) for s in a.sizes.split(",")]))
