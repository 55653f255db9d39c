"""Unit tests of the simulated node agent and the node/endpoint controllers' pure parts (no server)."""

from __future__ import annotations

import asyncio

from kybernetes.controllers.endpoints import endpoint_subsets, resolve_port
from kybernetes.controllers.nodelifecycle import desired_taints, eviction_delay
from kybernetes.kubelet.pods import Backoff
from kybernetes.kubelet.runtime import EXITED, RUNNING
from kybernetes.kubelet.runtime.sim import SimRuntime
from kybernetes.kubelet.status import pod_phase


def test_backoff_is_upstreams_crash_loop_schedule():
    now = [1000.0]
    b = Backoff(clock=lambda: now[0])
    assert b.remaining("k", 1000.0) == 0  # the first exit restarts at once
    b.next("k", 1000.0)
    now[0] = 1002.0
    assert b.remaining("k", 1001.0) == 9.0  # second exit at 1001: 10 s from then
    waits = []
    for t in (1011.0, 1031.0, 1071.0, 1151.0, 1311.0, 1611.0, 1911.0):
        b.next("k", t)
        waits.append(b.current("k"))
    assert waits == [20, 40, 80, 160, 300, 300, 300]
    b.next("k", 1911.0 + 601)  # quiet for more than twice the cap: back to 10 s
    assert b.current("k") == 10


def _statuses(*states):
    out = []
    for s in states:
        if s == "running":
            out.append({"state": {"running": {}}})
        elif s.startswith("exit"):
            out.append({"state": {"terminated": {"exitCode": int(s[4:])}}})
        elif s == "crashloop":
            out.append({"state": {"waiting": {}}, "lastState": {"terminated": {"exitCode": 1}}})
        else:
            out.append({"state": {"waiting": {}}})
    return out


def test_pod_phase_by_restart_policy():
    def pod(policy):
        return {"spec": {"restartPolicy": policy}}
    assert pod_phase(pod("Always"), _statuses("waiting"), True, False) == "Pending"
    assert pod_phase(pod("Always"), _statuses("running", "exit0"), True, False) == "Running"
    assert pod_phase(pod("Always"), _statuses("crashloop"), True, False) == "Running"
    assert pod_phase(pod("Never"), _statuses("exit0", "exit0"), True, False) == "Succeeded"
    assert pod_phase(pod("Never"), _statuses("exit0", "exit2"), True, False) == "Failed"
    assert pod_phase(pod("OnFailure"), _statuses("exit0"), True, False) == "Succeeded"
    assert pod_phase(pod("OnFailure"), _statuses("crashloop"), True, False) == "Running"
    assert pod_phase(pod("Always"), _statuses("exit0"), True, True) == "Succeeded"  # deleted, all exited 0
    assert pod_phase(pod("Always"), _statuses("waiting"), False, False) == "Pending"


def test_sim_runtime_ips_exits_and_stops():
    async def run():
        rt = SimRuntime("172.31.0.1")
        rt.update_runtime_config("10.42.7.0/24")
        events = []
        rt.on_event = events.append
        pod = {"metadata": {"uid": "u1", "name": "p", "namespace": "d",
                            "annotations": {"sim.kybernetes.io/run-seconds": "0.05",
                                            "sim.kybernetes.io/exit-code": "4"}},
               "spec": {"containers": [{"name": "c", "image": "i"}]}}
        sb = await rt.run_pod_sandbox(pod)
        assert sb.ip == "10.42.7.2"
        cid = await rt.create_container(sb.id, pod, pod["spec"]["containers"][0], 0)
        await rt.start_container(cid)
        assert rt.container_status(cid).state == RUNNING
        await asyncio.sleep(0.1)
        c = rt.container_status(cid)
        assert c.state == EXITED and c.exit_code == 4 and c.reason == "Error" and events == ["u1"]
        plain = {"metadata": {"uid": "u2", "name": "q", "namespace": "d"}, "spec": {}}
        sb2 = await rt.run_pod_sandbox(plain)
        assert sb2.ip == "10.42.7.3"
        cid2 = await rt.create_container(sb2.id, plain, {"name": "c", "image": "i"}, 0)
        await rt.start_container(cid2)
        await rt.stop_container(cid2, 30)  # graceful stop takes at most 1 s of simulated time
        assert rt.container_status(cid2).state == RUNNING
        await asyncio.sleep(1.05)
        assert rt.container_status(cid2).state == EXITED and rt.container_status(cid2).exit_code == 0
        await rt.remove_pod_sandbox(sb.id)
        sb3 = await rt.run_pod_sandbox({**plain, "metadata": {**plain["metadata"], "uid": "u3"}})
        assert sb3.ip == "10.42.7.2"  # freed address handed out again

    asyncio.run(run())


def test_taints_follow_the_ready_condition():
    def node(ready, taints=None, **conds):
        cs = [{"type": "Ready", "status": ready}] + [{"type": k, "status": v} for k, v in conds.items()]
        return {"spec": {"taints": taints or []}, "status": {"conditions": cs}}
    assert desired_taints(node("True"), "t") == []
    got = desired_taints(node("Unknown"), "t")
    assert {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "t"} in got
    assert {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"} in got
    mine = {"key": "dedicated", "value": "x", "effect": "NoSchedule"}
    got = desired_taints(node("False", [mine, {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}],
                              MemoryPressure="True"), "t")
    keys = {(t["key"], t["effect"]) for t in got}
    assert keys == {("dedicated", "NoSchedule"), ("node.kubernetes.io/not-ready", "NoSchedule"),
                    ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/memory-pressure", "NoSchedule")}


def test_eviction_delay_from_tolerations():
    taints = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    assert eviction_delay({"spec": {}}, taints) == 0
    tol = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    assert eviction_delay({"spec": {"tolerations": [tol]}}, taints) is None
    assert eviction_delay({"spec": {"tolerations": [{**tol, "tolerationSeconds": 300}]}}, taints) == 300
    assert eviction_delay({"spec": {"tolerations": [{"operator": "Exists"}]}}, taints) is None


def test_endpoint_subsets_split_ready_and_resolve_named_ports():
    svc = {"metadata": {"name": "web", "namespace": "d"},
           "spec": {"selector": {"app": "w"}, "ports": [{"name": "h", "port": 80, "targetPort": "http"}]}}

    def pod(name, ip, ready, port=8080):
        return {"metadata": {"name": name, "namespace": "d", "uid": name, "labels": {"app": "w"}},
                "spec": {"nodeName": "n", "containers": [{"ports": [{"name": "http", "containerPort": port}]}]},
                "status": {"podIP": ip, "phase": "Running",
                           "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    pods = [pod("a", "10.0.0.2", True), pod("b", "10.0.0.3", False), pod("c", "10.0.0.4", True, 9090),
            {**pod("d", "", True)}]
    subsets = endpoint_subsets(svc, pods)
    assert len(subsets) == 2
    by_port = {s["ports"][0]["port"]: s for s in subsets}
    assert [a["ip"] for a in by_port[8080]["addresses"]] == ["10.0.0.2"]
    assert [a["ip"] for a in by_port[8080]["notReadyAddresses"]] == ["10.0.0.3"]
    assert [a["ip"] for a in by_port[9090]["addresses"]] == ["10.0.0.4"]
    assert resolve_port({"port": 80}, pods[0]) == 80
    assert resolve_port({"port": 80, "targetPort": "nope"}, pods[0]) is None
