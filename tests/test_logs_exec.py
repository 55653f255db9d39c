"""pods/log, exec and port-forward end to end: kubectl and the Python client through `kyb server`.

Simulated node (`--sim-nodes 1`): CRI-format log files written by the sim runtime, served by
the kubelet server of the sim-nodes process and proxied by the API server; exec is refused.

Real node (root with containerd only): `kyb server` and a CRI node with its kubelet server
(`tests.kubelet_node`) run inside a network namespace this module creates (loopback only),
pods use hostNetwork so no pod network is involved.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .cluster import Cluster, free_port, manifest, wait_until

ROOT = Path(__file__).resolve().parent.parent


def _server_flags() -> list[str]:
    help_text = subprocess.run([sys.executable, "-m", "kybernetes.cli.main", "server", "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    return ["--disable-agent"] if "--disable-agent" in help_text else []


def _pod(name: str, node: str, annotations: dict | None = None, containers=("c",), init=()) -> dict:
    spec = {"nodeName": node, "containers": [{"name": c, "image": "busybox"} for c in containers]}
    if init:
        spec["initContainers"] = [{"name": c, "image": "busybox"} for c in init]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "annotations": annotations or {}},
            "spec": spec}


def _status(c: Cluster, name: str) -> dict:
    return c.kubectl_json("get", "pod", name).get("status") or {}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("kyb-logs"), free_port(), extra_args=["--sim-nodes", "1", *_server_flags()])
    c.start()
    try:
        wait_until(lambda: any(n["spec"].get("podCIDR") for n in c.kubectl_json("get", "nodes")["items"]),
                   timeout=30, interval=0.3, what="a sim node with a pod CIDR")
        yield c
    finally:
        c.stop()


def _running(c: Cluster, name: str, timeout: float = 20) -> None:
    wait_until(lambda: _status(c, name).get("phase") == "Running", timeout=timeout, interval=0.2,
               what=f"pod {name} Running")


def test_sim_logs_tail_timestamps_and_errors(sim):
    sim.kubectl("apply", "-f", "-", input=manifest(_pod("one", "sim-node-0"), _pod("two", "sim-node-0",
                                                                                    containers=("a", "b"))))
    _running(sim, "one")
    assert sim.kubectl("logs", "one").stdout == "sim: container c started\n"
    out = sim.kubectl("logs", "one", "--timestamps").stdout
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z sim: container c started\n", out), out
    assert sim.kubectl("logs", "one", "--tail=0").stdout == ""
    assert sim.kubectl("logs", "one", "--limit-bytes=5").stdout == "sim: "
    assert sim.kubectl("logs", "one", "--since=1h").stdout == "sim: container c started\n"
    code, body = sim.request("GET", "/api/v1/namespaces/default/pods/one/log?container=nope")
    assert (code, body["reason"], body["message"]) == (400, "BadRequest", "container nope is not valid for pod one")
    _running(sim, "two")
    code, body = sim.request("GET", "/api/v1/namespaces/default/pods/two/log")
    assert code == 400 and body["message"] == "a container name must be specified for pod two, choose one of: [a b]"
    assert sim.kubectl("logs", "two", "-c", "b").stdout == "sim: container b started\n"
    proc = sim.kubectl("logs", "one", "--previous", check=False)
    assert proc.returncode == 1
    assert 'previous terminated container "c" in pod "one" not found' in proc.stderr


def test_sim_logs_waiting_follow_and_previous(sim):
    sim.kubectl("apply", "-f", "-", input=manifest(
        _pod("init", "sim-node-0", {"sim.kybernetes.io/run-seconds": "30"}, init=("setup",)),
        _pod("short", "sim-node-0", {"sim.kybernetes.io/run-seconds": "3"}),
        _pod("crash", "sim-node-0", {"sim.kybernetes.io/run-seconds": "1", "sim.kybernetes.io/exit-code": "3"})))
    wait_until(lambda: (_status(sim, "init").get("initContainerStatuses") or [{}])[0].get("state", {}).get("running"),
               timeout=20, interval=0.2, what="init container running")
    proc = sim.kubectl("logs", "init", "-c", "c", check=False)
    assert proc.returncode == 1
    # upstream's kubelet shows PodInitializing here; the reason is whatever the pod status says
    assert re.search(r'container "c" in pod "init" is waiting to start: (PodInitializing|ContainerCreating)\n',
                     proc.stderr), proc.stderr
    _running(sim, "short")
    started = time.monotonic()
    out = sim.kubectl("logs", "-f", "short", timeout=20).stdout
    assert out == "sim: container c started\nsim: container c exited with code 0\n"
    assert time.monotonic() - started < 15
    wait_until(lambda: (_status(sim, "crash").get("containerStatuses") or [{}])[0].get("restartCount", 0) >= 1,
               timeout=30, interval=0.3, what="a restart")
    prev = sim.kubectl("logs", "crash", "--previous").stdout
    assert prev == "sim: container c started\nsim: container c exited with code 3\n"


def test_sim_python_client_logs_and_exec_refused(sim):
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    sim.kubectl("apply", "-f", "-", input=manifest(_pod("py", "sim-node-0")))
    _running(sim, "py")
    api = client.CoreV1Api(config.new_client_from_config(str(sim.kubeconfig)))
    assert api.read_namespaced_pod_log("py", "default") == "sim: container c started\n"
    assert api.read_namespaced_pod_log("py", "default", timestamps=True).endswith("Z sim: container c started\n")
    with pytest.raises(ApiException) as err:
        api.read_namespaced_pod_log("py", "default", container="x")
    assert err.value.status == 400
    proc = sim.kubectl("exec", "py", "--", "ls", check=False, timeout=30)
    assert proc.returncode == 1
    assert "exec is not supported by the sim runtime" in proc.stderr, proc.stderr


def test_sim_kubelet_server_requires_a_client_certificate(sim):
    node = sim.kubectl_json("get", "node", "sim-node-0")
    host = node["metadata"]["annotations"]["kubelet.kybernetes.io/address"]
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"https://{host}:{port}/healthz", context=ctx, timeout=10)
    assert err.value.code == 401
    tls = sim.data_dir / "server" / "tls"
    ctx.load_cert_chain(str(tls / "client-admin.crt"), str(tls / "client-admin.key"))
    with urllib.request.urlopen(f"https://{host}:{port}/healthz", context=ctx, timeout=10) as resp:
        assert resp.read() == b"ok"


# --- a real CRI node ------------------------------------------------------------------------------------
def _cri_unavailable() -> str:
    if os.geteuid() != 0:
        return "needs root (network namespace, containerd)"
    for tool in ("containerd", "runc", "nsenter", "ip", "kubectl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not Path("/bin/busybox").exists():
        return "busybox-static is not installed"
    return ""


class NetnsCluster(Cluster):
    """`kyb server` inside a network namespace; kubectl runs there too."""

    netns: str = ""

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "server.log"
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", sys.executable, "-m", "kybernetes.cli.main", "server",
             "--data-dir", str(self.data_dir), "--port", str(self.port), *self.extra_args],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: self.kubeconfig.exists() and self.kubectl("get", "--raw", "/readyz", check=False,
                                                                     timeout=10).returncode == 0,
                   timeout=timeout, interval=0.3, what="kyb server ready")

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0):
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), HOME=str(self.data_dir / "home"))
        proc = subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", "kubectl", *args], input=input,
                              capture_output=True, text=True, env=env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def python(self, code: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", sys.executable, "-c", code],
                              capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))


@pytest.fixture(scope="module")
def cri(tmp_path_factory):
    why = _cri_unavailable()
    if why:
        pytest.skip(f"real CRI node: {why}")
    netns = f"kyb-logs-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True, timeout=10)
    subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True, timeout=10)
    base = tmp_path_factory.mktemp("kyb-cri")
    c = NetnsCluster(base / "server", 6443, extra_args=[*_server_flags()])
    c.netns = netns
    node_proc = None
    try:
        images = base / "node" / "agent" / "images"
        images.mkdir(parents=True)
        subprocess.run([sys.executable, str(ROOT / "tools" / "build_images.py"), str(images)], check=True,
                       timeout=120, capture_output=True)
        c.start()
        node_log = open(base / "node.log", "ab")
        node_proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{netns}", "unshare", "--mount", "--propagation", "private",
             sys.executable, "-m", "tests.kubelet_node", str(c.kubeconfig),
             str(base / "node"), "node-a", "127.0.0.1"], cwd=str(ROOT), stdout=node_log, stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_until(lambda: "node-a" in c.kubectl("get", "nodes", check=False).stdout, timeout=60, interval=0.5,
                   what="node-a registered")
        yield c
    finally:
        if node_proc is not None and node_proc.poll() is None:
            with contextlib.suppress(Exception):  # the agent stops the containers of deleted pods
                c.kubectl("delete", "pods", "--all", "--grace-period=1", "--timeout=40s", check=False, timeout=60)
        if node_proc is not None:
            node_proc.terminate()
            try:
                node_proc.wait(30)
            except subprocess.TimeoutExpired:
                node_proc.kill()
        c.stop()
        _kill_leftovers(base)
        subprocess.run(["ip", "netns", "delete", netns], timeout=10)


def _kill_leftovers(base: Path) -> None:
    """Shims (and their containers) still serving our containerd's socket, and mounts under `base`."""
    found = subprocess.run(["pgrep", "-f", f"containerd-shim-runc-v2 .*-address {base}/"], capture_output=True,
                           text=True, timeout=10).stdout.split()
    for pid in found:
        tree = subprocess.run(["ps", "-o", "pid=", "--ppid", pid], capture_output=True, text=True, timeout=10)
        for child in tree.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child), 9)
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), 9)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
              if line.split()[1].startswith(str(base) + "/")]
    for m in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", m], timeout=10)


