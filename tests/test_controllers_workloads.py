"""Workload controllers end to end: a real `kyb server` (all controllers) and the real kubectl.

There are no kubelets here, so the tests play kubelet: they mark pods Running and Ready
through `pods/NAME/status`.
"""

from __future__ import annotations

import asyncio
import threading
import time

from kybernetes.client.events import EventRecorder
from kybernetes.client.rest import RESTClient

from .cluster import manifest, wait_until

POD_TEMPLATE = {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.0"}]}}


def ns_manifest(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def apply(cluster, *docs: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=manifest(*docs))


def pods(cluster, ns: str, selector: str = "") -> list[dict]:
    path = f"/api/v1/namespaces/{ns}/pods" + (f"?labelSelector={selector}" if selector else "")
    code, body = cluster.request("GET", path)
    assert code == 200, body
    return [p for p in body["items"] if not p["metadata"].get("deletionTimestamp")]


def get(cluster, path: str) -> dict:
    code, body = cluster.request("GET", path)
    assert code == 200, body
    return body


def mark_ready(cluster, pod: dict) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": stamp},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp}]}}
    meta = pod["metadata"]
    code, body = cluster.request("PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                                 status, content_type="application/merge-patch+json")
    assert code in (200, 404), body


def ready_all(cluster, ns: str) -> int:
    n = 0
    for p in pods(cluster, ns):
        if not any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", [])):
            mark_ready(cluster, p)
            n += 1
    return n


class Kubelet:
    """A background loop that marks every new pod in a namespace Ready (a stand-in kubelet)."""

    def __init__(self, cluster, ns: str, delay: float = 0.0):
        self.cluster, self.ns, self.delay = cluster, ns, delay
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            try:
                if self.delay:
                    self.stop.wait(self.delay)
                ready_all(self.cluster, self.ns)
            except Exception:  # noqa: BLE001 - keep the stand-in kubelet alive
                pass
            self.stop.wait(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)


def replicaset(name: str, replicas: int, labels: dict | None = None) -> dict:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


# --- ReplicaSet -----------------------------------------------------------------------------------
def test_replicaset_creates_scales_and_reports_status(cluster):
    ns = "rs-basic"
    apply(cluster, ns_manifest(ns))
    rs = replicaset("front", 3)
    rs["metadata"]["namespace"] = ns
    apply(cluster, rs)
    created = wait_until(lambda: len(pods(cluster, ns)) == 3 and pods(cluster, ns), 30, what="3 pods")
    owner = get(cluster, f"/apis/apps/v1/namespaces/{ns}/replicasets/front")
    for p in created:
        assert p["metadata"]["name"].startswith("front-") and len(p["metadata"]["name"]) == len("front-") + 5
        assert p["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "front",
                                                     "uid": owner["metadata"]["uid"], "controller": True,
                                                     "blockOwnerDeletion": True}]
    # no double creation while caches catch up
    time.sleep(0.5)
    assert len(pods(cluster, ns)) == 3
    ready_all(cluster, ns)

    def status_ok():
        st = get(cluster, f"/apis/apps/v1/namespaces/{ns}/replicasets/front").get("status", {})
        return (st.get("replicas"), st.get("readyReplicas"), st.get("availableReplicas"),
                st.get("fullyLabeledReplicas"), st.get("observedGeneration")) == (3, 3, 3, 3, 1)
    wait_until(status_ok, 30, what="RS status")
    events = get(cluster, f"/api/v1/namespaces/{ns}/events")["items"]
    created_events = [e for e in events if e["reason"] == "SuccessfulCreate"]
    assert created_events and created_events[0]["source"]["component"] == "replicaset-controller"
    assert created_events[0]["involvedObject"]["kind"] == "ReplicaSet"
    # scale down: the not-ready pod goes first
    victim = pods(cluster, ns)[0]
    code, _ = cluster.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{victim['metadata']['name']}/status",
                              {"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
                              content_type="application/merge-patch+json")
    assert code == 200
    cluster.kubectl("scale", "-n", ns, "replicaset/front", "--replicas=2")
    left = wait_until(lambda: len(pods(cluster, ns)) == 2 and pods(cluster, ns), 30, what="scale down to 2")
    assert victim["metadata"]["name"] not in {p["metadata"]["name"] for p in left}
    # a deleted pod is replaced
    cluster.request("DELETE", f"/api/v1/namespaces/{ns}/pods/{left[0]['metadata']['name']}")
    wait_until(lambda: len(pods(cluster, ns)) == 2 and left[0]["metadata"]["name"] not in
               {p["metadata"]["name"] for p in pods(cluster, ns)}, 30, what="replacement pod")


def test_replicaset_adopts_orphan_and_releases(cluster):
    ns = "rs-adopt"
    apply(cluster, ns_manifest(ns))
    orphan = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray", "namespace": ns,
                                                              "labels": {"app": "adopt"}},
              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    apply(cluster, orphan)
    rs = replicaset("adopt", 2)
    rs["metadata"]["namespace"] = ns
    apply(cluster, rs)

    def adopted():
        pod = get(cluster, f"/api/v1/namespaces/{ns}/pods/stray")
        refs = pod["metadata"].get("ownerReferences") or []
        return refs and refs[0]["kind"] == "ReplicaSet" and refs[0]["name"] == "adopt" and refs[0]["controller"]
    wait_until(adopted, 30, what="adoption")
    wait_until(lambda: len(pods(cluster, ns)) == 2, 30, what="one more pod")
    time.sleep(0.3)
    assert len(pods(cluster, ns)) == 2
    # relabel: the RS releases the pod and makes a replacement
    cluster.kubectl("label", "-n", ns, "pod/stray", "app=other", "--overwrite")
    wait_until(lambda: not get(cluster, f"/api/v1/namespaces/{ns}/pods/stray")["metadata"].get("ownerReferences"),
               30, what="release")
    wait_until(lambda: len(pods(cluster, ns, "app%3Dadopt")) == 2, 30, what="replacement")


def test_replicationcontroller(cluster):
    ns = "rc-basic"
    apply(cluster, ns_manifest(ns))
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "old", "namespace": ns},
          "spec": {"replicas": 2, "selector": {"app": "old"},
                   "template": {"metadata": {"labels": {"app": "old"}},
                                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    apply(cluster, rc)
    got = wait_until(lambda: len(pods(cluster, ns)) == 2 and pods(cluster, ns), 30, what="2 pods")
    assert got[0]["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"
    ready_all(cluster, ns)
    wait_until(lambda: get(cluster, f"/api/v1/namespaces/{ns}/replicationcontrollers/old")
               .get("status", {}).get("readyReplicas") == 2, 30, what="RC ready")


# --- Deployment -----------------------------------------------------------------------------------
def deployment(name: str, ns: str, replicas: int = 3, image: str = "nginx:1.0", **spec) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}, **spec}}


