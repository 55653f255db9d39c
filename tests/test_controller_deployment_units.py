"""Deployment controller, habit 3: seeded caches, `reconcile` called directly, writes checked.

No ReplicaSet controller runs: between syncs the test plays it, writing each ReplicaSet's
status as if its pods had come up. Upstream reference: pkg/controller/deployment
(rolling_test.go TestDeploymentController_reconcileNewReplicaSet/reconcileOldReplicaSets,
recreate_test.go, sync_test.go TestScale, util/deployment_util_test.go).
"""

from __future__ import annotations

from kybernetes.controllers.deployment import DeploymentController
from kybernetes.controllers.deployment import util as dutil

from .controller_units import CONTAINER, Harness, run, server_fixture

server = server_fixture()

REV = "deployment.kubernetes.io/revision"


def _deployment(name: str, replicas: int, image: str = "busybox", strategy: dict | None = None, **spec) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "strategy": strategy or {"type": "RollingUpdate"},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{**CONTAINER, "image": image}]}}, **spec}}


def _rolling(surge, unavailable) -> dict:
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}


class World:
    """The controller plus the parts of the cluster the test plays (ReplicaSet controller, kubectl)."""

    def __init__(self, h: Harness):
        self.h = h
        self.ctrl = h.controller(DeploymentController)

    async def create(self, d: dict) -> dict:
        d = await self.h.setup("apps", "v1", "deployments", d)
        self.h.seed(self.ctrl.deployments, d)
        return d

    async def edit(self, name: str, patch: dict) -> dict:
        """A user's change (kubectl set image / scale / rollout pause): through the API, then into the cache."""
        self.h.client.recording = False
        try:
            d = await self.h.client.patch("apps", "v1", "deployments", name, patch, self.h.ns)
        finally:
            self.h.client.recording = True
        self.h.seed(self.ctrl.deployments, d)
        return d

    async def sync(self, name: str) -> float | None:
        after = await self.h.reconcile(self.ctrl, name)
        await self.h.observe(self.ctrl.deployments, "deployments")
        await self.h.observe(self.ctrl.replicasets, "replicasets")
        return after

    def rss(self) -> list[dict]:
        """This test's ReplicaSets, oldest revision first (creation times tie within a second)."""
        return sorted((rs for rs in self.ctrl.replicasets.list() if rs["metadata"]["namespace"] == self.h.ns),
                      key=lambda rs: (dutil.revision(rs), dutil.created(rs)))

    def sizes(self) -> dict[str, int]:
        return {rs["metadata"]["name"]: dutil.replicas(rs) for rs in self.rss()}

    async def pods_come_up(self, unavailable: set[str] = frozenset()) -> None:
        """Play the ReplicaSet controller and kubelets: every ReplicaSet has its pods, ready and available
        unless its uid is in `unavailable`."""
        for rs in self.rss():
            n = dutil.replicas(rs)
            ok = n if rs["metadata"]["uid"] not in unavailable else 0
            status = {"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": ok, "availableReplicas": ok,
                      "observedGeneration": rs["metadata"].get("generation", 1)}
            if rs.get("status") != status:
                self.h.seed(self.ctrl.replicasets, await self.h.set_status("apps", "v1", "replicasets", rs, status))

    def deployment(self, name: str) -> dict:
        return self.ctrl.deployments.get(f"{self.h.ns}/{name}")

    async def running(self, d: dict) -> dict:
        """Create a Deployment and let its first ReplicaSet's pods come up."""
        name = d["metadata"]["name"]
        d = await self.create(d)
        await self.sync(name)
        await self.pods_come_up()
        await self.sync(name)
        return d

    async def set_image(self, name: str, image: str) -> None:
        """`kubectl set image`, then one sync."""
        await self.edit(name, {"spec": {"template": {"spec": {"containers": [{**CONTAINER, "image": image}]}}}})
        await self.sync(name)


