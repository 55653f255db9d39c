"""Garbage collector, habit 3: the dependency graph seeded through informer caches,
`reconcile(uid)` called directly, writes checked against a real API server.

Upstream reference: pkg/controller/garbagecollector/garbagecollector_test.go
(TestDependentsRace, TestProcessEvent, attemptToDeleteItem cases: "owner missing",
"owner with different uid", "foreground", "orphan").
"""

from __future__ import annotations

from kybernetes.client.discovery import server_resources
from kybernetes.controllers.garbagecollector import GarbageCollector

from .controller_units import Harness, run, server_fixture

server = server_fixture()


def _ref(owner: dict, block: bool = True) -> dict:
    return {"apiVersion": owner.get("apiVersion", "v1"), "kind": owner.get("kind", "ConfigMap"),
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"], "blockOwnerDeletion": block}


def _cm(name: str, *refs: dict, finalizers: list | None = None) -> dict:
    meta = {"name": name, **({"ownerReferences": list(refs)} if refs else {}),
            **({"finalizers": finalizers} if finalizers else {})}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


class World:
    def __init__(self, h: Harness):
        self.h = h
        self.ctrl = h.controller(GarbageCollector)

    async def discover(self) -> None:
        """What the collector's discovery loop does: one informer per deletable resource (not started)."""
        for r in await server_resources(self.h.client):
            if (r.group, r.plural) in {("", "configmaps"), ("", "pods"), ("apps", "v1"), ("apps", "replicasets")}:
                self.ctrl._watch_resource(r)
        self.configmaps = self.ctrl.ctx.informers.informer("", "v1", "configmaps")

    async def cm(self, name: str, *refs: dict, finalizers: list | None = None, seed: bool = True) -> dict:
        obj = await self.h.setup("", "v1", "configmaps", _cm(name, *refs, finalizers=finalizers))
        obj.setdefault("kind", "ConfigMap")
        if seed:
            self.h.seed(self.configmaps, obj)
        return obj

    async def delete_via_api(self, obj: dict, policy: str) -> dict:
        """A user deletes `obj` with a propagation policy; the cache then shows what the server holds."""
        self.h.client.recording = False
        try:
            await self.h.client.delete("", "v1", "configmaps", obj["metadata"]["name"], self.h.ns,
                                       body={"propagationPolicy": policy})
            live = await self.h.get("", "v1", "configmaps", obj["metadata"]["name"])
        finally:
            self.h.client.recording = True
        live.setdefault("kind", "ConfigMap")
        live.setdefault("apiVersion", "v1")
        self.h.seed(self.configmaps, live)
        return live

    async def sync(self, obj: dict) -> float | None:
        after = await self.h.reconcile(self.ctrl, obj["metadata"]["uid"], raw=True)
        await self.h.observe(self.configmaps, "configmaps")
        return after

    async def exists(self, name: str) -> dict | None:
        try:
            return await self.h.get("", "v1", "configmaps", name)
        except Exception as e:  # noqa: BLE001
            if getattr(e, "code", None) == 404:
                return None
            raise


def test_dependent_of_a_missing_owner_is_deleted_in_the_background(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.discover()
            owner = await w.cm("owner", seed=False)
            dep = await w.cm("dep", _ref(owner))
            await h.client.delete("", "v1", "configmaps", "owner", h.ns)
            h.client.actions.clear()
            assert dep["metadata"]["uid"] in w.ctrl.nodes
            await w.sync(dep)
            [delete] = h.writes("configmaps", "delete")
            assert delete.name == "dep"
            assert delete.body == {"propagationPolicy": "Background", "preconditions": {"uid": dep["metadata"]["uid"]}}
            assert await w.exists("dep") is None
            assert dep["metadata"]["uid"] not in w.ctrl.nodes  # the cache saw the deletion
    run(go())


def test_an_owner_replaced_under_the_same_name_does_not_keep_the_dependent(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.discover()
            owner = await w.cm("owner", seed=False)
            dep = await w.cm("dep", _ref(owner))
            await h.client.delete("", "v1", "configmaps", "owner", h.ns)
            await w.cm("owner", seed=False)  # same name, new uid
            await w.sync(dep)
            assert [a.name for a in h.writes("configmaps", "delete")] == ["dep"]
    run(go())


def test_an_owner_missing_from_the_cache_but_alive_keeps_its_dependent(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.discover()
            owner = await w.cm("owner", seed=False)  # the cache lags: only the server has it
            dep = await w.cm("dep", _ref(owner))
            await w.sync(dep)
            assert h.writes() == []
            h.seed(w.configmaps, owner)
            await w.sync(dep)
            assert h.writes() == []
            assert await w.exists("dep") is not None
    run(go())


def test_a_dependent_loses_only_the_reference_to_its_missing_owner(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.discover()
            alive = await w.cm("alive")
            gone = await w.cm("gone", seed=False)
            dep = await w.cm("dep", _ref(alive), _ref(gone))
            await h.client.delete("", "v1", "configmaps", "gone", h.ns)
            h.client.actions.clear()
            await w.sync(dep)
            assert h.writes("configmaps", "delete") == []
            [patch] = h.writes("configmaps", "patch")
            assert patch.body[0] == {"op": "test", "path": "/metadata/uid", "value": dep["metadata"]["uid"]}
            live = await w.exists("dep")
            assert [r["uid"] for r in live["metadata"]["ownerReferences"]] == [alive["metadata"]["uid"]]
    run(go())


def test_foreground_deletion_deletes_dependents_first_and_waits_for_blocking_ones(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.discover()
            owner = await w.cm("owner", finalizers=["example.com/hold"])
            await w.cm("blocking", _ref(owner, block=True), finalizers=["example.com/hold"])
            await w.cm("free", _ref(owner, block=False))
            owner = await w.delete_via_api(owner, "Foreground")
            assert "foregroundDeletion" in owner["metadata"]["finalizers"] and owner["metadata"]["deletionTimestamp"]

            after = await w.sync(owner)
            deletes = {a.name: a.body["propagationPolicy"] for a in h.writes("configmaps", "delete")}
            # upstream: a dependent without dependents of its own goes in the background
            assert deletes == {"blocking": "Background", "free": "Background"}
            assert after is not None  # "blocking" still exists (its own finalizer holds it)
            assert await w.exists("free") is None
            assert (await w.exists("owner"))["metadata"]["finalizers"].count("foregroundDeletion") == 1

            after = await w.sync(owner)
            assert h.writes("configmaps", "delete") == [] and after is not None  # already deleting: waits

            # the blocking dependent finishes its own deletion
            h.client.recording = False
            await h.client.patch("", "v1", "configmaps", "blocking", {"metadata": {"finalizers": None}}, h.ns)
            h.client.recording = True
            h.unseed(w.configmaps, w.configmaps.get(f"{h.ns}/blocking"))
            after = await w.sync(owner)
            assert after is None
            [patch] = h.writes("configmaps", "patch")
            assert patch.name == "owner"
            assert (await w.exists("owner"))["metadata"]["finalizers"] == ["example.com/hold"]
    run(go())


def test_orphan_deletion_removes_the_references_then_the_finalizer(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.discover()
            owner = await w.cm("owner", finalizers=["example.com/hold"])
            other = await w.cm("other")
            await w.cm("dep", _ref(owner), _ref(other))
            owner = await w.delete_via_api(owner, "Orphan")
            assert "orphan" in owner["metadata"]["finalizers"]
            await w.sync(owner)
            assert h.writes("configmaps", "delete") == []
            patched = [a.name for a in h.writes("configmaps", "patch")]
            assert patched == ["dep", "owner"]  # dependents first, the finalizer last
            dep = await w.exists("dep")
            assert [r["uid"] for r in dep["metadata"]["ownerReferences"]] == [other["metadata"]["uid"]]
            assert (await w.exists("owner"))["metadata"]["finalizers"] == ["example.com/hold"]
    run(go())


def test_foreground_deletion_cascades_in_the_foreground_through_dependents_with_dependents(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.discover()
            owner = await w.cm("owner", finalizers=["example.com/hold"])
            mid = await w.cm("mid", _ref(owner))
            await w.cm("leaf", _ref(mid))
            owner = await w.delete_via_api(owner, "Foreground")
            after = await w.sync(owner)
            [delete] = h.writes("configmaps", "delete")
            assert (delete.name, delete.body["propagationPolicy"]) == ("mid", "Foreground")
            assert after is not None
            mid = w.configmaps.get(f"{h.ns}/mid")
            assert mid["metadata"]["deletionTimestamp"] and "foregroundDeletion" in mid["metadata"]["finalizers"]
            # the middle object now deletes its own dependents first
            await w.sync(mid)
            assert [(a.name, a.body["propagationPolicy"]) for a in h.writes("configmaps", "delete")] == \
                [("leaf", "Background")]
    run(go())
