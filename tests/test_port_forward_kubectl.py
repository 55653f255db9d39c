"""`kubectl port-forward` against `kyb server`: SPDY/3.1 tunnelled in a WebSocket, relayed to a real pod.

`kyb server` and a CRI node (`tests.kubelet_node`) run inside a network namespace this module
creates (loopback only); so do kubectl and the client that fetches through the forwarded port.
The pod is busybox httpd with hostNetwork, so no pod network is involved.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .cluster import manifest, wait_until
from .test_logs_exec import NetnsCluster, _busybox, _cri_unavailable, _kill_leftovers, _running, _server_flags

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cri(tmp_path_factory):
    why = _cri_unavailable()
    if why:
        pytest.skip(f"real CRI node: {why}")
    netns = f"kyb-pf-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True, timeout=10)
    subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True, timeout=10)
    base = tmp_path_factory.mktemp("kyb-pf")
    c = NetnsCluster(base / "server", 6443, extra_args=["--disable-controller-manager", *_server_flags()])
    c.netns = netns
    node_proc = None
    try:
        images = base / "node" / "agent" / "images"
        images.mkdir(parents=True)
        subprocess.run([sys.executable, str(ROOT / "tools" / "build_images.py"), str(images)], check=True,
                       timeout=120, capture_output=True)
        c.start()
        node_proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{netns}", "unshare", "--mount", "--propagation", "private",
             sys.executable, "-m", "tests.kubelet_node", str(c.kubeconfig),
             str(base / "node"), "node-a", "127.0.0.1"], cwd=str(ROOT), stdout=open(base / "node.log", "ab"),
            stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: "node-a" in c.kubectl("get", "nodes", check=False).stdout, timeout=60, interval=0.5,
                   what="node-a registered")
        yield c
    finally:
        if node_proc is not None and node_proc.poll() is None:
            with contextlib.suppress(Exception):
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


def _pod(name: str, script: str) -> dict:
    pod = _busybox(name, script)
    pod["spec"]["automountServiceAccountToken"] = False  # no controller manager: no service account, no CA map
    return pod


@contextlib.contextmanager
def port_forward(c: NetnsCluster, target: str, ports: str, timeout: float = 30.0):
    """Run `kubectl port-forward` in the namespace until it says it is forwarding; stop it afterwards."""
    env = dict(os.environ, KUBECONFIG=str(c.kubeconfig), HOME=str(c.data_dir / "home"))
    proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{c.netns}", "kubectl", "port-forward", target, ports,
                             "-v=6"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    output = {"out": b"", "err": b""}
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")

    def pump(wait: float) -> None:
        for key, _ in sel.select(wait):
            chunk = os.read(key.fileobj.fileno(), 65536)
            output[key.data] += chunk
            if not chunk:
                sel.unregister(key.fileobj)

    try:
        deadline = time.monotonic() + timeout
        while b"Forwarding from" not in output["out"]:
            if time.monotonic() > deadline or proc.poll() is not None:
                pump(0.2)
                raise AssertionError(f"kubectl port-forward did not start:\n{output['out'].decode()}\n"
                                     f"{output['err'].decode()[-3000:]}")
            pump(0.2)
        yield proc, output, pump
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)
        sel.close()
        proc.stdout.close()
        proc.stderr.close()


FETCH = textwrap.dedent("""
    import socket, sys
    out = []
    for _ in range(int(sys.argv[2])):
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
        s.settimeout(15)
        s.sendall(b"GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        out.append(data.decode(errors="replace"))
    print("\\n=====\\n".join(out))
""")


def test_kubectl_port_forward_to_httpd(cri):
    page = "hello-from-the-pod " * 8000  # about 150 kB: several SPDY DATA frames and WebSocket messages
    cri.kubectl("apply", "-f", "-", input=manifest(_pod(
        "web", "mkdir -p /w && echo hello-httpd > /w/index.html && i=0; while [ $i -lt 8000 ]; do "
               "printf 'hello-from-the-pod '; i=$((i+1)); done > /w/big.html; exec httpd -f -p 18081 -h /w")))
    _running(cri, "web", timeout=60)
    local = 28081
    with port_forward(cri, "pod/web", f"{local}:18081") as (proc, output, pump):
        fetched = subprocess.run(["nsenter", f"--net=/run/netns/{cri.netns}", sys.executable, "-c", FETCH,
                                  str(local), "2"], capture_output=True, text=True, timeout=60)
        assert fetched.returncode == 0, fetched.stderr
        answers = fetched.stdout.split("\n=====\n")
        assert len(answers) == 2
        for answer in answers:
            assert answer.startswith("HTTP/1.") and answer.rstrip("\n").endswith("hello-httpd"), answer[-300:]
        big = subprocess.run(["nsenter", f"--net=/run/netns/{cri.netns}", "busybox", "wget", "-qO-",
                              f"http://127.0.0.1:{local}/big.html"], capture_output=True, text=True, timeout=60)
        assert big.stdout == page, (len(big.stdout), big.stderr)
        pump(0.2)
        assert proc.poll() is None, output["err"].decode()[-3000:]
        assert f"Forwarding from 127.0.0.1:{local} -> 18081" in output["out"].decode()
        assert output["out"].decode().count("Handling connection for") >= 3


def test_kubectl_port_forward_closed_port_reports_an_error(cri):
    cri.kubectl("apply", "-f", "-", input=manifest(_pod("idle", "while true; do sleep 1; done")))
    _running(cri, "idle", timeout=60)
    with port_forward(cri, "pod/idle", "28082:18999") as (proc, output, pump):
        subprocess.run(["nsenter", f"--net=/run/netns/{cri.netns}", sys.executable, "-c", FETCH, "28082", "1"],
                       capture_output=True, text=True, timeout=60)
        wait_until(lambda: (pump(0.2), b"an error occurred forwarding 28082 -> 18999" in output["err"])[1],
                   timeout=20, interval=0.1, what="kubectl reports the forwarding error")


def test_kubectl_exec_stdin_reaches_eof(cri):
    """The kubelet speaks SPDY to containerd's streaming server, so the end of stdin reaches the process."""
    cri.kubectl("apply", "-f", "-", input=manifest(_pod("cat", "while true; do sleep 1; done")))
    _running(cri, "cat", timeout=60)
    proc = cri.kubectl("exec", "-i", "cat", "--", "cat", input="x\n", timeout=30)
    assert proc.stdout == "x\n"
    proc = cri.kubectl("exec", "-i", "cat", "--", "sh", "-c", "wc -l; echo err >&2; exit 4", input="a\nb\n",
                       check=False, timeout=30)
    assert (proc.returncode, proc.stdout.strip(), proc.stderr.splitlines()[0]) == (4, "2", "err")
    proc = cri.kubectl("exec", "cat", "--", "echo", "no-stdin", timeout=30)
    assert proc.stdout == "no-stdin\n"
