"""Pod startup latency on one real node, against containerd's own time for the same containers.

Creates a network namespace (whose only route out ends in a second namespace it creates: no
packet can leave the machine), runs `kyb server` with its embedded agent and containerd in
it, and measures in one run:
  1. containerd alone: N pods started at once straight through CRI (RunPodSandbox, then
     CreateContainer and StartContainer with the configs the agent would send), per pod the
     time from the first call to StartContainer returning;
  2. kybernetes: N pods created at once through the API, per pod the time from its create
     request to a watch event showing it Running;
and prints p50/p99 of both and their ratio, with where the time went: for containerd alone
RunPodSandbox against CreateContainer + StartContainer, for kybernetes the first watch
events showing the pod bound to the node (scheduler), with its pod IP (kubelet: sandbox
up) and Running, the CPU each component used, and what a new inode cost on the node's disk
as each phase began (on a journal-less ext4 that follows the disk's recent churn, and every
start pays it dozens of times). Everything is removed afterwards.

    .venv/bin/python benchmarks/pod_startup.py [--pods 30]     (as root)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "kybernetes/busybox:1.36"
NS, PEER = "kybbench-n", "kybbench-p"
IP, PEER_IP = "10.254.253.1", "10.254.253.2"
CGROUP = "/kyb-bench"


def sh(*argv: str, check: bool = True) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {out.stderr}")
    return out.stdout


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                {"name": "c", "image": IMAGE, "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}]}}


# --- CPU: the whole node (server, its components, containerd, shims, runc, CNI plugins) sits in one cgroup
NODE_CGROUP = "kyb-bench-node"
LABELS = (("kybernetes.cli.main server", "API server"), ("controller-manager", "controller manager"),
          ("scheduler", "scheduler"), (" agent", "agent (kubelet, proxy)"), (" dns", "dns"),
          ("containerd-shim", "containerd shims"), ("containerd", "containerd"))


def node_cgroup() -> Path:
    v1 = Path("/sys/fs/cgroup/cpuacct")
    return (v1 if v1.is_dir() else Path("/sys/fs/cgroup")) / NODE_CGROUP


def cgroup_cpu(cg: Path) -> float:
    """CPU seconds used by a cgroup's processes, exited ones included (v1 cpuacct or v2 cpu.stat)."""
    try:
        return int((cg / "cpuacct.usage").read_text()) / 1e9
    except OSError:
        pass
    try:
        for line in (cg / "cpu.stat").read_text().splitlines():
            if line.startswith("usage_usec"):
                return int(line.split()[1]) / 1e6
    except OSError:
        pass
    return 0.0


def cpu_snapshot(cg: Path) -> tuple[float, dict[int, tuple[str, float]], float]:
    hz = os.sysconf("SC_CLK_TCK")
    procs: dict[int, tuple[str, float]] = {}
    for pid in (cg / "cgroup.procs").read_text().split():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        label = next((name for key, name in LABELS if key in cmd), "")
        if label:
            procs[int(pid)] = (label, (int(fields[11]) + int(fields[12])) / hz)
    return cgroup_cpu(cg), procs, cgroup_cpu(cg.parent / CGROUP.lstrip("/"))


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all of /proc/stat's cpu line but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def inode_cost(where: Path, n: int = 100) -> float:
    """CPU microseconds per new directory on the node's filesystem, right now.

    Every sandbox and container start creates dozens of inodes (snapshots, logs, the pod's
    files). On an ext4 without a journal (this machine's) each new inode first scans the
    free ones deleted in the last minutes, so the cost follows how much the disk has churned
    lately: 5 to 25 us on a quiet disk, 100 to 300 us after a few runs in a row.
    """
    where.mkdir(parents=True)
    t0 = time.process_time()
    for i in range(n):
        (where / str(i)).mkdir()
    return (time.process_time() - t0) / n * 1e6


def cpu_used(before, after) -> dict[str, float]:
    """CPU seconds per component between two snapshots; the rest of the cgroup's time is short-lived processes."""
    out: dict[str, float] = {}
    for pid, (label, t) in after[1].items():
        out[label] = out.get(label, 0.0) + t - before[1].get(pid, (label, 0.0))[1]
    total = after[0] - before[0]
    out["runc, CNI plugins, other short-lived"] = total - sum(out.values())
    out["pods' cgroups (runc init, pause, sleep)"] = after[2] - before[2]
    out["total"] = total + out["pods' cgroups (runc init, pause, sleep)"]
    return out


