"""Storage, quota and disruption end to end against `kyb server --sim-nodes 3`.

The PV binder and the built-in local-path provisioner (default StorageClass, WaitForFirstConsumer
binding on the pod's node, StatefulSet claims, static binding, Retain/Delete reclaim), the
ResourceQuota controller and admission, the disruption controller, the eviction API and
`kubectl drain`. Each test uses its own namespace; the drain test runs last (it cordons a node).
"""

from __future__ import annotations

import json

import pytest

from .cluster import Cluster, free_port, manifest, wait_until

SIM = {"node.kybernetes.io/sim": "true"}  # keep pods off any real node the server may also run


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("kyb-storage"), free_port(), extra_args=["--sim-nodes", "3"])
    c.start()
    try:
        wait_until(lambda: len(_ready_nodes(c)) >= 3, timeout=40, interval=0.3, what="3 Ready sim nodes")
        yield c
    finally:
        code = c.stop()
        assert code == 0, f"kyb server exited with {code} on SIGTERM:\n{c.log()}"


def _ready_nodes(c: Cluster) -> list[str]:
    out = []
    for n in c.kubectl_json("get", "nodes")["items"]:
        conds = n.get("status", {}).get("conditions") or ()
        sim = (n["metadata"].get("labels") or {}).get("node.kybernetes.io/sim") == "true"
        if sim and any(x["type"] == "Ready" and x["status"] == "True" for x in conds) and n["spec"].get("podCIDR"):
            out.append(n["metadata"]["name"])
    return out


def _apply(c: Cluster, *docs: dict) -> None:
    c.kubectl("apply", "-f", "-", input=manifest(*docs))