def test_new_deployment_creates_its_replicaset_with_revision_and_replica_annotations(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            d = await w.create(_deployment("web", 4, strategy=_rolling(1, 1)))
            await w.sync("web")
            [create] = h.writes("replicasets", "create")
            rs = create.result
            pod_hash = dutil.compute_hash(d["spec"]["template"], None)
            assert rs["metadata"]["name"] == f"web-{pod_hash}"
            assert rs["spec"]["replicas"] == 4
            assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
            assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod_hash}
            ann = rs["metadata"]["annotations"]
            assert ann[REV] == "1"
            assert ann["deployment.kubernetes.io/desired-replicas"] == "4"
            assert ann["deployment.kubernetes.io/max-replicas"] == "5"
            [ref] = rs["metadata"]["ownerReferences"]
            assert ref["kind"] == "Deployment" and ref["uid"] == d["metadata"]["uid"] and ref["controller"]
            [patch] = h.writes("deployments", "patch")
            assert patch.body == {"metadata": {"annotations": {REV: "1"}}}
            progressing = dutil.get_condition(w.deployment("web")["status"], "Progressing")
            assert progressing["reason"] == "NewReplicaSetCreated"
            assert ("ScalingReplicaSet", f"Scaled up replica set web-{pod_hash} to 4 from 0") in h.events()

            # once the pods are available the rollout is complete
            await w.pods_come_up()
            await w.sync("web")
            status = w.deployment("web")["status"]
            assert (status["replicas"], status["updatedReplicas"], status["availableReplicas"]) == (4, 4, 4)
            assert dutil.get_condition(status, "Progressing")["reason"] == "NewReplicaSetAvailable"
            assert dutil.get_condition(status, "Available")["status"] == "True"
            assert h.writes("replicasets") == []
    run(go())


async def _roll(w: World, name: str, image: str) -> list[tuple[int, int]]:
    """Change the image, then sync until the rollout settles; (new, old) sizes after each sync that scaled."""
    d = await w.edit(name, {"spec": {"template": {"spec": {"containers": [{**CONTAINER, "image": image}]}}}})
    want = dutil.replicas(d)
    surge, unavailable = dutil.max_surge(d), dutil.max_unavailable(d)
    steps = []
    for _ in range(20):
        await w.sync(name)
        rss = w.rss()
        new = dutil.find_new_rs(w.deployment(name), rss)
        old = [rs for rs in rss if rs is not new]
        # the fenceposts hold after every decision, counting only pods that were available before it
        assert dutil.total_replicas(rss) <= want + surge, w.sizes()
        available_kept = sum(min(dutil.replicas(rs), dutil.status_of(rs, "availableReplicas")) for rs in rss)
        assert available_kept >= want - unavailable, w.sizes()
        sizes = (dutil.replicas(new), dutil.total_replicas(old))
        if not steps or steps[-1] != sizes:
            steps.append(sizes)
        await w.pods_come_up()
        if sizes == (want, 0) and w.h.writes("replicasets") == []:
            return steps
    raise AssertionError(f"rollout never settled: {steps}")