# --- inside the namespace ----------------------------------------------------------------------------
async def containerd_alone(socket: str, n: int, log_root: Path,
                           at_once: int | None = None) -> tuple[list[float], list[float]]:
    """All n requested at time 0; `at_once`: at most that many pods being started at any moment."""
    from kybernetes.kubelet.cri.client import CRIClient
    from kybernetes.kubelet.runtime.cri_config import container_config, sandbox_config

    cri = CRIClient(socket)
    image = (await cri.image_status(IMAGE)).id
    sandbox: dict[int, float] = {}
    slots = asyncio.Semaphore(at_once or n)
    t0 = time.monotonic()

    async def one(i: int) -> float:
        async with slots:
            return await start(i)

    async def start(i: int) -> float:
        p = pod(f"ctr-{i}")
        p["metadata"]["uid"] = str(uuid.uuid4())
        log_dir = log_root / f"default_ctr-{i}_{p['metadata']['uid']}"
        (log_dir / "c").mkdir(parents=True, exist_ok=True)
        sb_cfg = sandbox_config(p, log_dir, CGROUP)
        sid = await cri.run_pod_sandbox(sb_cfg)
        sandbox[i] = time.monotonic() - t0
        cfg = container_config(p, p["spec"]["containers"][0], 0, sb_cfg, image, [], [])
        cid = await cri.create_container(sid, cfg, sb_cfg)
        await cri.start_container(cid)
        took = time.monotonic() - t0
        return took

    try:
        took = list(await asyncio.gather(*(one(i) for i in range(n))))
        return took, [sandbox[i] for i in range(n)]
    finally:
        await cri.close()


async def remove_containerd_alone_pods(socket: str) -> None:
    from kybernetes.kubelet.cri.client import CRIClient

    cri = CRIClient(socket)
    try:
        for sb in await cri.list_pod_sandboxes():
            if sb.metadata.name.startswith("ctr-"):
                await cri.stop_pod_sandbox(sb.id)
                await cri.remove_pod_sandbox(sb.id)
    finally:
        await cri.close()


async def through_kubelet(kubeconfig: str, n: int, prefix: str) -> dict[str, list[float]]:
    """Per stage, per pod: seconds from the create request to the first watch event showing it."""
    from kybernetes.client.rest import RESTClient

    client = RESTClient.from_kubeconfig(kubeconfig, "pod-startup-bench")
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    bound: dict[str, float] = {}
    has_ip: dict[str, float] = {}
    try:
        rv = (await client.list("", "v1", "pods", "default"))["metadata"]["resourceVersion"]

        async def watch() -> None:
            async for ev in client.watch("", "v1", "pods", "default", resourceVersion=rv, timeoutSeconds=300):
                obj = ev["object"]
                name = obj["metadata"]["name"]
                if not name.startswith(prefix):
                    continue
                now, status = time.monotonic(), obj.get("status") or {}
                if (obj.get("spec") or {}).get("nodeName"):
                    bound.setdefault(name, now)
                if status.get("podIP"):
                    has_ip.setdefault(name, now)
                if status.get("phase") == "Running":
                    running.setdefault(name, now)
                    if len(running) == n:
                        return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.2)

        async def create(i: int) -> None:
            name = f"{prefix}{i}"
            created[name] = time.monotonic()
            await client.create("", "v1", "pods", pod(name), "default")

        await asyncio.gather(*(create(i) for i in range(n)))
        await asyncio.wait_for(watcher, 300)
        return {stage: [seen.get(k, running[k]) - created[k] for k in created]
                for stage, seen in (("bound", bound), ("pod IP", has_ip), ("Running", running))}
    finally:
        await client.close()


