"""The Priority and DefaultTolerationSeconds admission plugins, through kubectl and the REST API."""

from __future__ import annotations

import json

NS = "adm"
PODS = f"/api/v1/namespaces/{NS}/pods"


def _pod(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def _namespace(cluster) -> None:
    if cluster.request("GET", f"/api/v1/namespaces/{NS}")[0] == 404:
        code, body = cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
        assert code == 201, body


def test_pod_without_class_gets_priority_zero_and_default_tolerations(cluster):
    _namespace(cluster)
    out = cluster.kubectl("apply", "-f", "-", input=json.dumps(_pod("plain"))).stdout
    assert "created" in out, out
    spec = cluster.kubectl_json("get", "pod", "plain", "-n", NS)["spec"]
    assert spec["priority"] == 0 and spec["preemptionPolicy"] == "PreemptLowerPriority", spec
    assert "priorityClassName" not in spec
    assert spec["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300}]


def test_tolerations_that_cover_the_taints_are_left_alone(cluster):
    _namespace(cluster)
    own = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
           "tolerationSeconds": 6000}
    code, pod = cluster.request("POST", PODS, _pod("own", tolerations=[own]))
    assert code == 201, pod
    assert pod["spec"]["tolerations"] == [own, {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                                "effect": "NoExecute", "tolerationSeconds": 300}]
    everything = {"operator": "Exists"}  # empty key and effect: tolerates every taint
    code, pod = cluster.request("POST", PODS, _pod("all", tolerations=[everything]))
    assert code == 201, pod
    assert pod["spec"]["tolerations"] == [everything]


def test_priority_class_gives_value_and_preemption_policy(cluster):
    _namespace(cluster)
    code, body = cluster.request("POST", "/apis/scheduling.k8s.io/v1/priorityclasses", {
        "metadata": {"name": "adm-high"}, "value": 1000, "preemptionPolicy": "Never"})
    assert code == 201, body
    code, pod = cluster.request("POST", PODS, _pod("high", priorityClassName="adm-high"))
    assert code == 201, pod
    assert (pod["spec"]["priority"], pod["spec"]["preemptionPolicy"]) == (1000, "Never")
    code, pod = cluster.request("POST", "/api/v1/namespaces/kube-system/pods",
                                {**_pod("critical", priorityClassName="system-node-critical"),
                                 "metadata": {"name": "adm-critical"}})
    assert code == 201, pod
    assert pod["spec"]["priority"] == 2000001000
    # the value the class gives may be repeated, not contradicted
    code, pod = cluster.request("POST", PODS, _pod("same", priorityClassName="adm-high", priority=1000))
    assert code == 201, pod


def test_refusals_are_403_with_upstreams_messages(cluster):
    _namespace(cluster)
    proc = cluster.kubectl("apply", "-f", "-", input=json.dumps(_pod("nope", priorityClassName="nope")), check=False)
    assert proc.returncode != 0
    assert ('Error from server (Forbidden): error when creating "STDIN": pods "nope" is forbidden: '
            "no PriorityClass with name nope was found") in proc.stderr, proc.stderr
    code, body = cluster.request("POST", PODS, _pod("given", priority=7))
    assert code == 403 and body["reason"] == "Forbidden", body
    assert body["message"] == (
        'pods "given" is forbidden: the integer value of priority (7) must not be provided in pod spec; '
        "priority admission controller computed 0 from the given PriorityClass name"), body
    code, body = cluster.request("POST", PODS, _pod("policy", preemptionPolicy="Never"))
    assert code == 403, body
    assert "the string value of PreemptionPolicy (Never) must not be provided in pod spec" in body["message"]
    code, body = cluster.request("POST", PODS, _pod("typed", priority="high"))
    assert code in (400, 422), body
    for name in ("nope", "given", "policy", "typed"):
        assert cluster.request("GET", f"{PODS}/{name}")[0] == 404  # nothing half-written


def test_global_default_class_names_itself_in_the_pod(cluster):
    _namespace(cluster)
    code, body = cluster.request("POST", "/apis/scheduling.k8s.io/v1/priorityclasses", {
        "metadata": {"name": "adm-default"}, "value": 10, "globalDefault": True})
    assert code == 201, body
    try:
        code, pod = cluster.request("POST", PODS, _pod("defaulted"))
        assert code == 201, pod
        assert (pod["spec"]["priorityClassName"], pod["spec"]["priority"]) == ("adm-default", 10)
    finally:
        assert cluster.request("DELETE", "/apis/scheduling.k8s.io/v1/priorityclasses/adm-default")[0] == 200


def test_replace_without_admitted_fields_keeps_them(cluster):
    _namespace(cluster)
    code, pod = cluster.request("POST", PODS, _pod("kept", priorityClassName="system-cluster-critical"))
    assert code == 201, pod
    spec = pod["spec"]
    for key in ("priority", "preemptionPolicy", "tolerations"):
        del spec[key]
    # unconditional (kubectl replace would fill in the version it reads, and race the scheduler's writes)
    del pod["metadata"]["resourceVersion"]
    code, body = cluster.request("PUT", f"{PODS}/kept", pod)
    assert code == 200, body
    got = cluster.kubectl_json("get", "pod", "kept", "-n", NS)["spec"]
    assert got["priority"] == 2000000000 and got["preemptionPolicy"] == "PreemptLowerPriority"
    assert {t["key"] for t in got["tolerations"]} == {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}


LIMITS = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"}, "spec": {"limits": [
    {"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"}, "defaultRequest": {"cpu": "100m"},
     "max": {"cpu": "1"}, "min": {"memory": "64Mi"}, "maxLimitRequestRatio": {"cpu": "10"}},
    {"type": "Pod", "max": {"memory": "1Gi"}},
    {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "5Gi"}}]}}


