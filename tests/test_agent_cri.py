"""A real node end to end: `kyb server` with its embedded agent, containerd, runc and CNI, checked with kubectl.

Network safety (DESIGN.md): the server runs inside a network namespace this module creates,
whose only route out is a veth pair into a second namespace of the module; pod and service
ranges are routed to `lo` there. The server also gets a private mount namespace, so the
mounts containerd makes vanish with its processes. Needs root, containerd, runc, ctr and
kubectl; skipped otherwise.
"""

from __future__ import annotations

import asyncio
import ipaddress
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

from kybernetes.kubelet.cgroups import pod_cgroup_dirs
from kybernetes.kubelet.mounts import mounts_under, unmount

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"

pytestmark = pytest.mark.timeout(300)


def _missing() -> str:
    if os.geteuid() != 0:
        return "needs root (network namespaces, containerd)"
    for tool in ("containerd", "runc", "ctr", "kubectl", "ip", "nsenter", "unshare", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make deps installs containerd, runc, CNI plugins, busybox-static)"
    if not Path("/usr/lib/cni/bridge").exists():
        return "CNI plugins missing (apt-get install containernetworking-plugins)"
    if shutil.which("busybox") is None:
        return "busybox-static is not installed"
    return ""


if _missing():
    pytest.skip(_missing(), allow_module_level=True)


def sh(*argv: str, timeout: float = 30, check: bool = True) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({out.returncode}): {out.stdout}{out.stderr}")
    return out.stdout


class Node:
    """The test's cluster: names, paths and helpers."""

    def __init__(self, tag: str):
        self.ns, self.peer = f"kyb{tag}n", f"kyb{tag}p"
        net = ipaddress.ip_network(f"10.254.{int(tag, 16) % 250}.0/30")
        self.ip, self.peer_ip = str(net[1]), str(net[2])
        self.data = Path(tempfile.mkdtemp(prefix="kyb-", dir="/tmp"))  # short: unix socket paths are limited
        self.cgroup_root = f"/kyb-test-{tag}"
        self.kubeconfig = self.data / "kubeconfig.yaml"
        self.socket = self.data / "agent" / "containerd" / "containerd.sock"
        self.proc: subprocess.Popen | None = None

    def kubectl(self, *args: str, timeout: float = 30, check: bool = True) -> str:
        return sh("ip", "netns", "exec", self.ns, "kubectl", "--kubeconfig", str(self.kubeconfig), *args,
                  timeout=timeout, check=check)

    def get(self, kind: str, name: str) -> dict:
        return json.loads(self.kubectl("get", kind, name, "-o", "json"))

    def apply(self, manifest: dict) -> None:
        p = subprocess.run(["ip", "netns", "exec", self.ns, "kubectl", "--kubeconfig", str(self.kubeconfig),
                            "apply", "-f", "-"], input=json.dumps(manifest), capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0, p.stderr

    def wait(self, what: str, check, timeout: float = 60.0):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            try:
                last = check()
                if last:
                    return last
            except (AssertionError, subprocess.TimeoutExpired, json.JSONDecodeError, KeyError, IndexError) as e:
                last = e
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}; last: {last}\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join((self.data / "server.log").read_text().splitlines()[-n:])
        except OSError:
            return ""

    def cri(self, coro_fn):
        from kybernetes.kubelet.cri.client import CRIClient

        async def run():
            client = CRIClient(str(self.socket), timeout=30)
            try:
                return await coro_fn(client)
            finally:
                await client.close()

        return asyncio.run(run())


def _setup_network(n: Node) -> None:
    sh("ip", "netns", "add", n.ns)
    sh("ip", "netns", "add", n.peer)
    a, b = f"{n.ns}a", f"{n.ns}b"
    sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
    sh("ip", "link", "set", a, "netns", n.ns)
    sh("ip", "link", "set", b, "netns", n.peer)
    for ns, dev, ip in ((n.ns, a, n.ip), (n.peer, b, n.peer_ip)):
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
    sh("ip", "-n", n.ns, "route", "add", "default", "via", n.peer_ip)