def rs_list(cluster, ns: str) -> list[dict]:
    return get(cluster, f"/apis/apps/v1/namespaces/{ns}/replicasets")["items"]


def deploy_status(cluster, ns: str, name: str) -> dict:
    return get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/{name}").get("status", {})


def condition(status: dict, type_: str) -> dict:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def test_deployment_creates_replicaset_and_becomes_available(cluster):
    ns = "deploy-basic"
    apply(cluster, ns_manifest(ns))
    apply(cluster, deployment("web", ns))
    created = wait_until(lambda: len(pods(cluster, ns)) == 3 and pods(cluster, ns), 30, what="3 pods")
    rss = rs_list(cluster, ns)
    assert len(rss) == 1
    rs = rss[0]
    d = get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/web")
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    assert rs["metadata"]["ownerReferences"][0]["controller"] is True
    ann = rs["metadata"]["annotations"]
    assert ann["deployment.kubernetes.io/revision"] == "1"
    assert ann["deployment.kubernetes.io/desired-replicas"] == "3"
    assert ann["deployment.kubernetes.io/max-replicas"] == "4"
    for p in created:
        assert p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        assert p["metadata"]["labels"]["pod-template-hash"] == pod_hash
    assert condition(deploy_status(cluster, ns, "web"), "Progressing").get("reason") in (
        "NewReplicaSetCreated", "ReplicaSetUpdated", "FoundNewReplicaSet")
    ready_all(cluster, ns)
    done = cluster.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=30s")
    assert "successfully rolled out" in done.stdout
    st = deploy_status(cluster, ns, "web")
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (3, 3, 3, 3)
    assert condition(st, "Available")["reason"] == "MinimumReplicasAvailable"
    wait_until(lambda: condition(deploy_status(cluster, ns, "web"), "Progressing").get("reason")
               == "NewReplicaSetAvailable", 20, what="NewReplicaSetAvailable")
    events = get(cluster, f"/api/v1/namespaces/{ns}/events")["items"]
    assert any(e["reason"] == "ScalingReplicaSet" and e["message"] == f"Scaled up replica set {rs['metadata']['name']}"
               " to 3 from 0" for e in events), [e["message"] for e in events]


