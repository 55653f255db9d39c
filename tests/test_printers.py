"""Server-side Table printers: cells and columns for kubectl get."""

from __future__ import annotations

import datetime

import pytest

from kybernetes.apiserver.printers import table_for
from kybernetes.apiserver.printers.common import human_duration, selector_string
from kybernetes.apiserver.printers.jsonpath import find

NOW = datetime.datetime(2025, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)


def ts(seconds_ago: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str = "x", created: float = 60, **extra) -> dict:
    return {"name": name, "namespace": "default", "creationTimestamp": ts(created), **extra}


def cells(group: str, kind: str, obj: dict) -> list:
    return table_for(group, kind, [obj], NOW)["rows"][0]["cells"]


def headers(group: str, kind: str) -> list[str]:
    return [c["name"] for c in table_for(group, kind, [], NOW)["columnDefinitions"]]


# ---- age ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds,expected",
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60 * 5, "3h5m"),
        (8 * 3600, "8h"),
        (47 * 3600 + 59 * 60, "47h"),
        (48 * 3600, "2d"),
        (50 * 3600, "2d2h"),
        (8 * 86400, "8d"),
        (2 * 365 * 86400 - 1, "729d"),
        (2 * 365 * 86400, "2y"),
        (3 * 365 * 86400 + 10 * 86400, "3y10d"),
        (8 * 365 * 86400, "8y"),
        (20 * 365 * 86400, "20y"),
    ],
)
def test_human_duration(seconds, expected):
    assert human_duration(seconds) == expected


def test_age_unknown_without_timestamp():
    assert cells("", "ConfigMap", {"metadata": {"name": "c"}}) == ["c", 0, "<unknown>"]


# ---- pods --------------------------------------------------------------------------------------


def pod(container_statuses, phase="Running", init_statuses=None, init_containers=0, **kw):
    containers = [{"name": s["name"], "image": "img"} for s in container_statuses] or [{"name": "c", "image": "i"}]
    obj = {
        "metadata": meta("p", 300),
        "spec": {
            "containers": containers,
            "initContainers": [{"name": f"init{i}", "image": "i"} for i in range(init_containers)],
            "nodeName": "node-1",
        },
        "status": {"phase": phase, "podIP": "10.0.0.5", "containerStatuses": container_statuses},
    }
    if init_statuses is not None:
        obj["status"]["initContainerStatuses"] = init_statuses
    obj["metadata"].update(kw.get("metadata", {}))
    return obj


def running(name="c", ready=True, restarts=0, **extra):
    return {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {}}, **extra}


def test_pod_columns():
    assert headers("", "Pod") == [
        "Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"
    ]  # fmt: skip
    cols = table_for("", "Pod", [], NOW)["columnDefinitions"]
    assert cols[0]["format"] == "name"
    assert [c["priority"] for c in cols] == [0, 0, 0, 0, 0, 1, 1, 1, 1]


def test_pod_running():
    c = cells("", "Pod", pod([running("a"), running("b", ready=False)]))
    assert c == ["p", "1/2", "Running", "0", "5m", "10.0.0.5", "node-1", "<none>", "<none>"]


def test_pod_completed():
    st = {"name": "c", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    table = table_for("", "Pod", [pod([st], phase="Succeeded")], NOW)
    row = table["rows"][0]
    assert row["cells"][1:3] == ["0/1", "Completed"]
    assert row["conditions"][0]["type"] == "Completed"


def test_pod_crashloop_with_restart_ago():
    st = {
        "name": "c",
        "ready": False,
        "restartCount": 5,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ts(300)}},
    }
    c = cells("", "Pod", pod([st]))
    assert c[1:4] == ["0/1", "CrashLoopBackOff", "5 (5m ago)"]


def test_pod_init_progress():
    init = [{"name": "init0", "restartCount": 0, "state": {"running": {}}}]
    c = cells("", "Pod", pod([{"name": "c", "state": {"waiting": {"reason": "PodInitializing"}}}], phase="Pending",
                             init_statuses=init, init_containers=1))  # fmt: skip
    assert c[2] == "Init:0/1"


def test_pod_init_error_and_waiting():
    failed = [{"name": "init0", "state": {"terminated": {"exitCode": 2}}}]
    c = cells("", "Pod", pod([], phase="Pending", init_statuses=failed, init_containers=1))
    assert c[2] == "Init:ExitCode:2"
    waiting = [{"name": "init0", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]
    assert cells("", "Pod", pod([], phase="Pending", init_statuses=waiting, init_containers=1))[2] == (
        "Init:ImagePullBackOff"
    )


def test_pod_container_creating():
    st = {"name": "c", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
    assert cells("", "Pod", pod([st], phase="Pending"))[2] == "ContainerCreating"


def test_pod_terminating():
    obj = pod([running()], metadata={"deletionTimestamp": ts(1)})
    assert cells("", "Pod", obj)[2] == "Terminating"


def test_pod_readiness_gates_and_nominated():
    obj = pod([running()])
    obj["spec"]["readinessGates"] = [{"conditionType": "a"}, {"conditionType": "b"}]
    obj["status"]["conditions"] = [{"type": "a", "status": "True"}, {"type": "b", "status": "False"}]
    obj["status"]["nominatedNodeName"] = "n2"
    assert cells("", "Pod", obj)[7:] == ["n2", "1/2"]


# ---- services and workloads --------------------------------------------------------------------


def test_service_ports_and_external_ip():
    svc = {
        "metadata": meta("web"),
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.96.0.10",
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            "selector": {"app": "web", "tier": "fe"},
        },
    }
    assert cells("", "Service", svc) == [
        "web", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP", "60s", "app=web,tier=fe"
    ]  # fmt: skip
    svc["spec"]["type"] = "LoadBalancer"
    assert cells("", "Service", svc)[3] == "<pending>"
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    assert cells("", "Service", svc)[3] == "1.2.3.4"


def test_endpoints_more():
    ep = {"metadata": meta("e"), "subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(5)],
                                              "ports": [{"port": 80}]}]}  # fmt: skip
    assert cells("", "Endpoints", ep)[1] == "10.0.0.0:80,10.0.0.1:80,10.0.0.2:80 + 2 more..."


