"""kwok's CI figures on kybernetes: 5,000 simulated nodes Ready, then 10,000 pods of Deployments Running.

Starts `kyb server --sim-nodes 5000` (API server, controller manager, scheduler and the sim-nodes
process), and measures, in one run:
  1. the time from the API server answering /readyz to all nodes Ready with a podCIDR;
  2. the CPU each process uses while the cluster idles (heartbeats: a Lease renewal per node every 10 s);
  3. the time from creating 10 Deployments of 1,000 replicas to 10,000 of their pods Running;
  4. the RSS of the server's process tree at that size, per process;
and prints the CPU every process used in each phase.

    .venv/bin/python benchmarks/cluster.py [--nodes 5000] [--deployments 10] [--replicas 1000]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scheduler import (  # noqa: E402
    RESTClient,
    cpu_by_role,
    create_all,
    loadavg,
    process_tree,
    rss_bytes,
    start_cluster,
    wait_nodes_ready,
)


def deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                                           "resources": {"requests": {"cpu": "10m",
                                                                                      "memory": "16Mi"}}}]}}}}


async def wait_pods_running(client: RESTClient, namespace: str, count: int, timeout: float = 600.0) -> float:
    t0 = time.monotonic()
    running: set[str] = set()

    async def run() -> None:
        initial = await client.list("", "v1", "pods", namespace)
        rv = initial["metadata"]["resourceVersion"]
        for p in initial["items"]:
            if (p.get("status") or {}).get("phase") == "Running":
                running.add(p["metadata"]["name"])
        while len(running) < count:
            async for ev in client.watch("", "v1", "pods", namespace, resourceVersion=rv, timeoutSeconds=120):
                obj = ev["object"]
                if ev["type"] == "ERROR":
                    break
                rv = obj["metadata"]["resourceVersion"]
                if ev["type"] != "DELETED" and (obj.get("status") or {}).get("phase") == "Running":
                    running.add(obj["metadata"]["name"])
                else:
                    running.discard(obj["metadata"]["name"])
                if len(running) >= count:
                    return

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        raise TimeoutError(f"only {len(running)} of {count} pods Running after {timeout:.0f}s") from None
    return time.monotonic() - t0


def cpu_line(before: dict, after: dict) -> str:
    d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return ", ".join(f"{k} {v:.1f}s" for k, v in sorted(d.items(), key=lambda kv: -kv[1]) if v >= 0.05)


async def main(nodes: int, deployments: int, replicas: int) -> None:
    pods = deployments * replicas
    print(f"kybernetes cluster benchmark — {time.strftime('%Y-%m-%d')} — {platform.node()} "
          f"({os.cpu_count()} cores, Python {platform.python_version()})")
    with tempfile.TemporaryDirectory(prefix="kyb-cluster-bench-") as tmp:
        print(f"  1-min load before start: {loadavg()}")
        c = start_cluster(Path(tmp), nodes)
        client = RESTClient.from_kubeconfig(c.kubeconfig)
        try:
            tree = process_tree(c.proc.pid)
            cpu0 = cpu_by_role(tree)
            t_nodes = await wait_nodes_ready(client, nodes)
            tree = process_tree(c.proc.pid)
            cpu1 = cpu_by_role(tree)
            print(f"  {nodes} nodes Ready (with podCIDR) {t_nodes:.1f}s after the API server was ready "
                  f"(target <= 60 s)")
            print(f"    CPU: {cpu_line(cpu0, cpu1)}")
            await client.create("", "v1", "namespaces", {"metadata": {"name": "bench"}})
            await asyncio.sleep(5)
            idle0 = cpu_by_role(tree)
            await asyncio.sleep(10)
            idle1 = cpu_by_role(tree)
            share = {k: (idle1.get(k, 0) - idle0.get(k, 0)) / 10 * 100 for k in idle1}
            print(f"  idle cluster ({nodes // 10} Lease renewals/s): "
                  + ", ".join(f"{k} {v:.0f}%" for k, v in sorted(share.items(), key=lambda kv: -kv[1]) if v >= 0.5)
                  + " of a core")
            print(f"  1-min load before the Deployments: {loadavg()}")
            cpu1 = cpu_by_role(tree)
            t0 = time.monotonic()
            watcher = asyncio.create_task(wait_pods_running(client, "bench", pods))
            await asyncio.sleep(0.5)  # the watch is open before the first pod exists
            t0 = time.monotonic()
            await create_all(client, (deployment(f"web-{i}", replicas) for i in range(deployments)), "bench",
                             "deployments", "apps", "v1", workers=deployments)
            await watcher
            t_pods = time.monotonic() - t0
            cpu2 = cpu_by_role(tree)
            print(f"  {pods} pods of {deployments} Deployments Running {t_pods:.1f}s after the Deployments were "
                  f"created ({pods / t_pods:.0f} pods/s; target <= 60 s)")
            print(f"    CPU: {cpu_line(cpu1, cpu2)}")
            rss: dict[str, int] = {}
            for pid, role in tree.items():
                rss[role] = rss.get(role, 0) + rss_bytes(pid)
            total = sum(rss.values())
            print(f"  RSS of the server's process tree with {nodes} nodes and {pods} pods: {total / 2**20:.0f} MiB ("
                  + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in sorted(rss.items(), key=lambda kv: -kv[1])) + ")")
        finally:
            await client.close()
            c.stop(timeout=60)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--deployments", type=int, default=10)
    ap.add_argument("--replicas", type=int, default=1000)
    a = ap.parse_args()
    asyncio.run(main(a.nodes, a.deployments, a.replicas))