def _busybox(name: str, script: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": "node-a", "hostNetwork": True, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "kybernetes/busybox:1.36", "imagePullPolicy": "Never",
                                     "command": ["sh", "-c", script]}]}}


def test_cri_logs_and_exec(cri):
    cri.kubectl("apply", "-f", "-", input=manifest(
        _busybox("echo", "echo hello; sleep 0.5; echo oops >&2; while true; do sleep 1; done")))
    _running(cri, "echo", timeout=60)
    seen: list = []

    def logs_shown():
        proc = cri.kubectl("logs", "echo", check=False)
        seen[:] = [proc.stdout, proc.stderr]
        # stdout and stderr are separate pipes: lines written together may land in either order
        return sorted(proc.stdout.splitlines()) == ["hello", "oops"]

    try:
        wait_until(logs_shown, timeout=30, interval=0.3, what="logs of echo")
    except TimeoutError:
        raise AssertionError(f"kubectl logs echo showed {seen!r}") from None
    assert cri.kubectl("logs", "echo", "--tail=1").stdout == "oops\n"
    proc = cri.kubectl("exec", "echo", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False, timeout=30)
    assert (proc.returncode, proc.stdout, proc.stderr.splitlines()[0]) == (3, "out\n", "err")
    proc = cri.kubectl("exec", "-i", "echo", "--", "sh", "-c", "read x; echo got:$x", input="line1\n", timeout=30)
    assert proc.stdout == "got:line1\n"


