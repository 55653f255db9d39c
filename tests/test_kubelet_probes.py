"""Probes, lifecycle hooks, graceful termination and agent restarts on a real node, checked with kubectl.

Network safety (DESIGN.md): `kyb server --disable-agent` and the node agent (`tests.kubelet_node`,
a process of its own so the test can kill and restart it) run inside a network namespace this
module creates, whose only route out is a veth pair into a second namespace of the module.
Needs root, containerd, runc, CNI plugins and kubectl; skipped otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kybernetes.kubelet.cgroups import pod_cgroup_dirs
from kybernetes.kubelet.mounts import mounts_under
from tests.test_agent_cri import TOOLS, Node, _setup_network, _teardown, pod, sh

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(400)


class ProbeNode(Node):
    agent: subprocess.Popen | None = None

    def start_agent(self) -> None:
        log = open(self.data / "agent.log", "ab")  # noqa: SIM115 - handed to the child
        self.agent = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.ns}", sys.executable, "-m", "tests.kubelet_node",
             str(self.kubeconfig), str(self.data), "node-a", self.ip, "10250", self.cgroup_root],
            cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join((self.data / "agent.log").read_text().splitlines()[-n:])
        except OSError:
            return ""

    def cond(self, name: str, kind: str) -> str:
        conds = self.get("pod", name)["status"].get("conditions") or []
        return next((c["status"] for c in conds if c["type"] == kind), "")

    def cstatus(self, name: str) -> dict:
        return (self.get("pod", name)["status"].get("containerStatuses") or [{}])[0]

    def running(self, name: str, timeout: float = 60) -> dict:
        return self.wait(f"pod {name} Running", lambda: (lambda p: p if p["status"].get("phase") == "Running"
                                                         else None)(self.get("pod", name)), timeout)


@pytest.fixture(scope="module")
def node():
    n = ProbeNode(f"{(os.getpid() + 7) % 0xfff:03x}")
    try:
        _setup_network(n)
        sh(sys.executable, str(TOOLS / "build_images.py"), str(n.data / "agent" / "images"), timeout=60)
        log = open(n.data / "server.log", "wb")  # noqa: SIM115 - closed with the process
        n.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{n.ns}", sys.executable, "-m", "kybernetes.cli.main", "server",
             "--data-dir", str(n.data), "--port", "6443", "--disable-agent"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        n.wait("the server's kubeconfig", lambda: n.kubeconfig.exists() and n.kubectl("get", "ns", check=False), 60)
        n.start_agent()

        def node_ready():
            node = n.get("node", "node-a")
            ready = [c for c in node["status"].get("conditions", []) if c["type"] == "Ready"]
            return node if ready and ready[0]["status"] == "True" and node["spec"].get("podCIDR") else False

        n.wait("node-a to be Ready with a pod CIDR", node_ready, 90)
        yield n
    finally:
        if n.agent is not None and n.agent.poll() is None:
            n.kubectl("delete", "pods,deployments", "--all", "--grace-period=1", "--timeout=60s", check=False,
                      timeout=90)
        _teardown(n)  # removes what is left through CRI, kills the server, cgroups and namespaces
        if n.agent is not None and n.agent.poll() is None:
            os.killpg(n.agent.pid, signal.SIGKILL)


def _exec(cmd: list[str]) -> dict:
    return {"exec": {"command": cmd}}


def test_failing_liveness_probe_restarts_the_container(node):
    p = pod("live", "sleep 3600", restart="Always",
            livenessProbe={**_exec(["cat", "/tmp/nope"]), "periodSeconds": 1, "failureThreshold": 2})
    p["spec"]["terminationGracePeriodSeconds"] = 1
    node.apply(p)
    cs = node.wait("a liveness restart", lambda: (lambda c: c if c.get("restartCount", 0) >= 1 else None)(
        node.cstatus("live")), 60)
    assert cs["lastState"]["terminated"]["exitCode"] in (137, 143)
    events = json.loads(node.kubectl("get", "events", "--field-selector", "involvedObject.name=live", "-o", "json"))
    messages = [e["message"] for e in events["items"]]
    assert "Container c failed liveness probe, will be restarted" in messages, messages
    assert any(m.startswith("Liveness probe failed") for m in messages), messages


def test_readiness_probe_flips_ready_both_ways(node):
    node.apply(pod("ready", "sleep 3600", restart="Always",
                   readinessProbe={**_exec(["test", "-f", "/tmp/ready"]), "periodSeconds": 1}))
    node.running("ready")
    time.sleep(2)
    assert node.cond("ready", "Ready") == "False" and not node.cstatus("ready")["ready"]
    node.kubectl("exec", "ready", "--", "touch", "/tmp/ready")
    node.wait("Ready True", lambda: node.cond("ready", "Ready") == "True"
              and node.cond("ready", "ContainersReady") == "True", 20)
    assert node.cstatus("ready")["ready"]
    node.kubectl("exec", "ready", "--", "rm", "/tmp/ready")
    node.wait("Ready False", lambda: node.cond("ready", "Ready") == "False", 20)


def test_startup_probe_holds_back_liveness(node):
    check = _exec(["test", "-f", "/tmp/started"])
    node.apply(pod("slow", "sleep 3600", restart="Always",
                   startupProbe={**check, "periodSeconds": 1, "failureThreshold": 60},
                   livenessProbe={**check, "periodSeconds": 1, "failureThreshold": 1}))
    node.running("slow")
    time.sleep(5)  # liveness alone would have killed it by now
    cs = node.cstatus("slow")
    assert cs["restartCount"] == 0 and cs["started"] is False and not cs["ready"], cs
    node.kubectl("exec", "slow", "--", "touch", "/tmp/started")
    cs = node.wait("started", lambda: (lambda c: c if c.get("started") and c.get("ready") else None)(
        node.cstatus("slow")), 20)
    time.sleep(3)
    assert node.cstatus("slow")["restartCount"] == 0


def test_pre_stop_then_sigterm_within_the_grace_period(node):
    shared = node.data / "prestop"
    shared.mkdir()
    script = "trap 'echo term >> /shared/log; exit 0' TERM; while true; do sleep 0.2; done"
    p = pod("stopper", script, restart="Always",
            lifecycle={"preStop": _exec(["sh", "-c", "echo stop > /shared/log; sleep 1"])},
            volumeMounts=[{"name": "shared", "mountPath": "/shared"}])
    p["spec"]["terminationGracePeriodSeconds"] = 5
    p["spec"]["volumes"] = [{"name": "shared", "hostPath": {"path": str(shared), "type": "Directory"}}]
    node.apply(p)
    node.running("stopper")
    start = time.monotonic()
    node.kubectl("delete", "pod", "stopper", "--wait=true", "--timeout=60s", timeout=90)
    took = time.monotonic() - start
    assert (shared / "log").read_text().split() == ["stop", "term"]
    assert 1.0 <= took < 5 + 4, took


def test_post_start_hook_runs_and_a_failing_one_kills(node):
    node.apply(pod("poststart", "sleep 3600", restart="Always",
                   lifecycle={"postStart": _exec(["sh", "-c", "echo hi > /tmp/post"])}))
    node.running("poststart")
    assert node.kubectl("exec", "poststart", "--", "cat", "/tmp/post").strip() == "hi"
    node.apply(pod("badpost", "sleep 3600", restart="Always", lifecycle={"postStart": _exec(["false"])}))

    def failed_hook():
        events = json.loads(node.kubectl("get", "events", "--field-selector", "involvedObject.name=badpost",
                                         "-o", "json"))
        return [e for e in events["items"] if e["reason"] == "FailedPostStartHook"]

    node.wait("FailedPostStartHook", failed_hook, 30)
    node.wait("badpost restarted", lambda: node.cstatus("badpost").get("restartCount", 0) >= 1, 40)


def test_agent_restart_adopts_running_containers(node):
    node.apply(pod("keeper", "sleep 3600", restart="Always"))
    before = node.running("keeper")["status"]["containerStatuses"][0]
    node.agent.send_signal(signal.SIGKILL)
    node.agent.wait(10)
    time.sleep(1)
    node.start_agent()
    node.wait("the new agent to adopt", lambda: "adopted pod default/keeper" in node.log_tail(400), 60)
    time.sleep(3)
    after = node.running("keeper")["status"]["containerStatuses"][0]
    assert after["containerID"] == before["containerID"]
    assert after["restartCount"] == before["restartCount"] and after["ready"]
    uid = node.get("pod", "keeper")["metadata"]["uid"]

    async def count(c):
        return len(await c.list_containers(labels={"io.kubernetes.pod.uid": uid}))

    assert node.cri(count) == 1


def test_a_pod_deleted_while_the_agent_is_away_leaves_nothing_behind(node):
    node.apply(pod("away", "sleep 3600", restart="Always"))
    uid = node.running("away")["metadata"]["uid"]
    pod_dir = node.data / "agent" / "pods" / uid
    logs = node.data / "agent" / "pod-logs" / f"default_away_{uid}"
    assert logs.is_dir() and mounts_under(pod_dir), "the token volume is a tmpfs in the pod's directory"
    assert pod_cgroup_dirs(node.cgroup_root, uid)
    node.agent.send_signal(signal.SIGKILL)
    node.agent.wait(10)
    node.kubectl("delete", "pod", "away", "--force", "--grace-period=0")  # gone from the API at once
    node.start_agent()

    async def sandboxes(c):
        return len(await c.list_pod_sandboxes({"io.kubernetes.pod.uid": uid}))

    node.wait("the new agent to remove what the pod left", lambda: not pod_dir.exists() and not logs.exists()
              and not pod_cgroup_dirs(node.cgroup_root, uid) and node.cri(sandboxes) == 0, 60)
    assert mounts_under(pod_dir) == []
    assert "removed the volumes and logs of 1 pods no longer on this node" in node.log_tail(400)


def test_deployment_of_ten_httpd_replicas_answers_on_pod_ips(node):
    script = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"
    container = {"name": "web", "image": "kybernetes/busybox:1.36", "imagePullPolicy": "IfNotPresent",
                 "command": ["sh", "-c", script], "ports": [{"name": "http", "containerPort": 80}],
                 "readinessProbe": {"httpGet": {"path": "/index.html", "port": "http",
                                                "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                                    "periodSeconds": 2},
                 "livenessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5}}
    node.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
                "spec": {"replicas": 10, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]}}}})
    node.apply(pod("client", "sleep 3600", restart="Always"))
    node.wait("10 ready replicas", lambda: node.get("deployment", "web")["status"].get("readyReplicas") == 10, 180)
    node.running("client")
    pods = json.loads(node.kubectl("get", "pods", "-l", "app=web", "-o", "json"))["items"]
    assert len(pods) == 10
    script = "; ".join(f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {p['status']['podIP']} 80 | tail -n 1"
                       for p in pods)
    out = node.kubectl("exec", "client", "--", "sh", "-c", script, timeout=90).split()
    assert sorted(out) == sorted(p["metadata"]["name"] for p in pods)
