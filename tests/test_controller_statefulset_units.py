"""StatefulSet controller, habit 3: seeded caches, `reconcile` called directly, writes checked.

No kubelet runs: the test plays it, writing pod status between syncs. Upstream reference:
pkg/controller/statefulset/stateful_set_control_test.go (CreatesPods, ScalesUp/Down,
OrderedReady vs Parallel, TestStatefulSetControlRollingUpdateWithPartition, ...).
"""

from __future__ import annotations

import datetime

from kybernetes.api.meta import rfc3339
from kybernetes.controllers.statefulset import StatefulSetController

from .controller_units import CONTAINER, Harness, ready_status, run, server_fixture

server = server_fixture()

HASH = "controller-revision-hash"


def _sts(name: str, replicas: int, **spec) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [CONTAINER]}}, **spec}}


class World:
    def __init__(self, h: Harness):
        self.h = h
        self.ctrl = h.controller(StatefulSetController)

    async def create(self, sts: dict) -> dict:
        sts = await self.h.setup("apps", "v1", "statefulsets", sts)
        self.h.seed(self.ctrl.sets, sts)
        return sts

    async def edit(self, name: str, patch: dict) -> dict:
        self.h.client.recording = False
        try:
            sts = await self.h.client.patch("apps", "v1", "statefulsets", name, patch, self.h.ns)
        finally:
            self.h.client.recording = True
        self.h.seed(self.ctrl.sets, sts)
        return sts

    async def sync(self, name: str) -> float | None:
        after = await self.h.reconcile(self.ctrl, name)
        for inf, plural in ((self.ctrl.sets, "statefulsets"), (self.ctrl.pods, "pods"),
                            (self.ctrl.revisions, "controllerrevisions"), (self.ctrl.claims, "persistentvolumeclaims")):
            await self.h.observe(inf, plural)
        return after

    def pods(self) -> dict[str, dict]:
        return {p["metadata"]["name"]: p for p in self.ctrl.pods.list() if p["metadata"]["namespace"] == self.h.ns}

    async def ready(self, name: str, ready: bool = True, since: str = "2024-01-01T00:00:00Z",
                    phase: str = "Running") -> None:
        pod = self.pods()[name]
        self.h.seed(self.ctrl.pods, await self.h.set_status("", "v1", "pods", pod, ready_status(ready, phase, since)))

    async def remove(self, name: str) -> None:
        """The pod is gone (its kubelet finished the graceful deletion)."""
        pod = self.pods()[name]
        self.h.client.recording = False
        try:
            await self.h.client.delete("", "v1", "pods", name, self.h.ns, gracePeriodSeconds=0)
        finally:
            self.h.client.recording = True
        self.h.unseed(self.ctrl.pods, pod)

    def created(self) -> list[str]:
        return [a.name for a in self.h.writes("pods", "create")]

    def deleted(self) -> list[str]:
        return [a.name for a in self.h.writes("pods", "delete")]


