"""Services end to end on two real nodes: ClusterIP, NodePort, LoadBalancer, readiness, host-gw pod routes.

Network safety (DESIGN.md): two network namespaces created here are the two nodes, joined by
one veth pair and nothing else (no default route anywhere). Node A runs `kyb server` with its
embedded agent and the proxy in iptables mode; node B runs `kyb agent` with the proxy in
userspace mode (no iptables rules of the proxy there). Pod and service ranges are routed
to lo in both. Every request below is sent from a pod or from one of these namespaces.
Needs root, containerd, runc, CNI plugins, busybox-static and kubectl; skipped otherwise.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .test_agent_cri import TOOLS, _kill_cgroup_tree, sh

pytestmark = pytest.mark.timeout(600)

CIDRS = ("10.42.0.0/16", "10.43.0.0/16")


class Cluster:
    def __init__(self, tag: str):
        self.a, self.b = f"kyb{tag}a", f"kyb{tag}b"
        net = int(tag, 16) % 250
        self.ip_a, self.ip_b = f"10.253.{net}.1", f"10.253.{net}.2"
        self.data_a = Path(tempfile.mkdtemp(prefix="kyba-", dir="/tmp"))
        self.data_b = Path(tempfile.mkdtemp(prefix="kybb-", dir="/tmp"))
        self.cgroups = (f"/kyb-test-{tag}a", f"/kyb-test-{tag}b")
        self.kubeconfig = self.data_a / "kubeconfig.yaml"
        self.procs: list[subprocess.Popen] = []
        self.figures: dict[str, object] = {}

    def kubectl(self, *args: str, timeout: float = 60, check: bool = True) -> str:
        return sh("ip", "netns", "exec", self.a, "kubectl", "--kubeconfig", str(self.kubeconfig), *args,
                  timeout=timeout, check=check)

    def get(self, kind: str, name: str = "", *flags: str) -> dict:
        return json.loads(self.kubectl("get", kind, *([name] if name else []), *flags, "-o", "json"))

    def apply(self, *manifests: dict) -> None:
        p = subprocess.run(["ip", "netns", "exec", self.a, "kubectl", "--kubeconfig", str(self.kubeconfig), "apply",
                            "-f", "-"], input="\n".join(json.dumps(m) for m in manifests), capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr

    def exec(self, pod: str, script: str, timeout: float = 120) -> str:
        return self.kubectl("exec", pod, "--", "sh", "-c", script, timeout=timeout)

    def wait(self, what: str, check, timeout: float = 90.0, interval: float = 0.5):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            try:
                last = check()
                if last:
                    return last
            except (AssertionError, subprocess.TimeoutExpired, json.JSONDecodeError, KeyError, IndexError) as e:
                last = e
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {what}; last: {last}\n{self.log_tail()}")

    def log_tail(self, n: int = 30) -> str:
        out = []
        for f in (self.data_a / "server.log", self.data_b / "agent.log"):
            try:
                out += [f"--- {f}"] + f.read_text().splitlines()[-n:]
            except OSError:
                pass
        return "\n".join(out)

    def running_pod(self, name: str) -> dict:
        return self.wait(f"pod {name} Running and Ready", lambda: (lambda p: p if p["status"].get("phase") == "Running"
                         and all(c["ready"] for c in p["status"].get("containerStatuses") or [{"ready": 0}])
                         else None)(self.get("pod", name)))


def _network(c: Cluster) -> None:
    for ns in (c.a, c.b):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", f"{c.a}v", "type", "veth", "peer", "name", f"{c.b}v")
    for ns, ip in ((c.a, c.ip_a), (c.b, c.ip_b)):
        sh("ip", "link", "set", f"{ns}v", "netns", ns)
        sh("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", f"{ns}v")
        sh("ip", "-n", ns, "link", "set", f"{ns}v", "up")
        for cidr in CIDRS:  # safety first: before anything runs in there
            sh("ip", "-n", ns, "route", "add", cidr, "dev", "lo")


def _start(c: Cluster, ns: str, log: Path, argv: list[str]) -> None:
    with open(log, "wb") as out:
        c.procs.append(subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{ns}", "unshare", "--mount", "--propagation", "private",
             sys.executable, "-m", "kybernetes.cli.main", *argv], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True))


UPSTREAM_DNS_PORT = 5353


def _start_upstream_dns(c: Cluster) -> None:
    """The stand-in upstream resolver, on loopback inside node A's namespace."""
    c.procs.append(subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{c.a}", sys.executable, str(Path(__file__).with_name("dns_upstream.py")),
         "127.0.0.1", str(UPSTREAM_DNS_PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True))


