"""Services on two real nodes: a pod directly vs its ClusterIP (iptables and userspace), endpoint changes, DNS.

Boots the two-node cluster of tests/test_proxy_iptables.py (node A: `kyb server` with the iptables
proxy; node B: `kyb agent --proxy-mode userspace`), each node a network namespace created here, joined
by one veth pair, with no route off the machine (DESIGN.md, Network safety). Every packet below is
sent from inside a pod's or a node's network namespace. Measures, in one run:

  1. requests/s and latency p50/p99 of HTTP/1.0 GETs (benchmarks/service_load.py, the same
     generator, concurrency, count and time bound for every path) from a client pod to a busybox
     httpd pod directly and through its ClusterIP. Fairness: each node has its own client pod
     and its own target pod (with its own Service), so the iptables path (client-a -> svc-a ->
     web-a, all on node A) and the userspace path (client-b -> svc-b -> web-b, all on node B) are
     each compared with the same client hitting the same pod by its IP; the two modes never
     differ in the hop between nodes. Direct and ClusterIP rounds alternate, so a neighbour's load
     on the machine falls on both alike. The client pod uses one ephemeral port range for the
     direct runs and a disjoint one for the ClusterIP runs: DNAT keeps the client's address and
     port, so both paths reach the server with the same 4-tuples, but the client's TCP timestamps
     carry a different random offset per destination address (pod IP vs ClusterIP). A SYN that
     reuses a 4-tuple the server still holds in TIME_WAIT from the other path fails the server's
     PAWS check (TcpExtPAWSTimewait), is answered with an ACK, reset, and retried 1 s later. Within
     one path the timestamps only grow, so reuse there is accepted, as it is for real clients;
  2. the time from `kubectl scale` 1 -> 2 to the new endpoint receiving traffic through the
     ClusterIP, split into: scale -> EndpointSlice says ready (controllers, kubelet), and
     EndpointSlice ready -> first answer from the new pod (the proxy programming the change),
     on node A (iptables) and node B (userspace) at once;
  3. UDP queries/s answered by the cluster DNS (kube-dns, 10.43.0.10) from each node's namespace.

Targets (issue 5): iptables >= 0.9x direct; userspace >= 0.3x direct; endpoint change programmed
in < 1 s; DNS >= 5,000 queries/s. Needs root, containerd, runc, CNI plugins, busybox-static, kubectl.

    .venv/bin/python benchmarks/service.py [--rounds 3] [--seconds 3] [--conc 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_agent_cri import _missing  # noqa: E402
from tests.test_proxy_iptables import (  # noqa: E402
    Cluster,
    _teardown,
    boot,
    httpd_pod_spec,
    netns_of_sleeper,
    service,
)
from tests.test_proxy_iptables import client_pod as sleeper_pod  # noqa: E402

LOAD = Path(__file__).resolve().with_name("service_load.py")
DNS_IP = "10.43.0.10"
CLIENT_MARK = {"node-a": "86401", "node-b": "86402"}  # `sleep N` tells the two client pods' processes apart


def client_pod(name: str, node: str) -> dict:
    return sleeper_pod(name, node, CLIENT_MARK[node])


def web_pod(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": httpd_pod_spec(node)}


def pod_netns(node: str) -> str:
    """/proc/PID/ns/net of the client pod on `node` (found by its `sleep` argument)."""
    return netns_of_sleeper(CLIENT_MARK[node])


def run_load(netns: str, *args: str, timeout: float = 60) -> dict:
    p = subprocess.run(["nsenter", f"--net={netns}", sys.executable, str(LOAD), *args],
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"load generator failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout.splitlines()[-1])


# Disjoint ephemeral port ranges of the client pod, one per path (see `http_paths`).
PORT_RANGES = {"direct": (10000, 37767), "proxied": (37768, 65535)}


def set_port_range(netns: str, lo: int, hi: int) -> None:
    subprocess.run(["nsenter", f"--net={netns}", "sysctl", "-q", "-w", f"net.ipv4.ip_local_port_range={lo} {hi}"],
                   check=True, capture_output=True, timeout=10)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def http_paths(c: Cluster, a: argparse.Namespace) -> dict:
    targets = {}
    for node, suffix in (("node-a", "a"), ("node-b", "b")):
        pod_ip = c.running_pod(f"web-{suffix}")["status"]["podIP"]
        cip = c.get("service", f"svc-{suffix}")["spec"]["clusterIP"]
        ns = pod_netns(node)
        # warm up and wait until the proxy has the Service
        c.wait(f"svc-{suffix} to answer from {node}",
               lambda ns=ns, cip=cip: run_load(ns, "http", cip, "80", "--conc", "1", "--count", "5",
                                               "--seconds", "2")["requests"] == 5, 60)
        targets[node] = (ns, pod_ip, cip)
    runs: dict[str, list[dict]] = {k: [] for k in ("direct-a", "iptables", "direct-b", "userspace")}
    bound = ["--conc", str(a.conc), "--count", str(a.count), "--seconds", str(a.seconds)]
    for r in range(a.rounds):
        for node, direct, proxied in (("node-a", "direct-a", "iptables"), ("node-b", "direct-b", "userspace")):
            ns, pod_ip, cip = targets[node]
            order = ((direct, pod_ip), (proxied, cip)) if r % 2 == 0 else ((proxied, cip), (direct, pod_ip))
            for key, host in order:
                set_port_range(ns, *PORT_RANGES["direct" if host == pod_ip else "proxied"])
                res = run_load(ns, "http", host, "80", *bound, timeout=a.seconds + 30)
                res["loadavg"] = loadavg()
                runs[key].append(res)
                print(f"  round {r + 1} {key:9} {json.dumps(res)}", flush=True)
    summary: dict = {"pairs": {}}
    for proxied, direct in (("iptables", "direct-a"), ("userspace", "direct-b")):
        # each round's ClusterIP run next to its own direct run, seconds apart: a neighbour's burst of
        # load on the machine lands on one round's pair, not on one path's total
        summary["pairs"][proxied] = [round(p["rps"] / d["rps"], 3) if d["rps"] else 0.0
                                     for p, d in zip(runs[proxied], runs[direct], strict=True)]
    for key, rs in runs.items():
        summary[key] = {"rps": round(sum(x["requests"] for x in rs) / sum(x["elapsed_s"] for x in rs), 1),
                        "p50_ms": round(statistics.median(x["p50_ms"] for x in rs), 2),
                        "p99_ms": round(statistics.median(x["p99_ms"] for x in rs), 2),
                        "errors": sum(x["errors"] for x in rs),
                        "syn_retrans": sum(x.get("syn_retrans", 0) for x in rs)}
    return summary


class SliceWatch:
    """`kubectl get endpointslices -w` in node A: when each address was first seen ready."""

    def __init__(self, c: Cluster, service_name: str):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", c.a, "kubectl", "--kubeconfig", str(c.kubeconfig), "get", "endpointslices",
             "-l", f"kubernetes.io/service-name={service_name}", "-w", "-o", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        self.ready_at: dict[str, float] = {}
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buf = ""
        for line in self.proc.stdout:  # pretty-printed objects, one after another
            buf += line
            if line.rstrip("\n") != "}":
                continue
            t = time.monotonic()
            obj, buf = json.loads(buf), ""
            for ep in obj.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready"):
                    for ip in ep.get("addresses", []):
                        self.ready_at.setdefault(ip, t)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(10)


def scale_up(c: Cluster) -> dict:
    c.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "scale"},
             "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "scale"}},
                      "template": {"metadata": {"labels": {"app": "scale"}}, "spec": httpd_pod_spec()}}},
            service("scale", {"app": "scale"}))
    c.wait("scale 1/1 ready", lambda: c.get("deployment", "scale")["status"].get("readyReplicas") == 1, 120)
    cip = c.get("service", "scale")["spec"]["clusterIP"]
    watch = SliceWatch(c, "scale")
    probes = {}
    try:
        for node in ("node-a", "node-b"):
            ns = pod_netns(node)
            c.wait(f"scale's ClusterIP to answer from {node}",
                   lambda ns=ns: run_load(ns, "http", cip, "80", "--conc", "1", "--count", "3",
                                          "--seconds", "2")["requests"] == 3, 60)
            p = subprocess.Popen(["nsenter", f"--net={ns}", sys.executable, str(LOAD), "probe", cip, "80",
                                  "--seconds", "60", "--bodies", "2"], stdout=subprocess.PIPE, text=True)
            first = json.loads(p.stdout.readline())  # the old pod answers: the probe is running
            probes[node] = (p, first["body"])
        time.sleep(0.5)
        t_scale = time.monotonic()
        c.kubectl("scale", "deployment", "scale", "--replicas=2")
        out: dict[str, object] = {}
        new_first: dict[str, float] = {}
        new_name = ""
        for node, (p, old) in probes.items():
            lines, _ = p.communicate(timeout=90)
            for line in lines.splitlines():
                rec = json.loads(line)
                if rec.get("body") not in (None, old):
                    new_first[node] = rec["t"]
                    new_name = rec["body"]
        pods = {p["metadata"]["name"]: p for p in c.get("pods", "", "-l", "app=scale")["items"]}
        if not new_name:
            return {"error": "no probe saw the new pod answer within 60 s", "pods": sorted(pods)}
        new_ip = pods[new_name]["status"]["podIP"]
        time.sleep(0.5)
        t_ready = watch.ready_at.get(new_ip)
        out["new_pod"] = f"{new_name} on {pods[new_name]['spec']['nodeName']}"
        out["scale_to_endpoint_ready_s"] = round(t_ready - t_scale, 3) if t_ready else None
        for node, mode in (("node-a", "iptables"), ("node-b", "userspace")):
            t = new_first.get(node)
            out[f"{mode}_scale_to_traffic_s"] = round(t - t_scale, 3) if t else None
            out[f"{mode}_programmed_s"] = round(t - t_ready, 3) if t and t_ready else None
        return out
    finally:
        watch.stop()
        for p, _ in probes.values():
            if p.poll() is None:
                p.kill()
                p.wait()


def dns_qps(c: Cluster, a: argparse.Namespace) -> dict:
    name = "svc-a.default.svc.cluster.local"
    out = {}
    for node, ns in (("node-a", f"/run/netns/{c.a}"), ("node-b", f"/run/netns/{c.b}")):
        c.wait(f"the cluster DNS from {node}", lambda ns=ns: run_load(
            ns, "dns", DNS_IP, name, "--count", "10", "--seconds", "2")["answered"] == 10, 60)
        res = run_load(ns, "dns", DNS_IP, name, "--count", str(a.dns_count), "--seconds", str(a.dns_seconds),
                       "--window", str(a.dns_window), timeout=a.dns_seconds + 30)
        res["loadavg"] = loadavg()
        print(f"  dns from {node}: {json.dumps(res)}", flush=True)
        out[node] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="time bound of each load run")
    ap.add_argument("--count", type=int, default=20000, help="request bound of each load run")
    ap.add_argument("--conc", type=int, default=8)
    ap.add_argument("--dns-count", type=int, default=100000)
    ap.add_argument("--dns-seconds", type=float, default=5.0)
    ap.add_argument("--dns-window", type=int, default=32)
    a = ap.parse_args()
    if reason := _missing():
        sys.exit(f"cannot run: {reason}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below cleans up
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, python "
          f"{platform.python_version()}; loadavg at start {loadavg()}", flush=True)
    c = Cluster(f"{(os.getpid() + 0x800) % 0xfff:03x}")
    try:
        t0 = time.monotonic()
        boot(c)
        c.apply(client_pod("client-a", "node-a"), client_pod("client-b", "node-b"),
                web_pod("web-a", "node-a"), web_pod("web-b", "node-b"),
                service("svc-a", {"app": "web-a"}), service("svc-b", {"app": "web-b"}))
        for name in ("client-a", "client-b", "web-a", "web-b"):
            c.running_pod(name)
        print(f"cluster up with pods in {time.monotonic() - t0:.1f} s; loadavg {loadavg()}", flush=True)
        print("1. HTTP/1.0 GET, one connection per request, "
              f"conc {a.conc}, {a.rounds} rounds of <= {a.seconds} s / {a.count} requests per path:", flush=True)
        http = http_paths(c, a)
        print("2. scale-up 1 -> 2 to traffic on the new endpoint:", flush=True)
        scale = scale_up(c)
        print("  " + json.dumps(scale), flush=True)
        print("3. cluster DNS, UDP A queries:", flush=True)
        dns = dns_qps(c, a)
    finally:
        _teardown(c)

    ipt = http["iptables"]["rps"] / http["direct-a"]["rps"]
    usr = http["userspace"]["rps"] / http["direct-b"]["rps"]
    pairs = http.pop("pairs")
    ipt_med, usr_med = statistics.median(pairs["iptables"]), statistics.median(pairs["userspace"])
    print(f"\nresults (loadavg at end {loadavg()}):")
    for mode, ratios in pairs.items():
        print(f"  {mode} / direct, round by round: {', '.join(f'{x:.2f}' for x in ratios)}")
    for key, s in http.items():
        print(f"  {key:10} {s['rps']:8.1f} req/s  p50 {s['p50_ms']:6.2f} ms  p99 {s['p99_ms']:6.2f} ms  "
              f"errors {s['errors']}  SYN retransmits {s['syn_retrans']}")
    checks = [
        ("iptables ClusterIP / direct (node A) req/s", ipt, ">= 0.9", ipt >= 0.9),
        ("  median of the rounds' ratios", ipt_med, ">= 0.9", ipt_med >= 0.9),
        ("  p50 latency ratio (direct / iptables)", http["direct-a"]["p50_ms"] / http["iptables"]["p50_ms"], "", None),
        ("userspace ClusterIP / direct (node B) req/s", usr, ">= 0.3", usr >= 0.3),
        ("  median of the rounds' ratios", usr_med, ">= 0.3", usr_med >= 0.3),
        ("  p50 latency ratio (direct / userspace)", http["direct-b"]["p50_ms"] / http["userspace"]["p50_ms"], "",
         None),
    ]
    for mode in ("iptables", "userspace"):
        v = scale.get(f"{mode}_programmed_s")
        checks.append((f"endpoint ready -> traffic, {mode} (s)", v, "< 1", v is not None and v < 1.0))
    for node, res in dns.items():
        checks.append((f"DNS answers/s from {node}", res["qps"], ">= 5000", res["qps"] >= 5000))
    for label, value, target, ok in checks:
        val = "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) and value < 100 else f"{value}"
        verdict = "" if ok is None else ("MET" if ok else "MISSED")
        print(f"  {label:46} {val:>10}  {target:8} {verdict}")


if __name__ == "__main__":
    main()