def _kill_cgroup_tree(root: str) -> None:
    """SIGKILL every process left under the pods' cgroup root, then remove the cgroups."""
    base = Path("/sys/fs/cgroup")
    for ctrl in sorted(base.iterdir()):
        top = ctrl / root.lstrip("/")
        if not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True) + [top]
        for d in dirs:
            try:
                for pid in (d / "cgroup.procs").read_text().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            except OSError:
                pass
        time.sleep(0.2)
        for d in dirs:
            try:
                d.rmdir()
            except OSError:
                pass


def _teardown(n: Node) -> None:
    if n.proc is not None and n.socket.exists():
        async def remove_all(c):
            for sb in await c.list_pod_sandboxes():
                try:
                    await c.stop_pod_sandbox(sb.id)
                    await c.remove_pod_sandbox(sb.id)
                except Exception:  # noqa: BLE001 - best effort, the kill below follows
                    pass
        try:
            n.cri(remove_all)
        except Exception:  # noqa: BLE001
            pass
    if n.proc is not None and n.proc.poll() is None:
        os.killpg(n.proc.pid, signal.SIGTERM)
        try:
            n.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(n.proc.pid, signal.SIGKILL)
            n.proc.wait(5)
    _kill_cgroup_tree(n.cgroup_root)
    for ns in (n.ns, n.peer):
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:  # containerd shims left in the namespace
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    time.sleep(0.3)
    for point in mounts_under(n.data):  # an agent run in this mount namespace (test_kubelet_probes)
        try:                            # leaves its containerd state tmpfs
            unmount(point)
        except OSError:
            pass
    shutil.rmtree(n.data, ignore_errors=True)


@pytest.fixture(scope="module")
def node():
    n = Node(f"{os.getpid() % 0xfff:03x}")
    try:
        _setup_network(n)
        images = n.data / "agent" / "images"
        sh(sys.executable, str(TOOLS / "build_images.py"), str(images), timeout=60)
        log = open(n.data / "server.log", "wb")  # noqa: SIM115 - closed with the process
        n.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{n.ns}", "unshare", "--mount", "--propagation", "private",
             sys.executable, "-m", "kybernetes.cli.main", "server", "--data-dir", str(n.data), "--port", "6443",
             "--cgroup-root", n.cgroup_root, "--agent-loopback-routes", "--node-name", "node-a"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

        def node_ready():
            if not n.kubeconfig.exists():
                return False
            node = n.get("node", "node-a")
            ready = [c for c in node["status"].get("conditions", []) if c["type"] == "Ready"]
            return node if ready and ready[0]["status"] == "True" and node["spec"].get("podCIDR") else False

        n.wait("node-a to be Ready with a pod CIDR", node_ready, 90)
        yield n
    finally:
        _teardown(n)


def pod(name: str, script: str, restart: str = "Never", **container) -> dict:
    c = {"name": "c", "image": "kybernetes/busybox:1.36", "imagePullPolicy": "IfNotPresent",
         "command": ["sh", "-c", script], **container}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 2, "containers": [c]}}