def _remove_sandboxes(socket: Path) -> None:
    from kybernetes.kubelet.cri.client import CRIClient

    async def run():
        client = CRIClient(str(socket), timeout=20)
        try:
            for sb in await client.list_pod_sandboxes():
                try:
                    await client.stop_pod_sandbox(sb.id)
                    await client.remove_pod_sandbox(sb.id)
                except Exception:  # noqa: BLE001 - best effort, the kills below follow
                    pass
        finally:
            await client.close()

    import asyncio

    if socket.exists():
        try:
            asyncio.run(asyncio.wait_for(run(), 60))
        except Exception:  # noqa: BLE001
            pass


def _teardown(c: Cluster) -> None:
    for data in (c.data_b, c.data_a):
        _remove_sandboxes(data / "agent" / "containerd" / "containerd.sock")
    for p in reversed(c.procs):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in reversed(c.procs):
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
    for cg in c.cgroups:
        _kill_cgroup_tree(cg)
    for ns in (c.a, c.b):
        for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    time.sleep(0.3)
    for data in (c.data_a, c.data_b):
        shutil.rmtree(data, ignore_errors=True)


def _node_ready(c: Cluster, name: str):
    node = c.get("node", name)
    ready = [x for x in node["status"].get("conditions", []) if x["type"] == "Ready"]
    return node if ready and ready[0]["status"] == "True" and node["spec"].get("podCIDR") else None


def boot(c: Cluster) -> None:
    """Both nodes up and Ready: node A `kyb server` (iptables proxy), node B `kyb agent` (userspace proxy)."""
    _network(c)
    for data in (c.data_a, c.data_b):
        sh(sys.executable, str(TOOLS / "build_images.py"), str(data / "agent" / "images"), timeout=60)
    _start_upstream_dns(c)
    _start(c, c.a, c.data_a / "server.log",
           ["server", "--data-dir", str(c.data_a), "--cluster-dns-upstream", f"127.0.0.1:{UPSTREAM_DNS_PORT}", "--port", "6443", "--bind-address", "0.0.0.0",
            "--advertise-address", c.ip_a, "--cgroup-root", c.cgroups[0], "--agent-loopback-routes",
            "--node-name", "node-a", "--node-ip", c.ip_a, "--proxy-mode", "iptables"])
    c.wait("node-a Ready", lambda: c.kubeconfig.exists() and _node_ready(c, "node-a"), 120)
    tls = c.data_a / "server" / "tls"
    _start(c, c.b, c.data_b / "agent.log",
           ["agent", "--server", f"https://{c.ip_a}:6443", "--token-file", str(c.data_a / "server" / "token"),
            "--ca-file", str(tls / "server-ca.crt"), "--data-dir", str(c.data_b), "--node-name", "node-b",
            "--node-ip", c.ip_b, "--cgroup-root", c.cgroups[1], "--proxy-mode", "userspace",
            *[x for cidr in CIDRS for x in ("--loopback-route", cidr)]])
    c.wait("node-b Ready", lambda: _node_ready(c, "node-b"), 120)


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(f"{os.getpid() % 0xfff:03x}")
    try:
        boot(c)
        yield c
        print("\nmeasured:", json.dumps(c.figures, indent=1))
    finally:
        _teardown(c)


def httpd_pod_spec(node: str = "") -> dict:
    script = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"
    spec = {"terminationGracePeriodSeconds": 1, "containers": [
        {"name": "web", "image": "kybernetes/busybox:1.36", "imagePullPolicy": "IfNotPresent",
         "command": ["sh", "-c", script], "ports": [{"containerPort": 80}]}]}
    if node:
        spec["nodeName"] = node
    return spec