def test_ordered_ready_creates_one_pod_at_a_time_in_order(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            sts = await w.create(_sts("db", 3))
            await w.sync("db")
            assert w.created() == ["db-0"]
            [rev] = h.writes("controllerrevisions", "create")
            pod = w.pods()["db-0"]
            labels = pod["metadata"]["labels"]
            assert labels["statefulset.kubernetes.io/pod-name"] == "db-0"
            assert labels["apps.kubernetes.io/pod-index"] == "0"
            assert labels[HASH] == rev.name and labels["app"] == "db"
            assert pod["spec"]["hostname"] == "db-0" and pod["spec"]["subdomain"] == "db"
            assert pod["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
            assert ("SuccessfulCreate", "create Pod db-0 in StatefulSet db successful") in h.events()

            await w.sync("db")
            assert w.created() == []  # db-0 is not Running and Ready yet
            await w.ready("db-0", ready=False)
            await w.sync("db")
            assert w.created() == []
            await w.ready("db-0")
            await w.sync("db")
            assert w.created() == ["db-1"]
            await w.ready("db-1")
            await w.sync("db")
            assert w.created() == ["db-2"]
            await w.ready("db-2")
            await w.sync("db")
            assert w.created() == [] and w.deleted() == []
            status = w.ctrl.sets.get(f"{h.ns}/db")["status"]
            assert (status["replicas"], status["readyReplicas"], status["currentReplicas"]) == (3, 3, 3)
            assert status["currentRevision"] == status["updateRevision"] == rev.name
    run(go())


def test_parallel_creates_all_pods_at_once(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_sts("db", 3, podManagementPolicy="Parallel"))
            await w.sync("db")
            assert sorted(w.created()) == ["db-0", "db-1", "db-2"]
            await w.edit("db", {"spec": {"replicas": 1}})
            await w.sync("db")
            assert sorted(w.deleted()) == ["db-1", "db-2"]  # none of them ready: Parallel does not wait
    run(go())


def test_ordered_scale_down_removes_the_highest_ordinal_first_one_at_a_time(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_sts("db", 3))
            for i in range(3):
                await w.sync("db")
                await w.ready(f"db-{i}")
            await w.edit("db", {"spec": {"replicas": 1}})
            await w.sync("db")
            assert w.deleted() == ["db-2"]
            assert ("SuccessfulDelete", "delete Pod db-2 in StatefulSet db successful") in h.events()
            await w.sync("db")
            assert w.deleted() == ["db-1"]
            await w.sync("db")
            assert w.deleted() == [] and sorted(w.pods()) == ["db-0"]
    run(go())


def test_ordered_scale_down_deletes_a_healthy_top_pod_while_a_lower_condemned_one_is_unhealthy(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_sts("db", 3))
            for i in range(3):
                await w.sync("db")
                await w.ready(f"db-{i}")
            await w.ready("db-1", ready=False)  # db-1 breaks
            await w.edit("db", {"spec": {"replicas": 1}})
            # upstream: db-2 is healthy, so it goes; then db-1, the first unhealthy pod, may go
            await w.sync("db")
            assert w.deleted() == ["db-2"]
            await w.sync("db")
            assert w.deleted() == ["db-1"]
    run(go())


def test_ordered_ready_waits_for_min_ready_seconds_before_the_next_pod(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_sts("db", 2, minReadySeconds=60))
            await w.sync("db")
            assert w.created() == ["db-0"]
            just = rfc3339(datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5))
            await w.ready("db-0", since=just)
            after = await w.sync("db")
            # ready but not yet available: upstream's processReplica waits (isRunningAndAvailable)
            assert w.created() == []
            assert after is not None and 50 < after < 61
            await w.ready("db-0", since="2024-01-01T00:00:00Z")
            await w.sync("db")
            assert w.created() == ["db-1"]
    run(go())


def test_failed_pod_is_deleted_then_recreated(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_sts("db", 2))
            for i in range(2):
                await w.sync("db")
                await w.ready(f"db-{i}")
            await w.ready("db-0", ready=False, phase="Failed")
            await w.sync("db")
            assert w.deleted() == ["db-0"] and w.created() == []
            await w.sync("db")
            assert w.created() == ["db-0"]
    run(go())


def test_rolling_update_with_partition_replaces_only_ordinals_at_or_above_it(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_sts("db", 3, updateStrategy={"type": "RollingUpdate",
                                                          "rollingUpdate": {"partition": 1}}))
            for i in range(3):
                await w.sync("db")
                await w.ready(f"db-{i}")
            await w.sync("db")
            old_rev = w.pods()["db-0"]["metadata"]["labels"][HASH]
            await w.edit("db", {"spec": {"template": {"spec": {"containers": [{**CONTAINER, "image": "v2"}]}}}})

            await w.sync("db")
            [new_rev] = h.writes("controllerrevisions", "create")
            assert new_rev.result["revision"] == 2
            assert w.deleted() == ["db-2"]  # highest ordinal first
            await w.sync("db")
            assert w.created() == ["db-2"]
            assert w.pods()["db-2"]["metadata"]["labels"][HASH] == new_rev.name
            assert w.pods()["db-2"]["spec"]["containers"][0]["image"] == "v2"
            await w.sync("db")
            assert w.deleted() == []  # waits for the new db-2 to be ready
            await w.ready("db-2")
            await w.sync("db")
            assert w.deleted() == ["db-1"]
            await w.sync("db")
            assert w.created() == ["db-1"]
            await w.ready("db-1")
            await w.sync("db")
            assert w.deleted() == []  # db-0 is below the partition
            status = w.ctrl.sets.get(f"{h.ns}/db")["status"]
            assert status["currentRevision"] == old_rev and status["updateRevision"] == new_rev.name
            assert (status["currentReplicas"], status["updatedReplicas"]) == (1, 2)

            # a pod below the partition that goes away comes back at the current revision
            await w.remove("db-0")
            await w.sync("db")
            assert w.created() == ["db-0"]
            assert w.pods()["db-0"]["metadata"]["labels"][HASH] == old_rev
            assert w.pods()["db-0"]["spec"]["containers"][0]["image"] == "busybox"
    run(go())


def test_on_delete_strategy_does_not_replace_pods(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_sts("db", 2, updateStrategy={"type": "OnDelete"}))
            for i in range(2):
                await w.sync("db")
                await w.ready(f"db-{i}")
            await w.edit("db", {"spec": {"template": {"spec": {"containers": [{**CONTAINER, "image": "v2"}]}}}})
            await w.sync("db")
            assert w.deleted() == [] and w.created() == []
            await w.remove("db-1")  # the user deletes it: it comes back updated
            await w.sync("db")
            assert w.created() == ["db-1"]
            assert w.pods()["db-1"]["spec"]["containers"][0]["image"] == "v2"
    run(go())


def test_volume_claim_templates_create_a_claim_per_ordinal_before_the_pod(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                           "resources": {"requests": {"storage": "1Gi"}}}}
            await w.create(_sts("db", 1, volumeClaimTemplates=[claim]))
            await w.sync("db")
            writes = [(a.verb, a.plural, a.name) for a in h.writes() if a.plural in ("pods", "persistentvolumeclaims")]
            assert writes == [("create", "persistentvolumeclaims", "data-db-0"), ("create", "pods", "db-0")]
            pvc = h.writes("persistentvolumeclaims")[0].result
            assert pvc["metadata"]["labels"] == {"app": "db"}
            assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"
            vols = w.pods()["db-0"]["spec"]["volumes"]
            assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}} in vols
            # the claim stays when the pod is recreated
            await w.remove("db-0")
            await w.sync("db")
            assert w.created() == ["db-0"] and h.writes("persistentvolumeclaims") == []
    run(go())


