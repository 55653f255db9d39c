"""How many simulated nodes and pods one `kyb sim-nodes` process carries.

Starts `kyb server` (no scheduler) and a separate `kyb sim-nodes --count N`, waits for
N Ready nodes, then creates P pods bound round-robin and waits until all are Running.
Prints registration time, time to Running, API requests the heartbeats cost per second
(estimated from the lease interval) and CPU seconds used by the sim-nodes process.

    .venv/bin/python benchmarks/sim_nodes.py --nodes 500 --pods 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kybernetes.client.rest import RESTClient  # noqa: E402
from tests.cluster import Cluster, free_port  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main(nodes: int, pods: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        c = Cluster(Path(tmp), free_port(), extra_args=["--disable-scheduler", "--cluster-cidr", "10.64.0.0/12"])
        c.start()
        sim = subprocess.Popen([sys.executable, "-m", "kybernetes.cli.main", "sim-nodes", "--kubeconfig",
                                str(c.kubeconfig), "--count", str(nodes)], stderr=subprocess.DEVNULL)
        client = RESTClient.from_kubeconfig(c.kubeconfig)
        try:
            t0 = time.monotonic()
            while True:
                items = (await client.list("", "v1", "nodes"))["items"]
                ready = [n for n in items if n["spec"].get("podCIDR") and any(
                    x["type"] == "Ready" and x["status"] == "True" for x in n["status"].get("conditions") or ())]
                if len(ready) >= nodes:
                    break
                if time.monotonic() - t0 > 300:
                    raise TimeoutError(f"only {len(ready)} of {nodes} nodes Ready")
                await asyncio.sleep(0.5)
            t_nodes = time.monotonic() - t0
            cpu0 = cpu_seconds(sim.pid)
            t1 = time.monotonic()
            sem = asyncio.Semaphore(32)

            async def make(i: int) -> None:
                body = {"metadata": {"name": f"p{i}"},
                        "spec": {"nodeName": f"sim-node-{i % nodes}", "containers": [{"name": "c", "image": "x"}]}}
                async with sem:
                    await client.create("", "v1", "pods", body, "default")

            await asyncio.gather(*(make(i) for i in range(pods)))
            t_created = time.monotonic() - t1
            while True:
                items = (await client.list("", "v1", "pods", "default"))["items"]
                running = sum(1 for p in items if p["status"].get("phase") == "Running")
                if running >= pods:
                    break
                if time.monotonic() - t1 > 300:
                    raise TimeoutError(f"only {running} of {pods} pods Running")
                await asyncio.sleep(0.5)
            t_running = time.monotonic() - t1
            cpu1 = cpu_seconds(sim.pid)
            await asyncio.sleep(20)
            idle = (cpu_seconds(sim.pid) - cpu1) / 20
            print(f"nodes={nodes} pods={pods}")
            print(f"  nodes registered and Ready (with pod CIDRs): {t_nodes:.1f}s")
            print(f"  pods created in {t_created:.1f}s, all Running after {t_running:.1f}s "
                  f"({pods / t_running:.0f} pods/s)")
            print(f"  sim-nodes CPU while starting pods: {cpu1 - cpu0:.1f}s; idle (heartbeats only): "
                  f"{idle * 100:.0f}% of a core for {nodes / 10:.0f} lease renewals/s")
        finally:
            sim.terminate()
            sim.wait(10)
            await client.close()
            c.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--pods", type=int, default=1000)
    a = ap.parse_args()
    asyncio.run(main(a.nodes, a.pods))