def client_pod(name: str, node: str, mark: str = "3600", labels: dict | None = None) -> dict:
    """A busybox pod that sleeps; a distinct `mark` (its sleep argument) lets `netns_of_sleeper` find it."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [
                {"name": "c", "image": "kybernetes/busybox:1.36", "imagePullPolicy": "IfNotPresent",
                 "command": ["sleep", mark]}]}}


def netns_of_sleeper(mark: str) -> str:
    """/proc/PID/ns/net of the pod whose container runs `sleep MARK` (tests run tools inside it)."""
    want = b"sleep\0" + mark.encode() + b"\0"
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes() == want:
                    return str(d / "ns" / "net")
            except OSError:
                continue
    raise RuntimeError(f"no process runs sleep {mark}")


def service(name: str, selector: dict | None, port: int = 80, type_: str = "ClusterIP", **spec) -> dict:
    s = {"type": type_, "ports": [{"name": "http", "port": port, "targetPort": 80}], **spec}
    if selector is not None:
        s["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": s}


# Debian 12's static busybox `wget` dies of SIGSEGV when given -T (a timeout), and many requests want one;
# HTTP/1.0 over `nc -w` is the same request. (Plain `wget -qO- URL` works: see the first test.)
GET = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port} | tail -n 1"


def fetch(c: Cluster, pod: str, host: str, n: int, port: int = 80) -> collections.Counter:
    one = GET.format(host=host, port=port)
    out = c.exec(pod, f"for i in $(seq {n}); do r=$({one}); echo ${{r:-FAILED}}; done", timeout=30 + n)
    return collections.Counter(out.split())


def host_fetch(ns: str, host: str, port: int) -> str:
    p = subprocess.run(["ip", "netns", "exec", ns, "busybox", "nc", "-w", "3", host, str(port)],
                       input="GET / HTTP/1.0\r\n\r\n", capture_output=True, text=True, timeout=15)
    return (p.stdout.strip().splitlines() or [""])[-1]


@pytest.fixture(scope="module")
def web(cluster):
    c = cluster
    c.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
             "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                      "template": {"metadata": {"labels": {"app": "web"}}, "spec": httpd_pod_spec()}}},
            service("web", {"app": "web"}), client_pod("client-a", "node-a"), client_pod("client-b", "node-b"))
    c.running_pod("client-a")
    c.running_pod("client-b")
    c.wait("3 web replicas ready", lambda: c.get("deployment", "web")["status"].get("readyReplicas") == 3, 120)
    return c.get("service", "web")["spec"]["clusterIP"]


def web_pods(c: Cluster) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in c.get("pods", "", "-l", "app=web")["items"]
            if not p["metadata"].get("deletionTimestamp")}


def test_wget_answers_by_service_name_and_by_cluster_ip(cluster, web):
    """The seeds' check as they write it: busybox `wget -qO-` from another pod, by the Service's DNS name and by
    its ClusterIP, on both nodes (iptables on node A, userspace on node B); `timeout` bounds it, not -T."""
    c = cluster
    names = set(web_pods(c))
    for pod in ("client-a", "client-b"):
        for url in ("http://web.default.svc.cluster.local", f"http://{web}"):
            def answer(pod=pod, url=url):
                out = c.kubectl("exec", pod, "--", "timeout", "10", "wget", "-qO-", url, timeout=30, check=False)
                return out.strip() if out.strip() in names else None
            assert c.wait(f"{pod}: wget -qO- {url}", answer, 60) in names


def test_cluster_ip_spreads_300_requests_over_three_replicas(cluster, web):
    c = cluster
    names = set(web_pods(c))
    c.wait("the ClusterIP to answer", lambda: fetch(c, "client-a", web, 1).keys() <= names)
    counts = fetch(c, "client-a", web, 300)
    c.figures["spread_300_over_3"] = dict(counts)
    assert set(counts) == names, counts
    assert all(v >= 50 for v in counts.values()), counts  # 100 expected each; 50 is > 6 sigma away


def test_scale_to_five_reaches_new_pods_within_seconds(cluster, web):
    c = cluster
    before = set(web_pods(c))
    t0 = time.monotonic()
    c.kubectl("scale", "deployment", "web", "--replicas=5")

    def all_ready():
        pods = web_pods(c)
        ok = len(pods) == 5 and all(p["status"].get("phase") == "Running" and all(
            s["ready"] for s in p["status"].get("containerStatuses") or [{"ready": 0}]) for p in pods.values())
        return set(pods) if ok else None

    names = c.wait("5 web pods ready", all_ready, 120, interval=0.2)
    t_ready = time.monotonic()
    seen: set[str] = set()
    while time.monotonic() - t_ready < 20 and not (names - before) <= seen:
        seen |= set(fetch(c, "client-a", web, 10))
    t_traffic = time.monotonic()
    c.figures["scale_up_ready_s"] = round(t_ready - t0, 2)
    c.figures["ready_to_traffic_s"] = round(t_traffic - t_ready, 2)
    assert (names - before) <= seen, f"new pods {names - before} got no traffic in 20 s (saw {seen})"
    assert t_traffic - t_ready < 5.0
    counts = fetch(c, "client-a", web, 300)
    c.figures["spread_300_over_5"] = dict(counts)
    assert set(counts) == names and all(v >= 25 for v in counts.values()), counts


def test_not_ready_endpoint_gets_no_traffic(cluster, web):
    """A Service without selector and its own EndpointSlice: the proxy follows the ready condition."""
    c = cluster
    pods = sorted(web_pods(c).values(), key=lambda p: p["metadata"]["name"])[:2]

    def slice_(ready_first: bool) -> dict:
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "manual-1", "labels": {"kubernetes.io/service-name": "manual"}},
                "addressType": "IPv4", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
                "endpoints": [{"addresses": [p["status"]["podIP"]], "nodeName": p["spec"]["nodeName"],
                               "conditions": {"ready": ready}}
                              for p, ready in zip(pods, (ready_first, not ready_first), strict=True)]}

    c.apply(service("manual", None), slice_(False))
    ip = c.get("service", "manual")["spec"]["clusterIP"]
    first, second = (p["metadata"]["name"] for p in pods)
    c.wait("only the ready endpoint answers", lambda: set(fetch(c, "client-a", ip, 5)) == {second})
    assert set(fetch(c, "client-a", ip, 40)) == {second}
    t0 = time.monotonic()
    c.apply(slice_(True))
    c.wait("traffic to move to the other endpoint", lambda: set(fetch(c, "client-a", ip, 5)) == {first},
           interval=0.1)
    c.figures["readiness_flip_to_traffic_s"] = round(time.monotonic() - t0, 2)
    assert set(fetch(c, "client-a", ip, 40)) == {first}


def test_node_port_answers_on_the_node_address(cluster, web):
    c = cluster
    c.apply(service("web-np", {"app": "web"}, type_="NodePort"))
    port = c.get("service", "web-np")["spec"]["ports"][0]["nodePort"]
    names = set(web_pods(c))
    for ns, ip in ((c.a, c.ip_a), (c.b, c.ip_b)):  # node A: iptables; node B: userspace
        def answer(ns=ns, ip=ip):
            return host_fetch(ns, ip, port) in names
        c.wait(f"NodePort {port} on {ip}", answer, 30)
    # and from a pod on the other node, through the node address
    assert set(fetch(c, "client-a", c.ip_b, 5, port)) <= names


def test_load_balancer_gets_an_ingress_address_that_answers(cluster, web):
    c = cluster
    c.apply(service("web-lb", {"app": "web"}, port=8080, type_="LoadBalancer"))
    ingress = c.wait("load balancer ingress", lambda: c.get("service", "web-lb")["status"]["loadBalancer"]["ingress"])
    ips = sorted(i["ip"] for i in ingress)
    assert ips == sorted([c.ip_a, c.ip_b])
    names = set(web_pods(c))
    for ip in ips:
        c.wait(f"{ip}:8080 to answer", lambda ip=ip: host_fetch(c.a, ip, 8080) in names, 30)
    c.kubectl("patch", "service", "web-lb", "-p", '{"spec":{"type":"ClusterIP"}}')
    c.wait("ingress removed", lambda: not c.get("service", "web-lb")["status"].get("loadBalancer", {}).get("ingress"))


def test_userspace_mode_on_node_b_serves_cluster_ip_without_iptables(cluster, web):
    c = cluster
    names = set(web_pods(c))
    c.wait("the ClusterIP to answer on node-b", lambda: set(fetch(c, "client-b", web, 1)) <= names)
    counts = fetch(c, "client-b", web, 50)
    c.figures["userspace_spread_50"] = dict(counts)
    assert set(counts) == names, counts  # round robin: every endpoint, evenly
    assert max(counts.values()) - min(counts.values()) <= 1, counts
    rules = sh("ip", "netns", "exec", c.b, "iptables-save")
    assert "KUBE-" not in rules


def test_pod_on_node_a_reaches_pod_and_service_on_node_b(cluster, web):
    c = cluster
    c.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "only-b", "labels": {"app": "only-b"}},
             "spec": httpd_pod_spec("node-b")}, service("only-b", {"app": "only-b"}))
    pod_ip = c.running_pod("only-b")["status"]["podIP"]
    assert pod_ip.startswith(c.get("node", "node-b")["spec"]["podCIDR"].rsplit(".", 2)[0])
    ip = c.get("service", "only-b")["spec"]["clusterIP"]
    assert set(fetch(c, "client-a", pod_ip, 3)) == {"only-b"}
    c.wait("the service backed by node-b to answer from node-a",
           lambda: set(fetch(c, "client-a", ip, 3)) == {"only-b"}, 30)
    routes = sh("ip", "-n", c.a, "route", "show", "proto", "203")
    assert f"via {c.ip_b}" in routes, routes


def test_session_affinity_client_ip_sticks_in_both_modes(cluster, web):
    c = cluster
    c.apply(service("web-sticky", {"app": "web"}, sessionAffinity="ClientIP"))
    ip = c.get("service", "web-sticky")["spec"]["clusterIP"]
    names = set(web_pods(c))
    for client in ("client-a", "client-b"):  # iptables `recent` match; userspace affinity table
        c.wait(f"{ip} to answer from {client}", lambda client=client: set(fetch(c, client, ip, 1)) <= names, 30)
        counts = fetch(c, client, ip, 30)
        assert len(counts) == 1 and set(counts) <= names, counts


def test_external_traffic_policy_local_uses_only_local_endpoints(cluster, web):
    """From outside node A (node B's namespace) a NodePort of node A reaches only node A's pods."""
    c = cluster
    pinned = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"local-{n}", "labels": {"app": "local"}},
               "spec": httpd_pod_spec(f"node-{n}")} for n in ("a", "b")]
    c.apply(*pinned, service("web-local", {"app": "local"}, type_="NodePort", externalTrafficPolicy="Local"))
    c.running_pod("local-a")
    c.running_pod("local-b")
    port = c.get("service", "web-local")["spec"]["ports"][0]["nodePort"]
    local = {"local-a"}  # httpd answers with the pod's hostname, its name
    c.wait(f"NodePort {port} on node-a", lambda: host_fetch(c.b, c.ip_a, port) in local, 30)
    seen = collections.Counter(host_fetch(c.b, c.ip_a, port) for _ in range(20))
    assert set(seen) <= local, (seen, local)


def _firewall_drops(c: Cluster, svc_port: str) -> int:
    """Packets node A's KUBE-PROXY-FIREWALL dropped for `svc_port` ("ns/name:port")."""
    out = sh("ip", "netns", "exec", c.a, "iptables", "-t", "filter", "-L", "KUBE-PROXY-FIREWALL", "-v", "-n", "-x")
    return sum(int(line.split()[0]) for line in out.splitlines() if f"{svc_port} traffic not accepted" in line)


def test_load_balancer_source_ranges_admit_only_their_sources(cluster, web):
    """Node A (iptables, KUBE-FW-*) and node B (userspace) answer node B's address on their ingress address
    only while it is inside spec.loadBalancerSourceRanges; outside, node A's firewall drops it."""
    c = cluster
    names = set(web_pods(c))
    c.apply(service("web-fw", {"app": "web"}, port=8081, type_="LoadBalancer",
                    loadBalancerSourceRanges=[f"{c.ip_b}/32"]))
    c.wait("load balancer ingress", lambda: c.get("service", "web-fw")["status"]["loadBalancer"]["ingress"])
    for ip in (c.ip_a, c.ip_b):
        c.wait(f"{ip}:8081 to answer node B, inside the range", lambda ip=ip: host_fetch(c.b, ip, 8081) in names, 30)
    c.kubectl("patch", "service", "web-fw", "-p", json.dumps({"spec": {"loadBalancerSourceRanges": ["192.0.2.0/24"]}}))
    c.wait("node A to drop node B, now outside the range",
           lambda: host_fetch(c.b, c.ip_a, 8081) == "" and _firewall_drops(c, "default/web-fw:http") > 0, 60)
    c.wait("node B's userspace proxy to refuse it too", lambda: host_fetch(c.b, c.ip_b, 8081) == "", 30)
    assert set(fetch(c, "client-a", c.get("service", "web-fw")["spec"]["clusterIP"], 3, 8081)) <= names  # ClusterIP
    c.kubectl("patch", "service", "web-fw", "-p", json.dumps({"spec": {"loadBalancerSourceRanges": [
        "192.0.2.0/24", f"{c.ip_b.rsplit('.', 1)[0]}.0/24"]}}))
    for ip in (c.ip_a, c.ip_b):
        c.wait(f"{ip}:8081 to answer node B again", lambda ip=ip: host_fetch(c.b, ip, 8081) in names, 30)


def health_check(ns: str, ip: str, port: int) -> tuple[int, dict] | None:
    p = subprocess.run(["ip", "netns", "exec", ns, "busybox", "nc", "-w", "3", ip, str(port)],
                       input=b"GET /healthz HTTP/1.0\r\n\r\n", capture_output=True, timeout=15)
    head, _, body = p.stdout.partition(b"\r\n\r\n")  # bytes: text mode would turn \r\n into \n
    if not head.startswith(b"HTTP/1."):
        return None
    return int(head.split()[1]), json.loads(body)


def test_health_check_node_port_reports_local_endpoints(cluster, web):
    """LoadBalancer + externalTrafficPolicy Local: each node's proxy answers on spec.healthCheckNodePort with
    the Service's local ready endpoints, 200 where there are some and 503 where there are none."""
    c = cluster
    c.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hc-a", "labels": {"app": "hc"}},
             "spec": httpd_pod_spec("node-a")},
            service("web-hc", {"app": "hc"}, port=8082, type_="LoadBalancer", externalTrafficPolicy="Local"))
    c.running_pod("hc-a")
    port = c.get("service", "web-hc")["spec"]["healthCheckNodePort"]
    who = {"namespace": "default", "name": "web-hc"}
    c.wait("node A to report its endpoint", lambda: health_check(c.b, c.ip_a, port) == (
        200, {"service": who, "localEndpoints": 1, "serviceProxyHealthy": True}), 30)
    c.wait("node B (userspace) to report none", lambda: health_check(c.a, c.ip_b, port) == (
        503, {"service": who, "localEndpoints": 0, "serviceProxyHealthy": True}), 30)
    c.kubectl("delete", "pod", "hc-a", "--wait=false")
    c.wait("node A to report none once the pod is gone", lambda: health_check(c.b, c.ip_a, port) == (
        503, {"service": who, "localEndpoints": 0, "serviceProxyHealthy": True}), 60)
    c.kubectl("delete", "service", "web-hc")
    c.wait("the health check port to close", lambda: health_check(c.b, c.ip_a, port) is None, 30)