def test_rolling_update_scales_within_max_surge_and_max_unavailable(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.running(_deployment("web", 4, strategy=_rolling(1, 1)))
            # upstream's sequence for 4 replicas, surge 1, unavailable 1, pods available at once
            assert await _roll(w, "web", "busybox:2") == [(1, 3), (2, 3), (2, 1), (4, 1), (4, 0)]
            rss = w.rss()
            assert [rs["metadata"]["annotations"][REV] for rs in rss] == ["1", "2"]
            assert w.deployment("web")["metadata"]["annotations"][REV] == "2"
    run(go())


def test_rolling_update_with_zero_unavailable_only_surges(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.running(_deployment("web", 3, strategy=_rolling(1, 0)))
            assert await _roll(w, "web", "busybox:2") == [(1, 3), (1, 2), (2, 2), (2, 1), (3, 1), (3, 0)]
    run(go())


def test_rolling_update_stops_while_new_pods_are_unavailable(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.running(_deployment("web", 4, strategy=_rolling("25%", "25%")))
            await w.set_image("web", "v2")
            new = dutil.find_new_rs(w.deployment("web"), w.rss())
            broken = {new["metadata"]["uid"]}

            def sizes():
                new = next(rs for rs in w.rss() if rs["metadata"]["uid"] in broken)
                return dutil.replicas(new), sum(dutil.replicas(rs) for rs in w.rss() if rs is not new)

            assert sizes() == (1, 3)
            await w.pods_come_up(unavailable=broken)  # the new pods never become ready
            await w.sync("web")
            assert sizes() == (2, 3)  # surge: 5 in all
            for _ in range(3):
                await w.pods_come_up(unavailable=broken)
                await w.sync("web")
                # 3 old available = 4 - maxUnavailable, 2 new unavailable: neither side may move
                assert h.writes("replicasets") == [] and sizes() == (2, 3)
            cond = dutil.get_condition(w.deployment("web")["status"], "Available")
            assert cond["status"] == "True"  # 3 available >= 4 - 1
    run(go())


def test_rolling_update_does_not_trust_the_stale_status_of_an_old_replicaset_it_just_scaled_down(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.running(_deployment("web", 4, strategy=_rolling(1, 1)))
            await w.set_image("web", "v2")
            new = dutil.find_new_rs(w.deployment("web"), w.rss())
            [old] = [rs for rs in w.rss() if rs is not new]
            assert (dutil.replicas(new), dutil.replicas(old)) == (1, 3)
            # the old ReplicaSet's status still says 4 available: its controller has not caught up

            async def new_pods(replicas: int, available: int) -> None:
                rs = w.ctrl.replicasets.get(f"{h.ns}/{new['metadata']['name']}")
                status = {"replicas": replicas, "readyReplicas": available, "availableReplicas": available,
                          "observedGeneration": rs["metadata"]["generation"]}
                h.seed(w.ctrl.replicasets, await h.set_status("apps", "v1", "replicasets", rs, status))

            await new_pods(1, 1)
            await w.sync("web")
            new, old = (w.ctrl.replicasets.get(f"{h.ns}/{rs['metadata']['name']}") for rs in (new, old))
            assert (dutil.replicas(new), dutil.replicas(old)) == (2, 3)
            assert dutil.status_of(old, "availableReplicas") == 4
            await new_pods(2, 1)
            await w.sync("web")
            old = w.ctrl.replicasets.get(f"{h.ns}/{old['metadata']['name']}")
            # 3 old pods stay + 1 new available = 4: one more may go, not two (upstream's
            # arithmetic on the stale 4 would leave 1 old + 1 new = 2 ready, below 4 - maxUnavailable)
            assert dutil.replicas(old) == 2, w.sizes()
    run(go())


def test_recreate_scales_old_to_zero_and_waits_for_their_pods_before_creating_new(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.running(_deployment("web", 3, strategy={"type": "Recreate"}))
            [old] = w.rss()
            # a pod of the old ReplicaSet, still in the pod cache
            pod = await h.setup("", "v1", "pods", {"metadata": {
                "name": "old-pod", "labels": {"app": "web"}, "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": old["metadata"]["name"],
                    "uid": old["metadata"]["uid"], "controller": True}]},
                "spec": {"containers": [CONTAINER]}}, status={"phase": "Running"})
            h.seed(w.ctrl.pods, pod)

            await w.set_image("web", "v2")
            [scale] = h.writes("replicasets")
            assert scale.verb == "update" and scale.name == old["metadata"]["name"] and scale.body["spec"]["replicas"] == 0
            # the old ReplicaSet still reports replicas: no new ReplicaSet yet
            await w.sync("web")
            assert h.writes("replicasets") == []
            await w.pods_come_up()  # status.replicas of the old one drops to 0, but its pod is still running
            await w.sync("web")
            assert h.writes("replicasets") == []
            h.unseed(w.ctrl.pods, pod)  # the pod is gone
            await w.sync("web")
            [create] = h.writes("replicasets", "create")
            assert create.result["spec"]["replicas"] == 3
            assert create.result["metadata"]["annotations"][REV] == "2"
    run(go())


def test_rollback_reuses_the_old_replicaset_and_moves_its_revision_to_the_top(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.running(_deployment("web", 2, strategy=_rolling(1, 0), revisionHistoryLimit=5))
            await _roll(w, "web", "v2")
            first, second = w.rss()
            assert (first["metadata"]["annotations"][REV], second["metadata"]["annotations"][REV]) == ("1", "2")

            # `kubectl rollout undo`: the template goes back to revision 1's
            steps = await _roll(w, "web", "busybox")
            assert steps[-1] == (2, 0)
            assert len(w.rss()) == 2  # no third ReplicaSet
            first = next(rs for rs in w.rss() if rs["metadata"]["uid"] == first["metadata"]["uid"])
            ann = first["metadata"]["annotations"]
            assert ann[REV] == "3" and ann["deployment.kubernetes.io/revision-history"] == "1"
            assert dutil.replicas(first) == 2
            assert w.deployment("web")["metadata"]["annotations"][REV] == "3"
    run(go())


def test_paused_deployment_does_not_roll_but_still_scales(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.running(_deployment("web", 2))
            [rs] = w.rss()

            await w.edit("web", {"spec": {"paused": True}})
            await w.sync("web")
            cond = dutil.get_condition(w.deployment("web")["status"], "Progressing")
            assert (cond["status"], cond["reason"]) == ("Unknown", "DeploymentPaused")

            await w.set_image("web", "v2")
            assert h.writes("replicasets") == []  # no rollout while paused

            await w.edit("web", {"spec": {"replicas": 5}})
            await w.sync("web")
            [scale] = h.writes("replicasets")
            assert scale.name == rs["metadata"]["name"] and scale.body["spec"]["replicas"] == 5
            assert scale.body["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "5"

            await w.edit("web", {"spec": {"paused": False}})
            await w.sync("web")
            cond = dutil.get_condition(w.deployment("web")["status"], "Progressing")
            assert cond["reason"] in ("DeploymentResumed", "NewReplicaSetCreated", "ReplicaSetUpdated")
            [create] = h.writes("replicasets", "create")  # resumed: the rollout starts
            assert create.result["metadata"]["annotations"][REV] == "2"
    run(go())


def test_scaling_mid_rollout_is_proportional(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.running(_deployment("web", 10, strategy=_rolling(3, 2)))
            await w.set_image("web", "v2")  # new gets the 3 surge pods, old goes down by maxUnavailable
            new = dutil.find_new_rs(w.deployment("web"), w.rss())
            old = next(rs for rs in w.rss() if rs is not new)
            before = (dutil.replicas(new), dutil.replicas(old))
            assert before == (3, 8)

            await w.edit("web", {"spec": {"replicas": 20}})
            await w.sync("web")
            sizes = {a.name: a.body["spec"]["replicas"] for a in h.writes("replicasets", "update")}
            # 23 allowed (20 + surge 3), 11 there, 12 to add in proportion to the max-replicas annotation
            # (13): old 8*23/13 -> 14 (+6), new 3*23/13 -> 5 (+2); the rest (4) goes to the largest
            assert sizes == {old["metadata"]["name"]: 18, new["metadata"]["name"]: 5}
            for a in h.writes("replicasets", "update"):
                assert a.body["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "20"
                assert a.body["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "23"
    run(go())


def test_revision_history_limit_deletes_the_oldest_scaled_down_replicasets(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.running(_deployment("web", 1, strategy=_rolling(1, 0), revisionHistoryLimit=1))
            first = w.rss()[0]["metadata"]["name"]
            deleted = []
            for image in ("v2", "v3"):
                d = await w.edit("web", {"spec": {"template": {"spec": {"containers": [{**CONTAINER, "image": image}]}}}})
                for _ in range(10):
                    await w.sync("web")
                    deleted += [a.name for a in h.writes("replicasets", "delete")]
                    await w.pods_come_up()
                    # settled: complete, and a sync that writes nothing (the status write of the sync that
                    # completed the rollout queues one more, which cleans up)
                    if dutil.deployment_complete(d, w.deployment("web")["status"]) and not h.writes():
                        break
            assert deleted == [first]  # rev 1 goes once two old ReplicaSets exist; rev 2 is kept (limit 1)
            assert sorted(rs["metadata"]["annotations"][REV] for rs in w.rss()) == ["2", "3"]
    run(go())
