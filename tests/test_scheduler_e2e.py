"""The scheduler inside `kyb server`: binding, failures with upstream's message, schedulerName."""

from __future__ import annotations

from .cluster import manifest, wait_until


def _node(cluster, name: str, cpu: str, taints=None) -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {"taints": taints or []}}
    cluster.kubectl("apply", "-f", "-", input=manifest(node))
    status = {"status": {"capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                         "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                         "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                         "message": "ready", "lastHeartbeatTime": None,
                                         "lastTransitionTime": None}]}}
    status_code, body = cluster.request("PATCH", f"/api/v1/nodes/{name}/status", status,
                                        content_type="application/merge-patch+json")
    assert status_code == 200, body


def _pod(name: str, cpu: str, scheduler: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}]}
    if scheduler:
        spec["schedulerName"] = scheduler
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def test_scheduler_binds_and_explains_failures(fresh_cluster):
    c = fresh_cluster
    _node(c, "control", "8", [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])
    _node(c, "worker", "2")
    c.kubectl("apply", "-f", "-", input=manifest(_pod("small", "500m")))
    wait_until(lambda: c.kubectl_json("get", "pod", "small")["spec"].get("nodeName") == "worker", timeout=30,
               what="small to be bound to worker")
    events = c.kubectl_json("get", "events", "--field-selector", "involvedObject.name=small")["items"]
    assert any(e["reason"] == "Scheduled" and "Successfully assigned default/small to worker" in e["message"]
               for e in events)

    c.kubectl("apply", "-f", "-", input=manifest(_pod("huge", "4")))

    def unschedulable():
        conds = c.kubectl_json("get", "pod", "huge").get("status", {}).get("conditions") or []
        return next((x for x in conds if x["type"] == "PodScheduled" and x["status"] == "False"), None)

    cond = wait_until(unschedulable, timeout=30, what="huge to be marked unschedulable")
    assert cond["reason"] == "Unschedulable"
    assert cond["message"].startswith("0/2 nodes are available: ")
    assert "1 Insufficient cpu" in cond["message"]
    assert "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }" in cond["message"]
    events = c.kubectl_json("get", "events", "--field-selector", "involvedObject.name=huge,reason=FailedScheduling")
    assert events["items"] and events["items"][0]["type"] == "Warning"

    c.kubectl("apply", "-f", "-", input=manifest(_pod("other", "100m", scheduler="my-scheduler")))
    c.kubectl("apply", "-f", "-", input=manifest(_pod("after", "100m")))
    wait_until(lambda: c.kubectl_json("get", "pod", "after")["spec"].get("nodeName"), timeout=30,
               what="a later pod to be bound")
    assert not c.kubectl_json("get", "pod", "other")["spec"].get("nodeName")
    lease = c.kubectl_json("get", "lease", "kube-scheduler", "-n", "kube-system")
    assert lease["spec"]["holderIdentity"]