def pod_events(node, name: str) -> dict[tuple[str, str], str]:
    """(reason, message) -> involvedObject.fieldPath of the Events about pod `name`."""
    out = json.loads(node.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"))
    return {(e["reason"], e["message"]): e["involvedObject"].get("fieldPath", "") for e in out["items"]}


def test_node_reports_the_machine(node):
    obj = node.get("node", "node-a")
    st = obj["status"]
    assert st["capacity"]["cpu"] == str(os.cpu_count())
    assert st["capacity"]["pods"] == "110"
    assert int(st["capacity"]["ephemeral-storage"]) > 0 and st["capacity"]["memory"].endswith("Ki")
    assert {"type": "InternalIP", "address": node.ip} in st["addresses"]
    assert st["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert st["nodeInfo"]["kernelVersion"] == os.uname().release
    leases = json.loads(node.kubectl("get", "lease", "-n", "kube-node-lease", "node-a", "-o", "json"))
    assert leases["spec"]["holderIdentity"] == "node-a"


def test_busybox_pod_runs_with_an_ip_from_the_pod_cidr(node):
    node.apply(pod("hello", "echo hello; sleep 3600"))
    p = node.wait("pod hello Running", lambda: (lambda p: p if p["status"].get("phase") == "Running" else None)(
        node.get("pod", "hello")))
    cidr = ipaddress.ip_network(node.get("node", "node-a")["spec"]["podCIDR"])
    assert ipaddress.ip_address(p["status"]["podIP"]) in cidr
    assert p["status"]["hostIP"] == node.ip
    cs = p["status"]["containerStatuses"][0]
    assert cs["ready"] and cs["containerID"].startswith("containerd://")
    assert "kyb0" in sh("ip", "-n", node.ns, "-br", "link", "show", "type", "bridge")
    logs = node.data / "agent" / "pod-logs" / f"default_hello_{p['metadata']['uid']}" / "c" / "0.log"
    node.wait("hello in the container log", lambda: " stdout F hello" in logs.read_text(), 15)
    # the kubelet's Events about the container, as `kubectl describe pod` lists them
    wanted = {("Pulled", 'Container image "kybernetes/busybox:1.36" already present on machine'),
              ("Created", "Created container: c"), ("Started", "Started container c")}
    seen = node.wait("Pulled, Created and Started events", lambda: (lambda ev: ev if wanted <= set(ev) else None)(
        pod_events(node, "hello")), 15)
    assert {seen[e] for e in wanted} == {"spec.containers{c}"}, seen
    described = node.kubectl("describe", "pod", "hello")
    assert "Created container: c" in described and "Started container c" in described
    # containerd's state, runc's with it, on a tmpfs (the server's private mount namespace: seen through /proc)
    ctrd = int((node.data / "agent" / "containerd" / "containerd.pid").read_text())
    state = node.data / "agent" / "containerd" / "state"
    mounts = Path(f"/proc/{ctrd}/mountinfo").read_text().splitlines()
    assert any(m.split()[4] == str(state) and m.split(" - ")[1].startswith("tmpfs ") for m in mounts), mounts
    cid = cs["containerID"].removeprefix("containerd://")
    assert Path(f"/proc/{ctrd}/root{state}/runc/k8s.io/{cid}/state.json").is_file()


def test_exit_code_with_restart_policy_never(node):
    node.apply(pod("exit3", "exit 3"))

    def failed():
        p = node.get("pod", "exit3")
        return p if p["status"].get("phase") == "Failed" else None

    p = node.wait("pod exit3 Failed", failed)
    term = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error"


def test_restart_policy_always_crash_loops(node):
    node.apply(pod("crash", "exit 1", restart="Always"))

    def backing_off():
        cs = node.get("pod", "crash")["status"]["containerStatuses"][0]
        waiting = cs["state"].get("waiting") or {}
        return cs if cs["restartCount"] >= 1 and waiting.get("reason") == "CrashLoopBackOff" else None

    cs = node.wait("crash to restart and back off", backing_off, 60)
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    uid = node.get("pod", "crash")["metadata"]["uid"]
    back_off = ("BackOff", f"Back-off restarting failed container c in pod crash_default({uid})")
    node.wait("a BackOff event", lambda: back_off in pod_events(node, "crash"), 30)


def test_deleting_a_pod_removes_its_containers(node):
    node.apply(pod("gone", "sleep 3600"))
    p = node.wait("pod gone Running", lambda: (lambda p: p if p["status"].get("phase") == "Running" else None)(
        node.get("pod", "gone")))
    uid = p["metadata"]["uid"]
    label = {"io.kubernetes.pod.uid": uid}

    async def count(c):
        return len(await c.list_containers(labels=label)), len(await c.list_pod_sandboxes(label))

    assert node.cri(count) == (1, 1)
    assert pod_cgroup_dirs(node.cgroup_root, uid), "the pod's cgroup should exist while it runs"
    pod_volumes = str(node.data / "agent" / "pods" / uid) + "/"

    def volume_mounts():  # in the server's (and its agent's) private mount namespace
        return [m.split()[4] for m in Path(f"/proc/{node.proc.pid}/mountinfo").read_text().splitlines()
                if m.split()[4].startswith(pod_volumes)]

    assert volume_mounts(), "the service account token volume is a tmpfs while the pod runs"
    node.kubectl("delete", "pod", "gone", "--wait=true", "--timeout=40s", timeout=60)
    # as upstream's kubelet, the pod object goes only once its volumes are unmounted
    assert volume_mounts() == [] and not Path(f"/proc/{node.proc.pid}/root{pod_volumes}").exists()
    node.wait("containers and sandbox of pod gone removed", lambda: node.cri(count) == (0, 0), 20)
    node.wait("the pod's cgroup removed", lambda: not pod_cgroup_dirs(node.cgroup_root, uid), 20)


def test_memory_limit_ends_in_oomkilled(node):
    if not Path("/sys/fs/cgroup/memory").is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        pytest.skip("no memory cgroup controller on this machine")
    node.apply(pod("oom", "x=a; while true; do x=$x$x; done", resources={"limits": {"memory": "8Mi"}}))

    def terminated():
        cs = node.get("pod", "oom")["status"].get("containerStatuses") or [{}]
        return (cs[0].get("state") or {}).get("terminated")

    term = node.wait("pod oom to end", terminated, 60)
    if term["reason"] != "OOMKilled":
        pytest.skip(f"the kernel did not report an OOM kill here (reason {term['reason']}, code {term['exitCode']})")
    assert term["exitCode"] == 137


def test_pull_policy_never_without_the_image(node):
    node.apply(pod("never", "true", image="kybernetes/not-here:1.0", imagePullPolicy="Never"))

    def waiting():
        cs = node.get("pod", "never")["status"].get("containerStatuses") or [{}]
        return ((cs[0].get("state") or {}).get("waiting") or {}).get("reason") == "ErrImageNeverPull"

    node.wait("ErrImageNeverPull", waiting, 30)
    assert node.get("pod", "never")["status"]["phase"] == "Pending"
    wanted = {("ErrImageNeverPull", 'Container image "kybernetes/not-here:1.0" is not present with pull policy of '
                                    "Never"), ("Failed", "Error: ErrImageNeverPull")}
    node.wait("ErrImageNeverPull and Failed events", lambda: wanted <= set(pod_events(node, "never")), 15)


@pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed")
def test_image_pulled_from_a_local_registry(node):
    """The real pull path: CRI PullImage from Debian's docker-registry on the namespace's loopback."""
    import base64

    store = node.data / "registry"
    store.mkdir()
    (store / "config.yml").write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {store}\n"
                                      "http:\n  addr: 127.0.0.1:5000\nlog:\n  level: warn\n")
    reg = subprocess.Popen(["ip", "netns", "exec", node.ns, "docker-registry", "serve", str(store / "config.yml")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def pushed():
            out = subprocess.run(["ip", "netns", "exec", node.ns, sys.executable, str(TOOLS / "build_images.py"),
                                  "--push", "127.0.0.1:5000"], capture_output=True, text=True, timeout=60)
            return out.returncode == 0 and out.stdout

        node.wait("images pushed to the registry", pushed, 30)
        auth = base64.b64encode(b"kyb:secret").decode()
        config = json.dumps({"auths": {"127.0.0.1:5000": {"auth": auth}}})
        node.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred", "namespace": "default"},
                    "type": "kubernetes.io/dockerconfigjson",
                    "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()}})
        manifest = pod("pulled", "sleep 3600", image="127.0.0.1:5000/kybernetes/busybox:1.36")
        manifest["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
        node.apply(manifest)
        p = node.wait("pod pulled Running",
                      lambda: (lambda p: p if p["status"].get("phase") == "Running" else None)(node.get("pod", "pulled")),
                      90)
        assert p["status"]["containerStatuses"][0]["imageID"]
        reasons = {reason: message for reason, message in pod_events(node, "pulled")}
        assert reasons["Pulling"] == 'Pulling image "127.0.0.1:5000/kybernetes/busybox:1.36"'
        assert reasons["Pulled"].startswith('Successfully pulled image "127.0.0.1:5000/kybernetes/busybox:1.36" in ')
        assert reasons["Pulled"].endswith(" bytes.") and "Image size: 0 bytes" not in reasons["Pulled"]

        async def present(c):
            return await c.image_status("127.0.0.1:5000/kybernetes/busybox:1.36")

        assert node.cri(present) is not None
    finally:
        os.killpg(reg.pid, signal.SIGTERM)
        reg.wait(10)