async def inner(kubeconfig: str, socket: str, n: int, log_root: str) -> None:
    from kybernetes.kubelet.node_agent import parallel_pod_starts

    cg = node_cgroup()
    warm = await through_kubelet(kubeconfig, 1, "warm-")  # the image's snapshot, the CNI bridge
    cpu: dict[str, dict[str, float]] = {}
    fs: dict[str, float] = {}

    async def phase(label: str, run):
        await asyncio.sleep(2)  # the pods of the phase before are removed; let the node settle
        fs[label] = inode_cost(Path(log_root).parent / "inode-probe" / str(len(fs)))
        s0, t0, m0 = cpu_snapshot(cg), os.times(), machine_busy()
        try:
            out = await run()
            s1, t1, m1 = cpu_snapshot(cg), os.times(), machine_busy()
        finally:
            await remove_containerd_alone_pods(socket)
        cpu[label] = cpu_used(s0, s1)
        cpu[label]["benchmark client"] = t1.user + t1.system - t0.user - t0.system
        cpu[label]["rest of the machine (kernel threads, others)"] = (
            m1 - m0 - cpu[label]["total"] - cpu[label]["benchmark client"])
        return out

    bound = parallel_pod_starts()  # as many at once as the kubelet starts
    ctr, sandboxes = await phase("containerd alone", lambda: containerd_alone(socket, n, Path(log_root)))
    ctr_bounded, _ = await phase(f"{bound} at a time", lambda: containerd_alone(socket, n, Path(log_root), bound))
    kyb = await phase("kybernetes", lambda: through_kubelet(kubeconfig, n, "pod-"))
    print(json.dumps({"warmup": warm["Running"], "containerd": ctr, "sandboxes": sandboxes, "bound": bound,
                      "containerd bounded": ctr_bounded, "kubelet": kyb, "cpu": cpu, "fs": fs}))


# --- outside: namespace, server, cleanup -------------------------------------------------------------
def setup_network() -> None:
    for ns in (NS, PEER):
        sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", "kybbench-a", "type", "veth", "peer", "name", "kybbench-b")
    sh("ip", "link", "set", "kybbench-a", "netns", NS)
    sh("ip", "link", "set", "kybbench-b", "netns", PEER)
    for ns, dev, ip in ((NS, "kybbench-a", IP), (PEER, "kybbench-b", PEER_IP)):
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
    sh("ip", "-n", NS, "route", "add", "default", "via", PEER_IP)


def kubectl(kubeconfig: Path, *args: str, check: bool = False) -> str:
    return sh("ip", "netns", "exec", NS, "kubectl", "--kubeconfig", str(kubeconfig), *args, check=check)


def cleanup(proc: subprocess.Popen | None, data: Path) -> None:
    cleanup_node(proc, data)
    try:
        node_cgroup().rmdir()
    except OSError:
        pass


