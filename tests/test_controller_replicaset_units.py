"""ReplicaSet controller, habit 3: seeded caches, `reconcile` called directly, writes checked.

Upstream reference: pkg/controller/replicaset/replica_set_test.go (TestSyncReplicaSetCreateFailures,
TestSyncReplicaSetDormancy, TestDeleteControllerAndExpectations, TestPatchPodWithOtherOwnerRef, ...).
"""

from __future__ import annotations

from kybernetes.controllers.replicaset import ReplicaSetController

from .controller_units import CONTAINER, Harness, ready_status, run, server_fixture

server = server_fixture()


def _rs(name: str, replicas: int, labels: dict | None = None, **spec) -> dict:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": {**labels, "tier": "web"}},
                                  "spec": {"containers": [CONTAINER]}}, **spec}}


def _pod(name: str, labels: dict, owner: dict | None = None, node: str = "", **meta) -> dict:
    metadata = {"name": name, "labels": labels, **meta}
    if owner is not None:
        metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner.get("kind", "ReplicaSet"),
                                        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                        "controller": True, "blockOwnerDeletion": True}]
    spec = {"containers": [CONTAINER], **({"nodeName": node} if node else {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


async def _setup(h: Harness, ctrl: ReplicaSetController, rs: dict, *pods: tuple[dict, dict | None]):
    """Create the ReplicaSet and pods (pod, status) through the API and seed the caches with them."""
    rs = await h.setup("apps", "v1", "replicasets", rs)
    h.seed(ctrl.owners, rs)
    out = []
    for pod, status in pods:
        p = await h.setup("", "v1", "pods", pod, status=status)
        h.seed(ctrl.pods, p)
        out.append(p)
    return rs, out


def test_creates_missing_pods_once_then_waits_for_the_cache(server):
    async def go():
        async with Harness(server) as h:
            ctrl = h.controller(ReplicaSetController)
            rs, _ = await _setup(h, ctrl, _rs("web", 3))
            await h.reconcile(ctrl, "web")
            creates = h.writes("pods", "create")
            assert len(creates) == 3
            for a in creates:
                meta = a.body["metadata"]
                assert meta["generateName"] == "web-" and meta["labels"] == {"app": "web", "tier": "web"}
                assert meta["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                                    "uid": rs["metadata"]["uid"], "controller": True,
                                                    "blockOwnerDeletion": True}]
            assert sorted(h.events()) == sorted(("SuccessfulCreate", f"Created pod: {a.name}") for a in creates)
            assert ctrl.expectations.pending(f"{h.ns}/web") == (3, 0)
            await h.observe(ctrl.owners, "replicasets")  # the status write (observedGeneration) reaches the cache

            # the cache has not seen the pods yet: expectations hold the next sync back from creating again
            await h.reconcile(ctrl, "web")
            assert h.writes("pods") == []

            # the pods arrive in the cache: expectations are met, nothing more to create, status counts them
            h.seed(ctrl.pods, *(a.result for a in creates))
            assert ctrl.expectations.satisfied(f"{h.ns}/web")
            await h.reconcile(ctrl, "web")
            assert h.writes("pods") == []
            [status] = h.writes("replicasets", "update", "status")
            assert status.result["status"]["replicas"] == 3 and status.result["status"]["readyReplicas"] == 0
            assert status.result["status"]["fullyLabeledReplicas"] == 3
    run(go())


def test_scale_down_deletes_unscheduled_pending_and_not_ready_pods_first(server):
    async def go():
        async with Harness(server) as h:
            ctrl = h.controller(ReplicaSetController)
            rs = await h.setup("apps", "v1", "replicasets", _rs("web", 5))
            h.seed(ctrl.owners, rs)
            labels = {"app": "web"}
            specs = [("ready-a", "n1", ready_status()), ("ready-b", "n2", ready_status()),
                     ("unscheduled", "", {"phase": "Pending"}), ("pending", "n2", {"phase": "Pending"}),
                     ("not-ready", "n1", ready_status(False))]
            for name, node, status in specs:
                h.seed(ctrl.pods, await h.setup("", "v1", "pods", _pod(name, labels, rs, node), status=status))
            await h.reconcile(ctrl, "web")
            assert h.writes("pods") == []  # five pods for five replicas
            await h.observe(ctrl.owners, "replicasets")

            rs = await h.client.patch("apps", "v1", "replicasets", "web", {"spec": {"replicas": 2}}, h.ns)
            h.seed(ctrl.owners, rs)
            await h.reconcile(ctrl, "web")
            deletes = h.writes("pods", "delete")
            assert sorted(a.name for a in deletes) == ["not-ready", "pending", "unscheduled"]
            for a in deletes:  # guarded by uid, as upstream's DeletePod with preconditions
                assert a.body == {"preconditions": {"uid": ctrl.pods.get(f"{h.ns}/{a.name}")["metadata"]["uid"]}}
            assert ctrl.expectations.pending(f"{h.ns}/web") == (0, 3)
            assert ("SuccessfulDelete", "Deleted pod: unscheduled") in h.events()
            # bound pods wait for their kubelet (graceful deletion); the unbound one goes at once
            left = {p["metadata"]["name"] for p in (await h.client.list("", "v1", "pods", h.ns))["items"]
                    if not p["metadata"].get("deletionTimestamp")}
            assert left == {"ready-a", "ready-b"}

            # the deletions are not observed yet: no further action
            await h.reconcile(ctrl, "web")
            assert h.writes("pods") == []
    run(go())


def test_scale_down_prefers_a_lower_pod_deletion_cost(server):
    async def go():
        async with Harness(server) as h:
            ctrl = h.controller(ReplicaSetController)
            labels = {"app": "web"}
            rs = await h.setup("apps", "v1", "replicasets", _rs("web", 2))
            h.seed(ctrl.owners, rs)
            cost = "controller.kubernetes.io/pod-deletion-cost"
            for name, node, value in (("dear", "n1", "10"), ("cheap", "n2", "-5"), ("plain", "n3", "0")):
                pod = _pod(name, labels, rs, node, annotations={cost: value})
                h.seed(ctrl.pods, await h.setup("", "v1", "pods", pod, status=ready_status()))
            await h.reconcile(ctrl, "web")
            assert [a.name for a in h.writes("pods", "delete")] == ["cheap"]
    run(go())


def test_scale_down_prefers_pods_on_nodes_crowded_with_the_deployments_other_pods(server):
    async def go():
        async with Harness(server) as h:
            ctrl = h.controller(ReplicaSetController)
            deployment = {"kind": "Deployment", "metadata": {"name": "web", "uid": "0d0d0d0d-0000-4000-8000-000000000001"}}
            ref = _pod("x", {}, deployment)["metadata"]["ownerReferences"][0]
            old = _rs("web-old", 1, {"app": "web", "pod-template-hash": "old"})
            new = _rs("web-new", 2, {"app": "web", "pod-template-hash": "new"})
            old["metadata"]["ownerReferences"] = new["metadata"]["ownerReferences"] = [ref]
            old = await h.setup("apps", "v1", "replicasets", old)
            new = await h.setup("apps", "v1", "replicasets", new)
            h.seed(ctrl.owners, old, new)
            pods = [_pod("new-a", new["spec"]["selector"]["matchLabels"], new, "n2"),
                    _pod("new-b", new["spec"]["selector"]["matchLabels"], new, "n2"),
                    _pod("old-n1", old["spec"]["selector"]["matchLabels"], old, "n1"),
                    _pod("old-n2", old["spec"]["selector"]["matchLabels"], old, "n2")]
            restarted = {**ready_status(), "containerStatuses": [{"name": "c", "ready": True, "restartCount": 3,
                                                                   "image": "busybox", "imageID": ""}]}
            for pod in pods:
                status = restarted if pod["metadata"]["name"] == "old-n1" else ready_status()
                h.seed(ctrl.pods, await h.setup("", "v1", "pods", pod, status=status))
            await h.reconcile(ctrl, "web-old")
            # upstream ranks by the pods of every ReplicaSet of the same Deployment: n2 holds three, which
            # outranks old-n1's restarts (a later criterion)
            assert [a.name for a in h.writes("pods", "delete")] == ["old-n2"]
    run(go())


def test_adopts_matching_orphans_and_leaves_other_pods_alone(server):
    async def go():
        async with Harness(server) as h:
            ctrl = h.controller(ReplicaSetController)
            other = await h.setup("apps", "v1", "replicasets", _rs("other", 0, {"app": "other"}))
            rs, (orphan, _, _, _) = await _setup(
                h, ctrl, _rs("web", 2),
                (_pod("orphan", {"app": "web", "extra": "x"}), ready_status()),
                (_pod("stranger", {"app": "db"}), None),
                (_pod("owned-elsewhere", {"app": "web"}, other), None),
                (_pod("finished", {"app": "web"}), {"phase": "Succeeded"}))
            await h.reconcile(ctrl, "web")
            [adopt] = h.writes("pods", "patch")
            assert adopt.name == "orphan"
            assert adopt.body["metadata"]["ownerReferences"] == [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"],
                "controller": True, "blockOwnerDeletion": True}]
            assert adopt.body["metadata"]["resourceVersion"] == orphan["metadata"]["resourceVersion"]
            # the adopted pod counts: one more for two replicas (succeeded pods are not active)
            assert len(h.writes("pods", "create")) == 1
            [status] = h.writes("replicasets", "update", "status")
            assert status.body["status"]["replicas"] == 1 and status.body["status"]["readyReplicas"] == 1
            # fullyLabeled: the orphan lacks the template's tier=web label
            assert status.body["status"]["fullyLabeledReplicas"] == 0
            live = await h.get("", "v1", "pods", "owned-elsewhere")
            assert live["metadata"]["ownerReferences"][0]["uid"] == other["metadata"]["uid"]
    run(go())


def test_no_adoption_when_the_owner_in_the_cache_is_stale(server):
    async def go():
        async with Harness(server) as h:
            ctrl = h.controller(ReplicaSetController)
            rs, _ = await _setup(h, ctrl, _rs("web", 1), (_pod("orphan", {"app": "web"}), None))
            # the ReplicaSet was deleted and recreated under the same name: the cached uid is gone
            await h.client.delete("apps", "v1", "replicasets", "web", h.ns)
            await h.setup("apps", "v1", "replicasets", _rs("web", 1))
            await h.reconcile(ctrl, "web")
            assert h.writes("pods", "patch") == []
    run(go())


def test_releases_pods_the_selector_no_longer_matches_and_replaces_them(server):
    async def go():
        async with Harness(server) as h:
            ctrl = h.controller(ReplicaSetController)
            rs = await h.setup("apps", "v1", "replicasets", _rs("web", 1))
            h.seed(ctrl.owners, rs)
            relabeled = await h.setup("", "v1", "pods", _pod("relabeled", {"app": "debug"}, rs),
                                      status=ready_status())
            h.seed(ctrl.pods, relabeled)
            await h.reconcile(ctrl, "web")
            [release] = h.writes("pods", "patch")
            assert release.name == "relabeled" and release.body["metadata"]["ownerReferences"] == []
            assert not (await h.get("", "v1", "pods", "relabeled"))["metadata"].get("ownerReferences")
            assert len(h.writes("pods", "create")) == 1
    run(go())


def test_terminating_and_failed_pods_are_not_counted(server):
    async def go():
        async with Harness(server) as h:
            ctrl = h.controller(ReplicaSetController)
            rs = await h.setup("apps", "v1", "replicasets", _rs("web", 2))
            h.seed(ctrl.owners, rs)
            failed = await h.setup("", "v1", "pods", _pod("failed", {"app": "web"}, rs), status={"phase": "Failed"})
            going = await h.setup("", "v1", "pods", _pod("going", {"app": "web"}, rs), status=ready_status())
            going = {**going, "metadata": {**going["metadata"], "deletionTimestamp": "2024-01-01T00:00:00Z"}}
            h.seed(ctrl.pods, failed, going)
            await h.reconcile(ctrl, "web")
            assert len(h.writes("pods", "create")) == 2
            assert h.writes("pods", "delete") == []
    run(go())


def test_min_ready_seconds_counts_available_later_and_requeues(server):
    import datetime

    from kybernetes.api.meta import rfc3339

    async def go():
        async with Harness(server) as h:
            ctrl = h.controller(ReplicaSetController)
            rs = await h.setup("apps", "v1", "replicasets", _rs("web", 2, minReadySeconds=30))
            h.seed(ctrl.owners, rs)
            just = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=10)
            for name, since in (("old", "2024-01-01T00:00:00Z"), ("new", rfc3339(just))):
                pod = await h.setup("", "v1", "pods", _pod(name, {"app": "web"}, rs), status=ready_status(since=since))
                h.seed(ctrl.pods, pod)
            after = await h.reconcile(ctrl, "web")
            [status] = h.writes("replicasets", "update", "status")
            assert status.body["status"]["readyReplicas"] == 2 and status.body["status"]["availableReplicas"] == 1
            assert after is not None and 15 < after < 21  # when "new" becomes available
    run(go())


def test_create_failure_sets_replica_failure_condition(server):
    async def go():
        async with Harness(server) as h:
            ctrl = h.controller(ReplicaSetController)
            bad = _rs("web", 1)
            rs = await h.setup("apps", "v1", "replicasets", bad)
            # a template the pod validation rejects (the ReplicaSet was stored before this change)
            rs["spec"]["template"]["spec"]["containers"] = [{"name": "BAD NAME", "image": "busybox"}]
            h.seed(ctrl.owners, rs)
            try:
                await h.reconcile(ctrl, "web")
            except Exception as e:  # noqa: BLE001 - the loop would retry this key with backoff
                assert getattr(e, "code", None) == 422
            else:
                raise AssertionError("the failed create was not reported to the loop")
            [create] = h.writes("pods", "create")
            assert create.result is None
            [status] = h.writes("replicasets", "update", "status")
            [cond] = status.body["status"]["conditions"]
            assert cond["type"] == "ReplicaFailure" and cond["reason"] == "FailedCreate"
            assert any(r == "FailedCreate" for r, _ in h.events())
            # the failed creation counts as observed: the next sync tries again
            assert ctrl.expectations.satisfied(f"{h.ns}/web")
    run(go())