def _namespace(c: Cluster, name: str) -> str:
    _apply(c, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def _get(c: Cluster, kind: str, name: str, ns: str = "") -> dict | None:
    args = ["get", kind, name, "-o", "json"] + (["-n", ns] if ns else [])
    proc = c.kubectl(*args, check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def _items(c: Cluster, kind: str, ns: str, *args: str) -> list[dict]:
    return c.kubectl_json("get", kind, "-n", ns, *args)["items"]


def _pvc(name: str, size: str = "1Gi", cls: str | None = None, **spec) -> dict:
    s = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, **spec}
    if cls is not None:
        s["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": s}


def _pod(name: str, labels: dict | None = None, claim: str | None = None, **spec) -> dict:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
           "spec": {"containers": [{"name": "c", "image": "registry.example/app:1"}], "nodeSelector": SIM, **spec}}
    if claim:
        pod["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
        pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return pod


def _phase(obj: dict | None) -> str:
    return ((obj or {}).get("status") or {}).get("phase", "")


# --- storage ---------------------------------------------------------------------------------------
def test_default_class_and_wait_for_first_consumer_binding(sim):
    ns = _namespace(sim, "wffc")
    sc = _get(sim, "storageclass", "local-path")
    assert sc["provisioner"] == "rancher.io/local-path" and sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["reclaimPolicy"] == "Delete"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    _apply(sim, dict(_pvc("data"), metadata={"name": "data", "namespace": ns}))
    pvc = _get(sim, "pvc", "data", ns)
    assert pvc["spec"]["storageClassName"] == "local-path"
    explicit = _pvc("none", cls="")
    explicit["metadata"]["namespace"] = ns
    _apply(sim, explicit)
    assert _get(sim, "pvc", "none", ns)["spec"]["storageClassName"] == ""
    sim.kubectl("delete", "pvc", "none", "-n", ns)  # it would take a static volume of a later test

    wait_until(lambda: any(e["reason"] == "WaitForFirstConsumer" for e in _items(sim, "events", ns)),
               timeout=20, interval=0.3, what="a WaitForFirstConsumer event")
    assert _phase(_get(sim, "pvc", "data", ns)) == "Pending" and not _get(sim, "pvc", "data", ns)["spec"].get(
        "volumeName")

    pod = _pod("user", claim="data")
    pod["metadata"]["namespace"] = ns
    _apply(sim, pod)
    pvc = wait_until(lambda: _phase(p := _get(sim, "pvc", "data", ns)) == "Bound" and p, timeout=30, interval=0.3,
                     what="the claim Bound")
    node = wait_until(lambda: _get(sim, "pod", "user", ns)["spec"].get("nodeName"), timeout=10, what="pod node")
    ann = pvc["metadata"]["annotations"]
    assert ann["volume.kubernetes.io/selected-node"] == node
    assert ann["volume.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
    assert ann["volume.beta.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
    assert ann["pv.kubernetes.io/bind-completed"] == "yes"
    uid = pvc["metadata"]["uid"]
    assert pvc["spec"]["volumeName"] == f"pvc-{uid}"
    assert pvc["status"]["capacity"] == {"storage": "1Gi"} and pvc["status"]["accessModes"] == ["ReadWriteOnce"]
    pv = wait_until(lambda: _phase(v := _get(sim, "pv", f"pvc-{uid}")) == "Bound" and v, timeout=10,
                    what="the volume Bound")
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"] == [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]
    assert pv["spec"]["hostPath"]["type"] == "DirectoryOrCreate"
    assert pv["spec"]["hostPath"]["path"] == str(sim.data_dir.resolve() / "storage" / f"pvc-{uid}_{ns}_data")
    assert pv["spec"]["claimRef"]["uid"] == uid and pv["spec"]["capacity"] == {"storage": "1Gi"}
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "rancher.io/local-path"
    reasons = {e["reason"] for e in _items(sim, "events", ns)}
    assert {"ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"} <= reasons
    wait_until(lambda: _phase(_get(sim, "pod", "user", ns)) == "Running", timeout=20, what="pod running")

    # Delete policy: the claim goes, so does the volume
    sim.kubectl("delete", "pod", "user", "-n", ns, "--grace-period=0", "--force", check=False)
    sim.kubectl("delete", "pvc", "data", "-n", ns)
    wait_until(lambda: _get(sim, "pv", f"pvc-{uid}") is None, timeout=30, interval=0.3, what="the PV deleted")


def test_statefulset_claims_bind_on_their_nodes(sim):
    ns = _namespace(sim, "sts")
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns},
           "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}},
                                 "spec": {"nodeSelector": SIM,
                                          "containers": [{"name": "c", "image": "registry.example/db:1",
                                                          "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}}]}}
    _apply(sim, sts)

    def bound():
        claims = _items(sim, "pvc", ns)
        return len(claims) == 2 and all(_phase(p) == "Bound" for p in claims) and claims

    claims = wait_until(bound, timeout=60, interval=0.5, what="two Bound claims")
    for claim in claims:
        ordinal = claim["metadata"]["name"].rsplit("-", 1)[1]
        pod = _get(sim, "pod", f"db-{ordinal}", ns)
        pv = _get(sim, "pv", claim["spec"]["volumeName"])
        values = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"]
        assert values == [pod["spec"]["nodeName"]]
        assert claim["spec"]["storageClassName"] == "local-path"
    wait_until(lambda: sum(_phase(p) == "Running" for p in _items(sim, "pods", ns)) == 2, timeout=30,
               interval=0.5, what="both pods running")


def test_static_binding_and_retain(sim):
    ns = _namespace(sim, "static")
    pvs = [{"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": f"static-{size.lower()}", "labels": {"tier": "fast"}},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                     "hostPath": {"path": f"/tmp/kyb-static-{size}"}}} for size in ("5Gi", "2Gi", "1Gi")]
    _apply(sim, *pvs)
    wait_until(lambda: all(_phase(_get(sim, "pv", p["metadata"]["name"])) == "Available" for p in pvs),
               timeout=20, interval=0.3, what="three Available volumes")
    claim = _pvc("claim", size="1500Mi", cls="", selector={"matchLabels": {"tier": "fast"}})
    claim["metadata"]["namespace"] = ns
    _apply(sim, claim)
    pvc = wait_until(lambda: _phase(p := _get(sim, "pvc", "claim", ns)) == "Bound" and p, timeout=20, interval=0.3,
                     what="the claim Bound")
    assert pvc["spec"]["volumeName"] == "static-2gi"  # the smallest that fits
    assert pvc["status"]["capacity"] == {"storage": "2Gi"}
    assert pvc["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    pv = wait_until(lambda: _phase(v := _get(sim, "pv", "static-2gi")) == "Bound" and v, timeout=10, what="PV Bound")
    assert pv["spec"]["claimRef"]["name"] == "claim" and pv["spec"]["claimRef"]["namespace"] == ns
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"

    sim.kubectl("delete", "pvc", "claim", "-n", ns)
    pv = wait_until(lambda: _phase(v := _get(sim, "pv", "static-2gi")) == "Released" and v, timeout=20,
                    interval=0.3, what="the volume Released")
    assert pv["spec"]["claimRef"]["name"] == "claim"
    assert _phase(_get(sim, "pv", "static-1gi")) == "Available"
    sim.kubectl("delete", "pv", *[p["metadata"]["name"] for p in pvs])


def test_claim_in_use_is_protected_until_its_pod_goes(sim):
    ns = _namespace(sim, "protect")
    _apply(sim, dict(_pvc("data"), metadata={"name": "data", "namespace": ns}))
    assert _get(sim, "pvc", "data", ns)["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    pod = _pod("user", claim="data")
    pod["metadata"]["namespace"] = ns
    _apply(sim, pod)
    pvc = wait_until(lambda: _phase(p := _get(sim, "pvc", "data", ns)) == "Bound" and p, timeout=30, interval=0.3,
                     what="the claim Bound")
    pv_name = pvc["spec"]["volumeName"]
    assert _get(sim, "pv", pv_name)["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    wait_until(lambda: _phase(_get(sim, "pod", "user", ns)) == "Running", timeout=20, what="pod running")

    sim.kubectl("delete", "pvc", "data", "-n", ns, "--wait=false")
    # the pod still uses it: marked for deletion (Terminating), kept; so is its Bound volume
    claim = wait_until(lambda: (p := _get(sim, "pvc", "data", ns)) and p["metadata"].get("deletionTimestamp") and p,
                       timeout=10, what="the claim marked for deletion")
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert "Terminating" in sim.kubectl("get", "pvc", "data", "-n", ns).stdout
    code, body = sim.request("DELETE", f"/api/v1/persistentvolumes/{pv_name}")
    assert code == 202 and body["metadata"]["deletionTimestamp"], body  # accepted, not yet gone
    for _ in range(3):  # several reconciles later, both are still there
        assert _get(sim, "pvc", "data", ns) is not None
        assert _get(sim, "pv", pv_name)["metadata"].get("deletionTimestamp")
        assert _phase(_get(sim, "pv", pv_name)) == "Bound"

    sim.kubectl("delete", "pod", "user", "-n", ns, "--grace-period=0", "--force", check=False)
    wait_until(lambda: _get(sim, "pvc", "data", ns) is None, timeout=20, interval=0.3, what="the claim gone")
    wait_until(lambda: _get(sim, "pv", pv_name) is None, timeout=30, interval=0.3, what="the volume gone")


# --- quota -----------------------------------------------------------------------------------------
def test_quota_refuses_the_pod_over_the_limit_and_reports_usage(sim):
    ns = _namespace(sim, "quota")
    _apply(sim, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q1", "namespace": ns},
                 "spec": {"hard": {"pods": "2", "requests.cpu": "1", "requests.memory": "1Gi", "configmaps": "5",
                                   "count/secrets": "10", "services": "3", "services.nodeports": "1",
                                   "persistentvolumeclaims": "4", "requests.storage": "10Gi"}}})
    quota = wait_until(lambda: (q := _get(sim, "quota", "q1", ns)).get("status", {}).get("used") and q, timeout=20,
                       interval=0.3, what="quota status")
    assert quota["status"]["hard"]["pods"] == "2" and quota["status"]["used"]["pods"] == "0"
    res = {"requests": {"cpu": "250m", "memory": "128Mi"}}
    for name in ("a", "b"):
        pod = _pod(name)
        pod["metadata"]["namespace"] = ns
        pod["spec"]["containers"][0]["resources"] = res
        _apply(sim, pod)
    third = _pod("c")
    third["metadata"]["namespace"] = ns
    third["spec"]["containers"][0]["resources"] = res
    proc = sim.kubectl("create", "-f", "-", input=manifest(third), check=False)
    assert proc.returncode != 0
    assert ('pods "c" is forbidden: exceeded quota: q1, requested: pods=1, used: pods=2, limited: pods=2'
            in proc.stderr), proc.stderr
    status, body = sim.request("POST", f"/api/v1/namespaces/{ns}/pods", third)
    assert status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == 'pods "c" is forbidden: exceeded quota: q1, requested: pods=1, used: pods=2, limited: pods=2'
    bare = _pod("d")
    bare["metadata"]["namespace"] = ns
    status, body = sim.request("POST", f"/api/v1/namespaces/{ns}/pods", bare)
    assert status == 403 and body["message"] == (
        'pods "d" is forbidden: failed quota: q1: must specify requests.cpu for: c; requests.memory for: c')

    _apply(sim, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": ns}},
           {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np", "namespace": ns},
            "spec": {"type": "NodePort", "ports": [{"port": 80}]}},
           dict(_pvc("claim", size="3Gi"), metadata={"name": "claim", "namespace": ns}))
    svc2 = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np2", "namespace": ns},
            "spec": {"type": "NodePort", "ports": [{"port": 81}]}}
    status, body = sim.request("POST", f"/api/v1/namespaces/{ns}/services", svc2)
    assert status == 403 and "exceeded quota: q1, requested: services.nodeports=1, used: services.nodeports=1, " \
                             "limited: services.nodeports=1" in body["message"]
    # configmaps: kube-root-ca.crt, published in every namespace, counts too (as upstream)
    want = {"pods": "2", "requests.cpu": "500m", "requests.memory": "256Mi", "configmaps": "2", "services": "1",
            "services.nodeports": "1", "persistentvolumeclaims": "1", "requests.storage": "3Gi"}

    def used():
        u = _get(sim, "quota", "q1", ns)["status"]["used"]
        return all(u.get(k) == v for k, v in want.items()) and u

    u = wait_until(used, timeout=20, interval=0.3, what="quota usage")
    assert int(u["count/secrets"]) >= 0
    described = sim.kubectl("describe", "quota", "q1", "-n", ns).stdout
    assert "requests.cpu" in described and "500m" in described and "pods" in described

    # terminal pods stop counting
    sim.kubectl("delete", "pod", "a", "-n", ns, "--grace-period=0", "--force")
    wait_until(lambda: _get(sim, "quota", "q1", ns)["status"]["used"]["pods"] == "1", timeout=20, interval=0.3,
               what="usage down after a delete")
    sim.kubectl("create", "-f", "-", input=manifest(third))
    # bare pods would stop `kubectl drain` (no --force) in a later test
    sim.kubectl("delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force")


# --- disruption budgets, eviction and drain --------------------------------------------------------
def _deployment(name: str, ns: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"nodeSelector": SIM, "terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": "c", "image": "registry.example/web:1"}]}}}}