def cleanup_node(proc: subprocess.Popen | None, data: Path) -> None:
    if proc is not None and proc.poll() is None:
        kubeconfig = data / "kubeconfig.yaml"
        kubectl(kubeconfig, "delete", "pods", "--all", "--grace-period=1", "--timeout=60s")
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    for ctrl in Path("/sys/fs/cgroup").iterdir():
        top = ctrl / CGROUP.lstrip("/")
        if top.is_dir():
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [top]:
                for pid in (d / "cgroup.procs").read_text().split() if (d / "cgroup.procs").exists() else ():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.3)
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [top]:
                try:
                    d.rmdir()
                except OSError:
                    pass
    for ns in (NS, PEER):
        for pid in sh("ip", "netns", "pids", ns, check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        sh("ip", "netns", "del", ns, check=False)
    time.sleep(0.3)
    shutil.rmtree(data, ignore_errors=True)


def main(n: int, keep_log: str = "") -> None:
    if os.geteuid() != 0:
        sys.exit("needs root: network namespaces and containerd")
    data = Path(tempfile.mkdtemp(prefix="kyb-bench-", dir="/tmp"))
    proc = None
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    try:
        setup_network()
        sh(sys.executable, str(ROOT / "tools" / "build_images.py"), str(data / "agent" / "images"))
        log = open(data / "server.log", "wb")  # noqa: SIM115 - closed with the process
        cg = node_cgroup()
        cg.mkdir(exist_ok=True)
        proc = subprocess.Popen(
            ["sh", "-c", f'echo $$ > {cg}/cgroup.procs && exec "$@"', "sh", "nsenter", f"--net=/run/netns/{NS}", "unshare", "--mount", "--propagation", "private", sys.executable,
             "-m", "kybernetes.cli.main", "server", "--data-dir", str(data), "--port", "6443", "--cgroup-root",
             CGROUP, "--agent-loopback-routes", "--node-name", "node-a"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        log.close()
        kubeconfig = data / "kubeconfig.yaml"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if kubeconfig.exists() and '"podCIDR"' in kubectl(kubeconfig, "get", "node", "node-a", "-o", "json") \
                    and "True" in kubectl(kubeconfig, "get", "node", "node-a", "-o",
                                          "jsonpath={.status.conditions[?(@.type=='Ready')].status}"):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError("node-a did not become Ready")
        socket = data / "agent" / "containerd" / "containerd.sock"
        load = os.getloadavg()[0]
        out = subprocess.run(
            ["nsenter", f"--net=/run/netns/{NS}", sys.executable, __file__, "--inner", str(kubeconfig), str(socket),
             str(n), str(data / "bench-logs")], capture_output=True, text=True, timeout=600, env=env)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        report(json.loads(out.stdout.strip().splitlines()[-1]), n, load)
    finally:
        if keep_log and (data / "server.log").exists():
            shutil.copy(data / "server.log", keep_log)
        cleanup(proc, data)


def report(r: dict, n: int, load: float) -> None:
    ctr, kyb = r["containerd"], r["kubelet"]["Running"]
    print(f"machine: {platform.node()} {os.cpu_count()} cores, {platform.platform()}")
    print(f"{n} pods created at once on one node (busybox `sleep 3600`, image present); "
          f"1-min load average before: {load:.2f}")
    print(f"{'':38} {'p50':>8} {'p99':>8} {'mean':>8} {'max':>8}")
    rows = (("containerd alone (CRI), all at once", ctr), ("  of which RunPodSandbox returned", r["sandboxes"]),
            (f"containerd alone, {r['bound']} at a time", r["containerd bounded"]),
            ("kybernetes (create->Running)", kyb), ("  create -> bound to the node", r["kubelet"]["bound"]),
            ("  create -> pod IP in status", r["kubelet"]["pod IP"]))
    for label, v in rows:
        print(f"{label:38} {pct(v, .5):7.2f}s {pct(v, .99):7.2f}s {statistics.mean(v):7.2f}s {max(v):7.2f}s")
    bounded = r["containerd bounded"]
    print(f"ratio kybernetes/containerd all at once: p50 {pct(kyb, .5) / pct(ctr, .5):.2f}x, "
          f"p99 {pct(kyb, .99) / pct(ctr, .99):.2f}x; kybernetes/containerd {r['bound']} at a time: "
          f"p50 {pct(kyb, .5) / pct(bounded, .5):.2f}x, p99 {pct(kyb, .99) / pct(bounded, .99):.2f}x")
    cpu = r["cpu"]
    phases = list(cpu)
    print(f"CPU seconds used on the node per phase (all {n} pods; {os.cpu_count()} cores):")
    print(f"  {'':38}" + "".join(f" {p:>17}" for p in phases))
    order = [name for _, name in LABELS] + ["runc, CNI plugins, other short-lived",
                                           "pods' cgroups (runc init, pause, sleep)", "total", "benchmark client",
                                           "rest of the machine (kernel threads, others)"]
    for label in sorted(cpu["kybernetes"], key=lambda x: order.index(x) if x in order else len(order)):
        print(f"  {label:38}" + "".join(f" {cpu[p].get(label, 0.0):16.2f}s" for p in phases))
    print(f"  {'new inode on the disk at the start, us':38}" + "".join(f" {r['fs'][p]:16.0f} " for p in phases))
    worst = max(pct(kyb, .99) / pct(ctr, .99), pct(kyb, .99) / pct(bounded, .99))
    print(f"targets: p99 < 3 s: {'yes' if pct(kyb, .99) < 3 else 'no'}; "
          f"overhead < 2x (against both containerd runs): {'yes' if worst < 2 else 'no'}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        asyncio.run(inner(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))
    else:
        ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        ap.add_argument("--pods", type=int, default=30)
        ap.add_argument("--keep-log", default="", help="copy the server's log (all components) to this file")
        args = ap.parse_args()
        main(args.pods, args.keep_log)
