"""DaemonSet controller, habit 3: seeded caches, `reconcile` called directly, writes checked.

Nodes are plain Node objects in the API (no kubelet); the test plays the kubelet by
writing pod status. Upstream reference: pkg/controller/daemon/daemon_controller_test.go
(TestSimpleDaemonSetLaunchesPods, TestNodeSelectorDaemonLaunchesPods, TestTaintedNode...,
TestDealsWithExistingPods, ...) and update_test.go (TestDaemonSetUpdatesPods, ...WithMaxSurge).
"""

from __future__ import annotations

from kybernetes.controllers.daemonset import DaemonSetController, pod_node

from .controller_units import CONTAINER, Harness, ready_status, run, server_fixture

server = server_fixture()

HASH = "controller-revision-hash"


def _ds(name: str, **spec) -> dict:
    labels = {"app": name}
    template_spec = {"containers": [CONTAINER], **spec.pop("pod", {})}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": template_spec}, **spec}}


class World:
    def __init__(self, h: Harness):
        self.h = h
        self.ctrl = h.controller(DaemonSetController)

    async def node(self, name: str, labels: dict | None = None, taints: list | None = None) -> dict:
        name = f"{self.h.ns}-{name}"  # nodes are cluster-wide: keep each test's own
        node = await self.h.setup("", "v1", "nodes", {"metadata": {"name": name, "labels": labels or {}},
                                                      "spec": {"taints": taints or []}}, namespaced=False)
        self.h.seed(self.ctrl.nodes, node)
        return node

    async def edit_node(self, name: str, patch: dict) -> None:
        self.h.client.recording = False
        try:
            node = await self.h.client.patch("", "v1", "nodes", f"{self.h.ns}-{name}", patch)
        finally:
            self.h.client.recording = True
        self.h.seed(self.ctrl.nodes, node)

    async def create(self, ds: dict) -> dict:
        ds = await self.h.setup("apps", "v1", "daemonsets", ds)
        self.h.seed(self.ctrl.sets, ds)
        return ds

    async def edit(self, name: str, patch: dict) -> dict:
        self.h.client.recording = False
        try:
            ds = await self.h.client.patch("apps", "v1", "daemonsets", name, patch, self.h.ns)
        finally:
            self.h.client.recording = True
        self.h.seed(self.ctrl.sets, ds)
        return ds

    async def sync(self, name: str = "ds") -> float | None:
        after = await self.h.reconcile(self.ctrl, name)
        for inf, plural in ((self.ctrl.sets, "daemonsets"), (self.ctrl.pods, "pods"),
                            (self.ctrl.revisions, "controllerrevisions")):
            await self.h.observe(inf, plural)
        return after

    def short(self, node: str | None) -> str | None:
        return node.removeprefix(f"{self.h.ns}-") if node else node

    def pods_by_node(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for p in self.ctrl.pods.list():
            if p["metadata"]["namespace"] == self.h.ns:
                out.setdefault(self.short(pod_node(p)), []).append(p)
        return out

    def created_on(self) -> list[str]:
        return sorted(self.short(pod_node(a.result)) for a in self.h.writes("pods", "create"))

    def deleted(self) -> list[str]:
        return sorted(a.name for a in self.h.writes("pods", "delete"))

    async def all_ready(self) -> None:
        for pods in self.pods_by_node().values():
            for p in pods:
                if (p.get("status") or {}).get("phase") != "Running":
                    self.h.seed(self.ctrl.pods, await self.h.set_status("", "v1", "pods", p, ready_status()))

    def status(self, name: str = "ds") -> dict:
        return self.ctrl.sets.get(f"{self.h.ns}/{name}").get("status") or {}


def test_one_pod_per_eligible_node_by_node_selector_and_taints(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.node("ssd", {"disk": "ssd"})
            await w.node("hdd", {"disk": "hdd"})
            await w.node("dedicated", {"disk": "ssd"}, [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
            await w.node("evicting", {"disk": "ssd"}, [{"key": "team", "value": "x", "effect": "NoExecute"}])
            # daemon pods tolerate not-ready/unreachable NoExecute and the pressure NoSchedule taints
            await w.node("not-ready", {"disk": "ssd"}, [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
                                                        {"key": "node.kubernetes.io/disk-pressure",
                                                         "effect": "NoSchedule"}])
            ds = await w.create(_ds("ds", pod={"nodeSelector": {"disk": "ssd"}}))
            await w.sync()
            assert w.created_on() == ["not-ready", "ssd"]
            [rev] = h.writes("controllerrevisions", "create")
            for a in h.writes("pods", "create"):
                pod = a.result
                assert pod["metadata"]["generateName"] == "ds-"
                assert pod["metadata"]["labels"] == {"app": "ds", HASH: rev.result["metadata"]["labels"][
                    "controller.kubernetes.io/hash"]}
                assert pod["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
                node = pod_node(pod)
                assert pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
                    "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                            "values": [node]}]}]}
                keys = {(t.get("key"), t.get("effect")) for t in pod["spec"]["tolerations"]}
                assert {("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
                        ("node.kubernetes.io/unschedulable", "NoSchedule")} <= keys
                assert not pod["spec"].get("nodeName")  # the scheduler binds it

            # the cache has not seen the pods: expectations hold the next sync back
            h.client.actions.clear()
            await w.sync()
            assert h.writes("pods") == []
            status = w.status()
            assert (status["desiredNumberScheduled"], status["currentNumberScheduled"]) == (2, 2)
            assert status["numberUnavailable"] == 2 and status["numberMisscheduled"] == 0

            # a toleration in the template opens the dedicated node
            await w.edit("ds", {"spec": {"template": {"spec": {"tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]}}}})
            await w.sync()
            assert w.created_on() == ["dedicated"]
    run(go())


def test_pods_leave_nodes_that_stop_qualifying_but_stay_on_new_no_schedule_taints(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            for name in ("a", "b", "c", "d"):
                await w.node(name, {"role": "edge"})
            await w.create(_ds("ds", pod={"nodeSelector": {"role": "edge"}}))
            await w.sync()
            assert w.created_on() == ["a", "b", "c", "d"]
            await w.all_ready()
            await w.sync()
            assert h.writes("pods") == [] and w.status()["numberReady"] == 4

            by_node = {w.short(pod_node(p)): p["metadata"]["name"] for p in w.ctrl.pods.list()
                       if p["metadata"]["namespace"] == h.ns}
            await w.edit_node("a", {"metadata": {"labels": {"role": "core"}}})  # selector no longer matches
            await w.edit_node("b", {"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}})  # keeps running
            await w.edit_node("c", {"spec": {"taints": [{"key": "k", "effect": "NoExecute"}]}})  # evicts
            # d is deleted
            h.client.recording = False
            await h.client.delete("", "v1", "nodes", f"{h.ns}-d")
            h.client.recording = True
            h.unseed(w.ctrl.nodes, w.ctrl.nodes.get(f"{h.ns}-d"))
            await w.sync()
            assert w.deleted() == sorted([by_node["a"], by_node["c"], by_node["d"]])
            await w.sync()  # the status of the sync that deleted still counted the pods it deleted
            status = w.status()
            # b: still running but no longer desired there (NoSchedule): misscheduled, as upstream counts it
            assert status["desiredNumberScheduled"] == 0 and status["numberMisscheduled"] == 1
    run(go())


def test_excess_pods_on_a_node_keep_the_oldest_and_failed_pods_are_replaced(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.node("a")
            await w.node("b")
            await w.create(_ds("ds"))
            await w.sync()
            await w.all_ready()
            first_a = w.pods_by_node()["a"][0]
            # a second pod for node a appears (e.g. created by an earlier controller instance)
            extra = await h.setup("", "v1", "pods", w.ctrl.new_pod(w.ctrl.sets.get(f"{h.ns}/ds"), f"{h.ns}-a",
                                                                   first_a["metadata"]["labels"][HASH]))
            extra["metadata"]["creationTimestamp"] = "2999-01-01T00:00:00Z"  # certainly the newer one
            h.seed(w.ctrl.pods, extra)
            b = w.pods_by_node()["b"][0]
            h.seed(w.ctrl.pods, await h.set_status("", "v1", "pods", b, {"phase": "Failed"}))
            await w.sync()
            assert w.deleted() == sorted([extra["metadata"]["name"], b["metadata"]["name"]])
            assert ("SuccessfulDelete", f"Deleted pod: {b['metadata']['name']}") in h.events()
            await w.sync()
            assert w.created_on() == ["b"]
    run(go())


def test_rolling_update_replaces_at_most_max_unavailable_at_a_time(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            for name in ("a", "b", "c"):
                await w.node(name)
            await w.create(_ds("ds", updateStrategy={"type": "RollingUpdate",
                                                      "rollingUpdate": {"maxUnavailable": 1}}))
            await w.sync()
            await w.all_ready()
            await w.sync()
            old_hash = w.pods_by_node()["a"][0]["metadata"]["labels"][HASH]
            await w.edit("ds", {"spec": {"template": {"spec": {"containers": [{**CONTAINER, "image": "v2"}]}}}})

            replaced = []
            for _ in range(12):
                await w.sync()
                assert len(w.deleted()) <= 1
                replaced += [a.name for a in h.writes("pods", "delete")]
                pods = [p for ps in w.pods_by_node().values() for p in ps]
                not_ready = [p for p in pods if (p.get("status") or {}).get("phase") != "Running"]
                assert len(not_ready) + (3 - len(pods)) <= 1  # never more than maxUnavailable down
                await w.all_ready()
                if all(p["metadata"]["labels"][HASH] != old_hash for p in pods) and len(pods) == 3:
                    break
            else:
                raise AssertionError(f"update never finished: {w.pods_by_node()}")
            assert len(replaced) == 3
            assert all(p["spec"]["containers"][0]["image"] == "v2" for ps in w.pods_by_node().values() for p in ps)
            await w.sync()
            assert w.status()["updatedNumberScheduled"] == 3
    run(go())


def test_rolling_update_with_max_surge_starts_the_new_pod_before_removing_the_old(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.node("a")
            await w.node("b")
            await w.create(_ds("ds", updateStrategy={"type": "RollingUpdate",
                                                      "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}))
            await w.sync()
            await w.all_ready()
            await w.sync()
            await w.edit("ds", {"spec": {"template": {"spec": {"containers": [{**CONTAINER, "image": "v2"}]}}}})
            await w.sync()
            [node] = w.created_on()  # one surge pod, beside the old one
            assert w.deleted() == [] and len(w.pods_by_node()[node]) == 2
            await w.sync()
            assert h.writes("pods") == []  # the surge pod is not ready yet: nothing more
            old = next(p for p in w.pods_by_node()[node] if p["spec"]["containers"][0]["image"] == "busybox")
            await w.all_ready()
            # the new pod is available: the old one goes, and the next node gets its surge pod (one at a time)
            await w.sync()
            assert w.deleted() == [old["metadata"]["name"]]
            assert w.created_on() == ["b" if node == "a" else "a"]
    run(go())


def test_surge_creations_and_deletions_in_one_sync_are_both_expected(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.node("a")
            await w.node("b")
            await w.create(_ds("ds", updateStrategy={"type": "RollingUpdate",
                                                      "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}))
            await w.sync()
            await w.all_ready()
            await w.sync()
            await w.edit("ds", {"spec": {"template": {"spec": {"containers": [{**CONTAINER, "image": "v2"}]}}}})
            await w.sync()
            await w.all_ready()
            key = f"{h.ns}/ds"
            # this sync deletes the old pod where the surge pod is ready and surges onto the other node
            await h.reconcile(w.ctrl, "ds")
            [deleted] = h.writes("pods", "delete")
            [created] = h.writes("pods", "create")
            assert w.ctrl.expectations.pending(key) == (1, 1)
            # the pod cache sees the deletion but not yet the creation: no second surge pod
            h.unseed(w.ctrl.pods, w.ctrl.pods.get(f"{h.ns}/{deleted.name}"))
            await h.reconcile(w.ctrl, "ds")
            assert h.writes("pods") == []
            h.seed(w.ctrl.pods, created.result)
            assert w.ctrl.expectations.satisfied(key)
    run(go())


def test_surge_replaces_an_unavailable_old_pod_beside_it_without_using_the_surge_budget(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            for name in ("a", "b", "c"):
                await w.node(name)
            await w.create(_ds("ds", updateStrategy={"type": "RollingUpdate",
                                                      "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}))
            await w.sync()
            await w.all_ready()
            broken = w.pods_by_node()["c"][0]
            h.seed(w.ctrl.pods, await h.set_status("", "v1", "pods", broken, ready_status(False)))
            await w.sync()
            await w.edit("ds", {"spec": {"template": {"spec": {"containers": [{**CONTAINER, "image": "v2"}]}}}})
            await w.sync()
            # upstream: the unavailable old pod on c gets its replacement at once, beside it (not deleted
            # first), and one healthy node surges as maxSurge allows
            created = w.created_on()
            assert "c" in created and len(created) == 2
            assert w.deleted() == []
    run(go())


def test_orphan_pods_matching_the_selector_are_adopted(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.node("a")
            await w.node("b")
            ds = await w.create(_ds("ds"))
            # left behind by `kubectl delete ds --cascade=orphan`, bound to node b
            orphan = await h.setup("", "v1", "pods", {"metadata": {"name": "left", "labels": {"app": "ds"}},
                                                      "spec": {"containers": [CONTAINER], "nodeName": f"{h.ns}-b"}},
                                   status=ready_status())
            stranger = await h.setup("", "v1", "pods", {"metadata": {"name": "stranger", "labels": {"app": "x"}},
                                                        "spec": {"containers": [CONTAINER], "nodeName": f"{h.ns}-a"}})
            h.seed(w.ctrl.pods, orphan, stranger)
            await w.sync()
            [adopt] = h.writes("pods", "patch")
            assert adopt.name == "left"
            assert adopt.body["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
            assert w.created_on() == ["a"]  # b already runs the adopted pod
            assert h.writes("pods", "delete") == []
    run(go())