def _pdb(name: str, ns: str, app: str, **spec) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": app}}, **spec}}


def _pdb_status(c: Cluster, name: str, ns: str) -> dict:
    return (_get(c, "pdb", name, ns) or {}).get("status") or {}


def _running(c: Cluster, ns: str, app: str) -> list[dict]:
    return [p for p in _items(c, "pods", ns, "-l", f"app={app}") if not p["metadata"].get("deletionTimestamp")
            and any(x["type"] == "Ready" and x["status"] == "True" for x in p["status"].get("conditions") or ())]


def _evict(c: Cluster, ns: str, pod: str) -> tuple[int, dict]:
    return c.request("POST", f"/api/v1/namespaces/{ns}/pods/{pod}/eviction",
                     {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": ns}})


def test_pdb_status_and_eviction(sim):
    ns = _namespace(sim, "pdb")
    _apply(sim, _deployment("web", ns, 3), _pdb("web-pdb", ns, "web", minAvailable=2),
           _pdb("web-pct", ns, "web-x", maxUnavailable="50%"))
    wait_until(lambda: len(_running(sim, ns, "web")) == 3, timeout=40, interval=0.3, what="3 ready pods")
    status = wait_until(lambda: (s := _pdb_status(sim, "web-pdb", ns)).get("currentHealthy") == 3 and s,
                        timeout=20, interval=0.3, what="pdb status")
    assert status["disruptionsAllowed"] == 1 and status["desiredHealthy"] == 2 and status["expectedPods"] == 3
    assert status["observedGeneration"] == 1
    cond = next(c for c in status["conditions"] if c["type"] == "DisruptionAllowed")
    assert cond["status"] == "True" and cond["reason"] == "SufficientPods"

    pods = sorted(p["metadata"]["name"] for p in _running(sim, ns, "web"))
    code, body = _evict(sim, ns, pods[0])
    assert code == 201, body
    code, body = _evict(sim, ns, pods[1])
    assert code == 429 and body["reason"] == "TooManyRequests", body
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    cause = body["details"]["causes"][0]
    assert cause["reason"] == "DisruptionBudget"
    assert cause["message"].startswith("The disruption budget web-pdb needs 2 healthy pods and has ")
    wait_until(lambda: len(_running(sim, ns, "web")) == 3 and _pdb_status(sim, "web-pdb", ns).get(
        "disruptionsAllowed") == 1, timeout=40, interval=0.3, what="a replacement pod and a budget again")

    # percentages scale with the Deployment's replicas through its ReplicaSet
    _apply(sim, _pdb("web-pct", ns, "web", maxUnavailable="50%"))
    status = wait_until(lambda: (s := _pdb_status(sim, "web-pct", ns)).get("expectedPods") == 3 and s,
                        timeout=20, interval=0.3, what="percent pdb status")
    assert status["desiredHealthy"] == 1 and status["disruptionsAllowed"] == 2
    code, body = _evict(sim, ns, _running(sim, ns, "web")[0]["metadata"]["name"])
    assert code == 500 and body["message"].endswith(
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
    sim.kubectl("delete", "pdb", "web-pct", "-n", ns)


def test_drain_honours_the_budget(sim):
    ns = _namespace(sim, "drain")
    _apply(sim, _deployment("app", ns, 3), _pdb("app-pdb", ns, "app", minAvailable=2))
    wait_until(lambda: len(_running(sim, ns, "app")) == 3, timeout=40, interval=0.3, what="3 ready pods")
    wait_until(lambda: _pdb_status(sim, "app-pdb", ns).get("disruptionsAllowed") == 1, timeout=20, interval=0.3,
               what="budget allows one")
    nodes = [p["spec"]["nodeName"] for p in _running(sim, ns, "app")]
    node = max(set(nodes), key=nodes.count)  # the node with the most of them
    proc = sim.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=80s",
                       timeout=85)
    assert f"node/{node} drained" in proc.stdout, proc.stdout + proc.stderr
    assert _get(sim, "node", node)["spec"].get("unschedulable") is True
    pods = wait_until(lambda: len(r := _running(sim, ns, "app")) == 3 and r, timeout=30, interval=0.3,
                      what="3 ready pods elsewhere")
    assert all(p["spec"]["nodeName"] != node for p in pods)
    sim.kubectl("uncordon", node)