# --- cluster DNS from pods (issue 5): kyb dns behind the kube-dns Service at 10.43.0.10 ---------
def nslookup(c: Cluster, pod: str, name: str) -> str:
    return c.kubectl("exec", pod, "--", "nslookup", name, "10.43.0.10", timeout=60, check=False)


def test_pods_resolve_services_through_the_cluster_dns(cluster, web):
    c = cluster
    c.apply(service("db", {"app": "web"}, clusterIP="None"),
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "search"},
             "spec": {"type": "ExternalName", "externalName": "search.example.com"}})
    ready_ips = sorted(p["status"]["podIP"] for p in web_pods(c).values()
                       if any(x["type"] == "Ready" and x["status"] == "True" for x in p["status"]["conditions"]))
    for pod in ("client-a", "client-b"):  # iptables mode on node A, userspace mode on node B
        out = c.wait(f"{pod} to resolve web", lambda pod=pod: (o := nslookup(
            c, pod, "web.default.svc.cluster.local")) and web in o and o)
        assert f"Address: {web}" in out
    headless = c.wait("headless answers with every ready pod", lambda: (o := nslookup(
        c, "client-a", "db.default.svc.cluster.local")) and all(ip in o for ip in ready_ips) and o)
    assert sorted(line.split()[-1] for line in headless.splitlines()
                  if line.startswith("Address:") and "#" not in line and ":53" not in line) == ready_ips
    assert "search.example.com" in nslookup(c, "client-a", "search.default.svc.cluster.local")
    missing = nslookup(c, "client-a", "nosuch.default.svc.cluster.local")
    assert "NXDOMAIN" in missing or "can't find" in missing
    assert "192.0.2.7" in nslookup(c, "client-b", "www.example.org")  # forwarded to the stand-in upstream
