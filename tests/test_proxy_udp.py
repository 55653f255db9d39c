"""UDP through a ClusterIP on two real nodes, and a backend replaced under a client that keeps sending.

The cluster is the one of test_proxy_iptables.py (its own instance for this module): node A runs the
iptables proxy, node B the userspace proxy, each node a network namespace created here with no route
off the machine. The busybox image has no UDP server or client (its `nc` is TCP only), so the echo
server and the client are small Python programs run with `nsenter --net=` inside the network
namespaces of pods created for them (pods that only `sleep`): the traffic is pod to ClusterIP to pod,
as for any workload, and both programs are stopped here by PID.

The client sends a datagram every 50 ms from one socket, so from one source port, and prints each
reply. When the backend pod is replaced, its endpoint leaves the EndpointSlice; node A's proxy must
delete the conntrack entries that DNAT that flow to the old pod (otherwise the client's datagrams
keep refreshing the entry and go to the dead address for as long as it keeps sending), and node
B's userspace proxy must drop its relay session to the old endpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from .test_agent_cri import _missing, sh
from .test_proxy_iptables import Cluster, _teardown, boot, client_pod, netns_of_sleeper

pytestmark = pytest.mark.timeout(600)

PORT = 9000
MARKS = {"udp-client-a": "86411", "udp-client-b": "86412", "echo-1": "86421", "echo-2": "86422"}

ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[2])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(sys.argv[1].encode() + b" " + data, peer)
"""

CLIENT = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
s.settimeout(0.05)
print("port", s.getsockname()[1], flush=True)
n = 0
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    n += 1
    s.sendto(b"%d" % n, (sys.argv[1], int(sys.argv[2])))
    try:
        while True:
            data, peer = s.recvfrom(2048)
            print(data.decode(), flush=True)
    except (TimeoutError, OSError):
        pass
"""


@pytest.fixture(scope="module")
def cluster():
    if reason := _missing():
        pytest.skip(reason)
    c = Cluster(f"{(os.getpid() + 0x400) % 0xfff:03x}")  # not the tag of test_proxy_iptables.py's cluster
    try:
        boot(c)
        yield c
    finally:
        _teardown(c)


def sleeper(name: str, node: str, labels: dict | None = None) -> dict:
    return client_pod(name, node, MARKS[name], labels)


def netns_of(name: str) -> str:
    """/proc/PID/ns/net of the pod `name` (by its `sleep MARKS[name]`)."""
    return netns_of_sleeper(MARKS[name])


class Program:
    """A Python program inside a pod's network namespace; its output lines collected by a thread."""

    def __init__(self, netns: str, source: str, *args: str):
        self.proc = subprocess.Popen(["nsenter", f"--net={netns}", sys.executable, "-c", source, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def wait_line(self, pred, timeout: float, start: int = 0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in self.lines[start:]:
                if pred(line):
                    return line
            if self.proc.poll() is not None and not self.thread.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no matching line within {timeout} s; last lines: {self.lines[-5:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def test_udp_flow_follows_a_replaced_backend(cluster):
    c: Cluster = cluster
    c.apply(sleeper("udp-client-a", "node-a"), sleeper("udp-client-b", "node-b"),
            sleeper("echo-1", "node-a", {"app": "echo"}),
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
             "spec": {"selector": {"app": "echo"}, "ports": [
                 {"name": "echo", "port": PORT, "targetPort": PORT, "protocol": "UDP"}]}})
    programs: list[Program] = []
    try:
        for name in ("udp-client-a", "udp-client-b", "echo-1"):
            c.running_pod(name)
        echo1 = Program(netns_of("echo-1"), ECHO, "echo-1", str(PORT))
        programs.append(echo1)
        echo1.wait_line(lambda line: line == "ready", 30)
        vip = c.get("service", "echo")["spec"]["clusterIP"]
        clients = {}
        for name in ("udp-client-a", "udp-client-b"):  # node A: iptables; node B: userspace
            p = Program(netns_of(name), CLIENT, vip, str(PORT), "240")
            programs.append(p)
            clients[name] = p
            port = p.wait_line(lambda line: line.startswith("port "), 30)
            p.wait_line(lambda line: line.startswith("echo-1 "), 60)
            assert not any(line.startswith("port ") for line in p.lines if line != port)  # one socket throughout
        c.apply(sleeper("echo-2", "node-a", {"app": "echo"}))
        c.running_pod("echo-2")
        echo2 = Program(netns_of("echo-2"), ECHO, "echo-2", str(PORT))
        programs.append(echo2)
        echo2.wait_line(lambda line: line == "ready", 30)
        old_ip = c.get("pod", "echo-1")["status"]["podIP"]
        new_ip = c.get("pod", "echo-2")["status"]["podIP"]
        marks = {name: len(p.lines) for name, p in clients.items()}
        echo1.stop()  # the old backend stops answering, then goes away
        c.kubectl("delete", "pod", "echo-1", "--wait=false")
        for name, p in clients.items():
            p.wait_line(lambda line: line.startswith("echo-2 "), 60, start=marks[name])
        # node A: the client's flow is DNATed to the new pod, and nothing still points at the old one
        flows = sh("ip", "netns", "exec", c.a, "conntrack", "-L", "-p", "udp", "--orig-dst", vip, check=False)
        assert f"src={new_ip}" in flows and f"src={old_ip}" not in flows, flows
    finally:
        for p in programs:
            p.stop()