def _limited_namespace(cluster, name: str) -> str:
    code, body = cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert code == 201, body
    code, body = cluster.request("POST", f"/api/v1/namespaces/{name}/limitranges", LIMITS)
    assert code == 201, body
    return f"/api/v1/namespaces/{name}"


def test_limit_range_defaults_container_resources(cluster):
    ns = _limited_namespace(cluster, "adm-lr")
    pod = _pod("defaulted", initContainers=[{"name": "init", "image": "busybox",
                                             "resources": {"requests": {"cpu": "200m"}}}])
    pod["metadata"]["namespace"] = "adm-lr"
    out = cluster.kubectl("apply", "-f", "-", input=json.dumps(pod)).stdout
    assert "created" in out, out
    got = cluster.kubectl_json("get", "pod", "defaulted", "-n", "adm-lr")
    assert got["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}}
    assert got["spec"]["initContainers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "200m", "memory": "256Mi"}}
    assert got["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c; "
        "memory request for init container init; cpu, memory limit for init container init")
    assert got["status"]["qosClass"] == "Burstable"
    code, _ = cluster.request("GET", f"{ns}/pods/defaulted")
    assert code == 200


def test_limit_range_refusals_are_403(cluster):
    ns = _limited_namespace(cluster, "adm-lr2")
    big = _pod("big")
    big["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "2"}}
    proc = cluster.kubectl("apply", "-n", "adm-lr2", "-f", "-", input=json.dumps({**big, "metadata": {"name": "big"}}),
                           check=False)
    assert proc.returncode != 0
    assert ('Error from server (Forbidden): error when creating "STDIN": pods "big" is forbidden: '
            "maximum cpu usage per Container is 1, but limit is 2") in proc.stderr, proc.stderr
    greedy = {"metadata": {"name": "greedy"}, "spec": {"containers": [
        {"name": "c", "image": "busybox", "resources": {"limits": {"cpu": "1", "memory": "4Gi"},
                                                        "requests": {"cpu": "50m", "memory": "32Mi"}}}]}}
    code, body = cluster.request("POST", f"{ns}/pods", greedy)
    assert code == 403 and body["reason"] == "Forbidden", body
    assert body["message"] == (
        'pods "greedy" is forbidden: [minimum memory usage per Container is 64Mi, but request is 32Mi, '
        "cpu max limit to request ratio per Container is 10, but provided ratio is 20.000000, "
        "maximum memory usage per Pod is 1Gi, but limit is 4Gi]"), body
    claim = {"metadata": {"name": "small"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                     "resources": {"requests": {"storage": "500Mi"}}}}
    code, body = cluster.request("POST", f"{ns}/persistentvolumeclaims", claim)
    assert code == 403, body
    assert body["message"] == ('persistentvolumeclaims "small" is forbidden: minimum storage usage per '
                               "PersistentVolumeClaim is 1Gi, but request is 500Mi"), body
    claim["spec"]["resources"]["requests"]["storage"] = "2Gi"
    code, body = cluster.request("POST", f"{ns}/persistentvolumeclaims", claim)
    assert code == 201, body
    for path in ("pods/big", "pods/greedy"):
        assert cluster.request("GET", f"{ns}/{path}")[0] == 404