def test_deployment_rolling_update_undo_scale_and_delete(cluster):
    ns = "deploy-roll"
    apply(cluster, ns_manifest(ns))
    d = deployment("app", ns, replicas=4, strategy={"type": "RollingUpdate",
                                                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}})
    apply(cluster, d)
    with Kubelet(cluster, ns):
        cluster.kubectl("rollout", "status", "-n", ns, "deployment/app", "--timeout=40s")
        first = rs_list(cluster, ns)
        assert len(first) == 1
        # roll to a new image, watching the bounds: at most 4+1 pods, at least 4-1 ready
        peak = {"pods": 0, "min_ready": 99}
        stop = threading.Event()

        def observe():
            while not stop.is_set():
                items = rs_list(cluster, ns)
                total = sum(rs["spec"]["replicas"] for rs in items)
                # the pods themselves, in one consistent list: summing two ReplicaSets' statuses
                # mixes moments (one status may not yet show a pod the other already gave up)
                ready = sum(1 for p in pods(cluster, ns) if any(
                    c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", [])))
                peak["pods"] = max(peak["pods"], total)
                peak["min_ready"] = min(peak["min_ready"], ready)
                stop.wait(0.02)
        watcher = threading.Thread(target=observe, daemon=True)
        watcher.start()
        cluster.kubectl("set", "image", "-n", ns, "deployment/app", "web=nginx:2.0")
        cluster.kubectl("rollout", "status", "-n", ns, "deployment/app", "--timeout=50s")
        stop.set()
        watcher.join(5)
        assert peak["pods"] <= 5, peak
        assert peak["min_ready"] >= 3, peak
        rss = rs_list(cluster, ns)
        assert len(rss) == 2
        new = next(rs for rs in rss if rs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2.0")
        old = next(rs for rs in rss if rs is not new)
        assert new["spec"]["replicas"] == 4 and old["spec"]["replicas"] == 0
        assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        assert all(p["spec"]["containers"][0]["image"] == "nginx:2.0" for p in pods(cluster, ns))
        history = cluster.kubectl("rollout", "history", "-n", ns, "deployment/app").stdout
        assert "1 " in history and "2 " in history, history
        # undo returns to the first template (revision 3 reuses the first ReplicaSet)
        cluster.kubectl("rollout", "undo", "-n", ns, "deployment/app")
        cluster.kubectl("rollout", "status", "-n", ns, "deployment/app", "--timeout=50s")
        d_now = get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/app")
        assert d_now["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.0"
        back = get(cluster, f"/apis/apps/v1/namespaces/{ns}/replicasets/{old['metadata']['name']}")
        assert back["spec"]["replicas"] == 4
        assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
        assert d_now["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        wait_until(lambda: len(pods(cluster, ns)) == 4 and all(
            p["spec"]["containers"][0]["image"] == "nginx:1.0" for p in pods(cluster, ns)), 30, what="old pods back")
        # undo to a named revision
        cluster.kubectl("rollout", "undo", "-n", ns, "deployment/app", "--to-revision=2")
        cluster.kubectl("rollout", "status", "-n", ns, "deployment/app", "--timeout=50s")
        assert get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/app")["spec"]["template"]["spec"][
            "containers"][0]["image"] == "nginx:2.0"
        # restart makes a new ReplicaSet
        cluster.kubectl("rollout", "restart", "-n", ns, "deployment/app")
        wait_until(lambda: len(rs_list(cluster, ns)) == 3, 30, what="a third ReplicaSet")
        cluster.kubectl("rollout", "status", "-n", ns, "deployment/app", "--timeout=50s")
        # scale down deletes pods
        cluster.kubectl("scale", "-n", ns, "deployment/app", "--replicas=2")
        wait_until(lambda: len(pods(cluster, ns)) == 2, 30, what="2 pods")
        wait_until(lambda: deploy_status(cluster, ns, "app").get("replicas") == 2, 30, what="status replicas 2")
    # background delete: the garbage collector removes ReplicaSets and pods
    cluster.kubectl("delete", "-n", ns, "deployment/app", "--cascade=background")
    wait_until(lambda: not rs_list(cluster, ns) and not pods(cluster, ns), 40, what="GC of RSes and pods")


def test_deployment_recreate_paused_and_progress_deadline(cluster):
    ns = "deploy-recreate"
    apply(cluster, ns_manifest(ns))
    apply(cluster, deployment("batch", ns, replicas=2, strategy={"type": "Recreate"}, progressDeadlineSeconds=2))
    with Kubelet(cluster, ns):
        cluster.kubectl("rollout", "status", "-n", ns, "deployment/batch", "--timeout=30s")
        first = {p["metadata"]["name"] for p in pods(cluster, ns)}
        # paused: template changes make no new ReplicaSet, scaling still works
        cluster.kubectl("rollout", "pause", "-n", ns, "deployment/batch")
        wait_until(lambda: condition(deploy_status(cluster, ns, "batch"), "Progressing").get("reason")
                   == "DeploymentPaused", 20, what="DeploymentPaused")
        cluster.kubectl("set", "image", "-n", ns, "deployment/batch", "web=nginx:3.0")
        cluster.kubectl("scale", "-n", ns, "deployment/batch", "--replicas=3")
        wait_until(lambda: len(pods(cluster, ns)) == 3, 30, what="3 pods while paused")
        assert len(rs_list(cluster, ns)) == 1
        # resume: Recreate removes every old pod before any new one exists
        seen_mixed = []
        stop = threading.Event()

        def observe():
            while not stop.is_set():
                images = {p["spec"]["containers"][0]["image"] for p in pods(cluster, ns)}
                if len(images) > 1:
                    seen_mixed.append(images)
                stop.wait(0.02)
        watcher = threading.Thread(target=observe, daemon=True)
        watcher.start()
        cluster.kubectl("rollout", "resume", "-n", ns, "deployment/batch")
        cluster.kubectl("rollout", "status", "-n", ns, "deployment/batch", "--timeout=40s")
        stop.set()
        watcher.join(5)
        assert not seen_mixed, seen_mixed
        now_pods = pods(cluster, ns)
        assert len(now_pods) == 3 and not first & {p["metadata"]["name"] for p in now_pods}
    # no kubelet: the next rollout cannot progress and times out
    cluster.kubectl("set", "image", "-n", ns, "deployment/batch", "web=nginx:4.0")
    wait_until(lambda: condition(deploy_status(cluster, ns, "batch"), "Progressing").get("reason")
               == "ProgressDeadlineExceeded", 30, what="ProgressDeadlineExceeded")
    out = cluster.kubectl("rollout", "status", "-n", ns, "deployment/batch", "--timeout=10s", check=False)
    assert out.returncode != 0 and "exceeded its progress deadline" in out.stderr, out


def test_leader_lease_and_event_aggregation(cluster):
    lease = wait_until(lambda: cluster.request("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/"
                                                      "kube-controller-manager")[1].get("spec"), 20, what="lease")
    assert lease["holderIdentity"] and lease["leaseDurationSeconds"] == 15
    assert lease["acquireTime"] and lease["renewTime"]
    ns = "rs-events"
    apply(cluster, ns_manifest(ns))
    rs = replicaset("agg", 0)
    rs["metadata"]["namespace"] = ns
    apply(cluster, rs)
    obj = get(cluster, f"/apis/apps/v1/namespaces/{ns}/replicasets/agg")
    obj.update(apiVersion="apps/v1", kind="ReplicaSet")

    async def record():
        client = RESTClient.from_kubeconfig(cluster.kubeconfig)
        try:
            recorder = EventRecorder(client, "test-controller")
            first = await recorder.emit(obj, "Warning", "FailedCreate", "Error creating: quota")
            second = await recorder.emit(obj, "Warning", "FailedCreate", "Error creating: quota")
            other = await recorder.emit(obj, "Normal", "SuccessfulCreate", "Created pod: x")
            return first, second, other
        finally:
            await client.close()
    first, second, other = asyncio.run(record())
    assert first["metadata"]["name"] == second["metadata"]["name"] != other["metadata"]["name"]
    assert first["metadata"]["name"].startswith("agg.")
    evs = [e for e in get(cluster, f"/api/v1/namespaces/{ns}/events")["items"] if e["reason"] == "FailedCreate"]
    assert len(evs) == 1 and evs[0]["count"] == 2 and evs[0]["type"] == "Warning"
    ref = evs[0]["involvedObject"]
    assert (ref["kind"], ref["apiVersion"], ref["name"], ref["namespace"], ref["uid"]) == (
        "ReplicaSet", "apps/v1", "agg", ns, obj["metadata"]["uid"])
    assert evs[0]["source"]["component"] == evs[0]["reportingComponent"] == "test-controller"


def test_leader_election_takeover_and_loss(cluster):
    from kybernetes.client.leaderelection import LeaderElector

    async def scenario():
        client = RESTClient.from_kubeconfig(cluster.kubeconfig)
        stop = asyncio.Event()
        log = []

        async def lead(name, leading_stop):
            log.append(("start", name))
            await leading_stop.wait()
            log.append(("stop", name))
        fast = {"lease_duration": 1.5, "renew_deadline": 1.0, "retry_period": 0.2}
        a = LeaderElector(client, "default", "test-lock", "a", **fast)
        b = LeaderElector(client, "default", "test-lock", "b", **fast)
        try:
            task_a = asyncio.create_task(a.run(stop, lambda s: lead("a", s)))
            await asyncio.sleep(0.5)
            task_b = asyncio.create_task(b.run(stop, lambda s: lead("b", s)))
            await asyncio.sleep(1.0)
            assert log == [("start", "a")] and a.leading and not b.leading
            lease = await client.get("coordination.k8s.io", "v1", "leases", "test-lock", "default")
            assert lease["spec"]["holderIdentity"] == "a" and lease["spec"]["leaseTransitions"] == 0
            # someone else grabs the lock: a cannot renew, stops leading within the renew deadline
            lease["spec"].update(holderIdentity="intruder", leaseDurationSeconds=1)
            await client.update("coordination.k8s.io", "v1", "leases", lease, "default")
            await asyncio.wait_for(task_a, 5)
            assert ("stop", "a") in log
            # the intruder never renews: b takes over once its lease has run out
            for _ in range(50):
                if b.leading:
                    break
                await asyncio.sleep(0.1)
            assert b.leading and ("start", "b") in log
            lease = await client.get("coordination.k8s.io", "v1", "leases", "test-lock", "default")
            assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] >= 1
            stop.set()
            await asyncio.wait_for(task_b, 5)
            released = await client.get("coordination.k8s.io", "v1", "leases", "test-lock", "default")
            assert released["spec"].get("holderIdentity", "") == ""
        finally:
            stop.set()
            await client.close()
    asyncio.run(scenario())