def test_partition_counts_from_the_start_ordinal(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_sts("db", 3, ordinals={"start": 5},
                                updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}))
            for i in (5, 6, 7):
                await w.sync("db")
                assert w.created() == [f"db-{i}"]
                await w.ready(f"db-{i}")
            await w.edit("db", {"spec": {"template": {"spec": {"containers": [{**CONTAINER, "image": "v2"}]}}}})
            replaced = []
            for _ in range(8):
                await w.sync("db")
                replaced += w.deleted()
                for name in w.created():
                    await w.ready(name)
            # upstream indexes the partition from spec.ordinals.start: db-5 (index 0) stays
            assert replaced == ["db-7", "db-6"]
            assert w.pods()["db-5"]["spec"]["containers"][0]["image"] == "busybox"
    run(go())


def test_orphan_members_are_adopted_and_non_members_left_alone(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            sts = await w.create(_sts("db", 2))

            async def orphan(name: str, labels: dict) -> dict:
                pod = await h.setup("", "v1", "pods", {"metadata": {"name": name, "labels": labels},
                                                       "spec": {"containers": [CONTAINER]}}, status=ready_status())
                h.seed(w.ctrl.pods, pod)
                return pod

            await orphan("db-1", {"app": "db"})  # e.g. left by `kubectl delete sts --cascade=orphan`
            await orphan("db-extra", {"app": "db"})  # no ordinal: not a member
            await orphan("other-0", {"app": "db"})  # another set's name
            await orphan("db-5", {"app": "cache"})  # selector does not match
            assert w.ctrl._pod_keys(w.pods()["db-1"]) == [f"{h.ns}/db"]
            assert w.ctrl._pod_keys(w.pods()["other-0"]) == []
            await w.sync("db")
            [adopt] = h.writes("pods", "patch")
            assert adopt.name == "db-1"
            assert adopt.body["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
            assert w.created() == ["db-0"]  # db-1 counts as the set's own
            await w.sync("db")
            assert h.writes("pods") == []  # db-0 not ready yet; db-1 already there
            assert w.ctrl.sets.get(f"{h.ns}/db")["status"]["replicas"] == 2
    run(go())


def test_a_pod_whose_labels_no_longer_match_is_released(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_sts("db", 1))
            await w.sync("db")
            pod = w.pods()["db-0"]
            h.client.recording = False
            pod = await h.client.patch("", "v1", "pods", "db-0", {"metadata": {"labels": {"app": "debug"}}}, h.ns)
            h.client.recording = True
            h.seed(w.ctrl.pods, pod)
            await w.sync("db")
            [release] = h.writes("pods", "patch")
            assert release.name == "db-0" and release.body["metadata"]["ownerReferences"] == []
    run(go())