def test_cri_python_client_exec_and_port_forward(cri):
    cri.kubectl("apply", "-f", "-", input=manifest(
        _busybox("web", "mkdir -p /w && echo hello-httpd > /w/index.html && exec httpd -f -p 18080 -h /w")))
    _running(cri, "web", timeout=60)
    code = textwrap.dedent(f"""
        import json
        from kubernetes import client, config
        from kubernetes.stream import portforward, stream
        api = client.CoreV1Api(config.new_client_from_config({str(cri.kubeconfig)!r}))
        r = stream(api.connect_get_namespaced_pod_exec, "web", "default",
                   command=["sh", "-c", "echo out; echo err >&2; exit 3"], stderr=True, stdin=False, stdout=True,
                   tty=False, _preload_content=False)
        r.run_forever(timeout=20)
        result = {{"stdout": r.read_stdout(), "stderr": r.read_stderr(), "rc": r.returncode}}
        pf = portforward(api.connect_get_namespaced_pod_portforward, "web", "default", ports="18080")
        s = pf.socket(18080)
        s.settimeout(10)
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        pf.close()
        result["pf"] = data.decode(errors="replace")
        print(json.dumps(result))
    """)
    proc = cri.python(code)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (result["stdout"], result["stderr"], result["rc"]) == ("out\n", "err\n", 3)
    assert result["pf"].startswith("HTTP/1.") and result["pf"].endswith("hello-httpd\n")