def test_deployment_ready():
    d = {
        "metadata": meta("d", 7200),
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert headers("apps", "Deployment") == [
        "Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"
    ]  # fmt: skip
    assert cells("apps", "Deployment", d) == ["d", "2/3", 3, 2, "120m", "c", "nginx", "app=d"]


def test_job_status_and_duration():
    job = {
        "metadata": meta("j"),
        "spec": {"completions": 1},
        "status": {
            "succeeded": 1,
            "startTime": ts(100),
            "completionTime": ts(40),
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    }
    assert cells("batch", "Job", job)[1:4] == ["Complete", "1/1", "60s"]


def test_node_status_roles():
    node = {
        "metadata": meta("n", labels={"node-role.kubernetes.io/control-plane": ""}),
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.32.0"}},
    }
    assert cells("", "Node", node)[:5] == ["n", "Ready,SchedulingDisabled", "control-plane", "60s", "v1.32.0"]


def test_storageclass_default_and_rbac():
    sc = {"metadata": meta("std", annotations={"storageclass.kubernetes.io/is-default-class": "true"}),
          "provisioner": "p"}  # fmt: skip
    assert cells("storage.k8s.io", "StorageClass", sc)[:4] == ["std (default)", "p", "Delete", "Immediate"]
    rb = {"metadata": meta("rb"), "roleRef": {"kind": "ClusterRole", "name": "view"},
          "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]}  # fmt: skip
    assert cells("rbac.authorization.k8s.io", "RoleBinding", rb) == ["rb", "ClusterRole/view", "60s", "", "", "ns/sa"]
    role = {"metadata": {"name": "r", "creationTimestamp": "2024-01-02T03:04:05Z"}}
    assert cells("rbac.authorization.k8s.io", "Role", role) == ["r", "2024-01-02T03:04:05Z"]


def test_event_columns():
    ev = {"metadata": meta("ev"), "involvedObject": {"kind": "Pod", "name": "p"}, "type": "Normal",
          "reason": "Pulled", "message": " done ", "lastTimestamp": ts(30), "count": 2}  # fmt: skip
    assert cells("", "Event", ev) == ["30s", "Normal", "Pulled", "pod/p", "", "", "done", "<unknown>", 2, "ev"]


def test_unknown_kind_defaults():
    assert headers("example.com", "Thing") == ["Name", "Age"]
    assert cells("example.com", "Thing", {"metadata": meta("t", 5)}) == ["t", "5s"]


def test_selector_string():
    sel = {"matchLabels": {"b": "1"}, "matchExpressions": [{"key": "a", "operator": "In", "values": ["y", "x"]}]}
    assert selector_string(sel) == "a in (x,y),b=1"


# ---- CRD columns -------------------------------------------------------------------------------


CR = {
    "metadata": meta("cr", 90, labels={"app": "demo"}),
    "spec": {"replicas": 3, "items": ["first", "second"], "enabled": True, "ratio": 1.5},
    "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]},
}


def test_crd_columns():
    cols = [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "App", "type": "string", "jsonPath": ".metadata.labels.app", "priority": 1},
        {"name": "First", "type": "string", "jsonPath": ".spec.items[0]"},
        {"name": "Enabled", "type": "boolean", "jsonPath": ".spec.enabled"},
        {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    table = table_for("example.com", "Widget", [CR], NOW, crd_columns=cols)
    defs = table["columnDefinitions"]
    assert [d["name"] for d in defs] == ["Name", "Replicas", "Ready", "App", "First", "Enabled", "Ratio", "Missing",
                                         "Age"]  # fmt: skip
    assert defs[3]["priority"] == 1 and defs[0]["format"] == "name"
    assert table["rows"][0]["cells"] == ["cr", 3, "True", "demo", "first", True, 1.5, None, "90s"]


def test_crd_columns_empty_list_gives_age():
    table = table_for("example.com", "Widget", [CR], NOW, crd_columns=[])
    assert [d["name"] for d in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["columnDefinitions"][1]["type"] == "date"
    assert table["rows"][0]["cells"] == ["cr", "90s"]


def test_jsonpath_subset():
    assert find(CR, "{.spec.items[*]}") == ["first", "second"]
    assert find(CR, ".spec.items[-1]") == ["second"]
    assert find(CR, "$.metadata['labels'].app") == ["demo"]
    assert find(CR, ".status.conditions[?(@.status!='True')].type") == ["Synced"]


# ---- includeObject -----------------------------------------------------------------------------


def test_include_object_variants():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("c"), "data": {"a": "1"}}
    t = table_for("", "ConfigMap", [obj], NOW)
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]
    }  # fmt: skip
    assert table_for("", "ConfigMap", [obj], NOW, include_object="Object")["rows"][0]["object"] == obj
    assert table_for("", "ConfigMap", [obj], NOW, include_object="None")["rows"][0]["object"] is None
