"""Simulated nodes end to end: `kyb server --sim-nodes 3` with the node and endpoint controllers.

Pods are bound by the tests themselves (spec.nodeName), so nothing here depends on the
scheduler. sim-node-2 is reserved for the heartbeat test, which takes it offline.
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from .cluster import Cluster, free_port, manifest, wait_until

GRACE = 20  # --node-monitor-grace-period: leases are renewed every 10 s


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("kyb-sim"), free_port(),
                extra_args=["--sim-nodes", "3", "--node-monitor-grace-period", str(GRACE)])
    c.start()
    try:
        wait_until(lambda: _ready_nodes(c) == 3, timeout=30, interval=0.3, what="3 Ready sim nodes with pod CIDRs")
        yield c
    finally:
        code = c.stop()
        assert code == 0, f"kyb server exited with {code} on SIGTERM:\n{c.log()}"


def _ready_nodes(c: Cluster) -> int:
    nodes = c.kubectl_json("get", "nodes")["items"]
    return sum(1 for n in nodes if n["spec"].get("podCIDR") and _ready(n) == "True")


def _ready(node: dict) -> str:
    return next((x["status"] for x in node["status"].get("conditions") or () if x["type"] == "Ready"), "")


def _namespace(c: Cluster, name: str) -> None:
    c.kubectl("apply", "-f", "-", input=manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))


def _pod(name: str, node: str, annotations: dict | None = None, restart: str = "Always", labels: dict | None = None,
         **container) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations or {}, "labels": labels or {}},
            "spec": {"nodeName": node, "restartPolicy": restart,
                     "containers": [{"name": "c", "image": "registry.example/app:1", **container}]}}


def _get(c: Cluster, ns: str, kind: str, name: str) -> dict | None:
    proc = c.kubectl("get", kind, name, "-n", ns, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def _phase(c: Cluster, ns: str, name: str) -> str:
    pod = _get(c, ns, "pod", name)
    return (pod or {}).get("status", {}).get("phase", "")


def test_nodes_registered_with_leases_and_pod_cidrs(sim):
    nodes = {n["metadata"]["name"]: n for n in sim.kubectl_json("get", "nodes")["items"]}
    assert {"sim-node-0", "sim-node-1", "sim-node-2"} <= set(nodes)
    cidrs = set()
    for name in ("sim-node-0", "sim-node-1", "sim-node-2"):
        n = nodes[name]
        labels = n["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == name and labels["node.kybernetes.io/sim"] == "true"
        assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"] == "amd64"
        assert n["status"]["capacity"] == {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        assert n["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.0-kyb"
        assert n["status"]["nodeInfo"]["containerRuntimeVersion"] == "sim://1.0"
        types = {a["type"] for a in n["status"]["addresses"]}
        assert types == {"InternalIP", "Hostname"}
        ready = next(x for x in n["status"]["conditions"] if x["type"] == "Ready")
        assert ready["status"] == "True" and ready["reason"] == "KubeletReady"
        cidr = ipaddress.ip_network(n["spec"]["podCIDR"])
        assert n["spec"]["podCIDRs"] == [n["spec"]["podCIDR"]]
        assert cidr.prefixlen == 24 and cidr.subnet_of(ipaddress.ip_network("10.42.0.0/16"))
        cidrs.add(cidr)
    assert len(cidrs) == 3
    def leases():
        items = sim.kubectl_json("get", "leases", "-n", "kube-node-lease")["items"]
        held = {ls["metadata"]["name"]: ls for ls in items}
        return held if all(f"sim-node-{i}" in held for i in range(3)) else None

    for ls in wait_until(leases, timeout=15, interval=0.5, what="node leases").values():
        assert ls["spec"]["holderIdentity"] == ls["metadata"]["name"]
        assert ls["spec"]["leaseDurationSeconds"] == 40
        assert ls["metadata"]["ownerReferences"][0]["kind"] == "Node"


def test_pod_runs_with_an_ip_from_its_node_cidr(sim):
    _namespace(sim, "run")
    sim.kubectl("apply", "-n", "run", "-f", "-", input=manifest(_pod("web", "sim-node-1")))
    wait_until(lambda: _phase(sim, "run", "web") == "Running", timeout=20, what="pod Running")
    pod = _get(sim, "run", "pod", "web")
    node = _get(sim, "", "node", "sim-node-1")
    st = pod["status"]
    assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network(node["spec"]["podCIDR"])
    assert st["podIPs"] == [{"ip": st["podIP"]}]
    internal = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    assert st["hostIP"] == internal and st["startTime"]
    conds = {x["type"]: x["status"] for x in st["conditions"]}
    for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
        assert conds[kind] == "True", conds
    cs = st["containerStatuses"][0]
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0 and "running" in cs["state"]
    assert cs["containerID"].startswith("sim://") and cs["imageID"].startswith("sim://")
    wide = sim.kubectl("get", "pods", "-n", "run", "-o", "wide").stdout
    assert st["podIP"] in wide and "sim-node-1" in wide and "Running" in wide


def test_readiness_probe_delays_ready(sim):
    _namespace(sim, "probe")
    probe = {"initialDelaySeconds": 3, "tcpSocket": {"port": 80}}
    sim.kubectl("apply", "-n", "probe", "-f", "-", input=manifest(_pod("slow", "sim-node-0", readinessProbe=probe)))
    wait_until(lambda: _phase(sim, "probe", "slow") == "Running", timeout=20, what="pod Running")
    cs = _get(sim, "probe", "pod", "slow")["status"]["containerStatuses"][0]
    assert cs["started"] and not cs["ready"]
    wait_until(lambda: _get(sim, "probe", "pod", "slow")["status"]["containerStatuses"][0]["ready"], timeout=15,
               what="container ready after initialDelaySeconds")


def test_exit_codes_and_restart_policies(sim):
    _namespace(sim, "exits")
    pods = [
        _pod("fails", "sim-node-0", {"sim.kybernetes.io/run-seconds": "1", "sim.kybernetes.io/exit-code": "1"},
             restart="Never"),
        _pod("succeeds", "sim-node-0", {"sim.kybernetes.io/run-seconds": "1"}, restart="Never"),
        _pod("retries-ok", "sim-node-1", {"sim.kybernetes.io/run-seconds": "1"}, restart="OnFailure"),
        _pod("crashes", "sim-node-1", {"sim.kybernetes.io/run-seconds": "1", "sim.kybernetes.io/exit-code": "3"}),
    ]
    sim.kubectl("apply", "-n", "exits", "-f", "-", input=manifest(*pods))
    wait_until(lambda: _phase(sim, "exits", "fails") == "Failed", timeout=20, what="Never + exit 1 -> Failed")
    wait_until(lambda: _phase(sim, "exits", "succeeds") == "Succeeded", timeout=20, what="Never + exit 0 -> Succeeded")
    wait_until(lambda: _phase(sim, "exits", "retries-ok") == "Succeeded", timeout=20, what="OnFailure + 0 -> Succeeded")
    term = _get(sim, "exits", "pod", "fails")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 1 and term["reason"] == "Error"

    def crash_looping():
        cs = (_get(sim, "exits", "pod", "crashes")["status"].get("containerStatuses") or [{}])[0]
        waiting = cs.get("state", {}).get("waiting", {})
        return cs if waiting.get("reason") == "CrashLoopBackOff" and cs.get("restartCount", 0) >= 1 else None

    cs = wait_until(crash_looping, timeout=20, interval=0.2, what="CrashLoopBackOff")
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    assert "back-off 10s restarting failed container=c" in cs["state"]["waiting"]["message"]
    assert _phase(sim, "exits", "crashes") == "Running"
    out = sim.kubectl("get", "pods", "-n", "exits").stdout
    assert "CrashLoopBackOff" in out and "Completed" in out and "Error" in out


def test_deleted_pod_goes_away(sim):
    _namespace(sim, "del")
    sim.kubectl("apply", "-n", "del", "-f", "-", input=manifest(_pod("doomed", "sim-node-0")))
    wait_until(lambda: _phase(sim, "del", "doomed") == "Running", timeout=20, what="pod Running")
    sim.kubectl("delete", "pod", "doomed", "-n", "del", "--wait=false")
    wait_until(lambda: _get(sim, "del", "pod", "doomed") is None, timeout=15, what="pod deleted by the kubelet")


def test_service_gets_endpoints_and_slices(sim):
    _namespace(sim, "svc")
    port = {"ports": [{"name": "http", "containerPort": 8080}]}
    pods = [_pod(f"web-{i}", f"sim-node-{i % 2}", labels={"app": "web"}, **port) for i in range(3)]
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}}
    sim.kubectl("apply", "-n", "svc", "-f", "-", input=manifest(*pods, svc))
    wait_until(lambda: all(_phase(sim, "svc", f"web-{i}") == "Running" for i in range(3)), timeout=20,
               what="pods Running")
    ips = {_get(sim, "svc", "pod", f"web-{i}")["status"]["podIP"] for i in range(3)}

    def endpoint_ips():
        ep = _get(sim, "svc", "endpoints", "web") or {}
        return {a["ip"] for s in ep.get("subsets") or () for a in s.get("addresses") or ()}

    wait_until(lambda: endpoint_ips() == ips, timeout=15, what="Endpoints with the pod IPs")
    ep = _get(sim, "svc", "endpoints", "web")
    assert ep["subsets"][0]["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    assert all(a["targetRef"]["kind"] == "Pod" and a["nodeName"] for a in ep["subsets"][0]["addresses"])

    def slices():
        return sim.kubectl_json("get", "endpointslices", "-n", "svc", "-l", "kubernetes.io/service-name=web")["items"]

    def slice_ips():
        return {a for s in slices() for e in s.get("endpoints") or () for a in e["addresses"]}

    wait_until(lambda: slice_ips() == ips and len(slices()) == 1, timeout=15, what="one EndpointSlice with the IPs")
    sl = slices()[0]
    assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert sl["addressType"] == "IPv4" and sl["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    assert sl["metadata"]["ownerReferences"][0]["kind"] == "Service"
    for e in sl["endpoints"]:
        assert e["conditions"] == {"ready": True, "serving": True, "terminating": False}
        assert e["targetRef"]["kind"] == "Pod" and e["nodeName"].startswith("sim-node-")
    # a pod going away leaves both
    sim.kubectl("delete", "pod", "web-0", "-n", "svc", "--wait=false")
    wait_until(lambda: len(endpoint_ips()) == 2 and len(slice_ips()) == 2, timeout=15, what="endpoints shrink")


def test_every_namespace_gets_a_default_service_account(sim):
    _namespace(sim, "accounts")
    wait_until(lambda: _get(sim, "accounts", "serviceaccount", "default") is not None, timeout=10,
               what="default ServiceAccount")
    for ns in ("default", "kube-system"):
        assert _get(sim, ns, "serviceaccount", "default") is not None


def test_lost_heartbeat_makes_node_unreachable_and_evicts(sim):
    _namespace(sim, "hb")
    tolerate = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    stays = _pod("tolerates", "sim-node-2")
    stays["spec"]["tolerations"] = [tolerate]
    brief = _pod("evicted", "sim-node-2")
    brief["spec"]["tolerations"] = [{**tolerate, "tolerationSeconds": 1}]
    sim.kubectl("apply", "-n", "hb", "-f", "-", input=manifest(brief, stays, _pod("plain", "sim-node-2")))
    wait_until(lambda: _phase(sim, "hb", "evicted") == "Running", timeout=20, what="pod Running")
    # DefaultTolerationSeconds admission: a pod that tolerates neither taint tolerates both for 300 s
    plain = {(t["key"], t.get("tolerationSeconds")) for t in _get(sim, "hb", "pod", "plain")["spec"]["tolerations"]}
    assert plain == {("node.kubernetes.io/not-ready", 300), ("node.kubernetes.io/unreachable", 300)}, plain
    assert [t["key"] for t in _get(sim, "hb", "pod", "tolerates")["spec"]["tolerations"]] == [
        "node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"]
    sim.kubectl("annotate", "node", "sim-node-2", "sim.kybernetes.io/heartbeat=false")
    try:
        def unknown():
            n = _get(sim, "", "node", "sim-node-2")
            return n if _ready(n) == "Unknown" else None

        node = wait_until(unknown, timeout=GRACE + 20, interval=0.5, what="node Ready=Unknown")
        ready = next(x for x in node["status"]["conditions"] if x["type"] == "Ready")
        assert ready["reason"] == "NodeStatusUnknown" and ready["message"] == "Kubelet stopped posting node status."
        taints = wait_until(lambda: {(t["key"], t["effect"]) for t in
                                     _get(sim, "", "node", "sim-node-2")["spec"].get("taints") or ()}, timeout=10)
        assert ("node.kubernetes.io/unreachable", "NoExecute") in taints
        assert ("node.kubernetes.io/unreachable", "NoSchedule") in taints
        assert "NotReady" in sim.kubectl("get", "node", "sim-node-2").stdout
        # tolerating 1 s: evicted then (Terminating: the node cannot finish it); tolerating without end, or
        # 300 s by default: stays
        wait_until(lambda: (_get(sim, "hb", "pod", "evicted") or {}).get("metadata", {}).get("deletionTimestamp"),
                   timeout=10, what="pod evicted")
        assert not _get(sim, "hb", "pod", "tolerates")["metadata"].get("deletionTimestamp")
        assert not _get(sim, "hb", "pod", "plain")["metadata"].get("deletionTimestamp")
    finally:
        sim.kubectl("annotate", "node", "sim-node-2", "sim.kybernetes.io/heartbeat-")
    wait_until(lambda: _ready(_get(sim, "", "node", "sim-node-2")) == "True", timeout=20, what="node Ready again")
    wait_until(lambda: not _get(sim, "", "node", "sim-node-2")["spec"].get("taints"), timeout=10, what="taints gone")
    wait_until(lambda: _get(sim, "hb", "pod", "evicted") is None, timeout=15, what="evicted pod finished")
