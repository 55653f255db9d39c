"""The garbage collector: owner references are lifetime links.

It watches every resource that can be listed, watched and deleted, and keeps a graph of
owners and dependents by uid. Three jobs, as upstream's:
- a dependent whose owners are all gone is deleted (Background propagation);
- an owner being deleted with the `foregroundDeletion` finalizer gets its dependents
  deleted in the foreground first, and loses the finalizer once no dependent that
  blocks owner deletion is left;
- an owner being deleted with the `orphan` finalizer has its dependents' references to
  it removed, then loses the finalizer.
Decisions about absent owners are checked with a live GET, as the cache may lag.
"""

from __future__ import annotations

import asyncio
import logging

from ..client.discovery import APIResource, server_resources
from ..client.rest import ApiError
from .base import Controller, Requeue

log = logging.getLogger("kybernetes.gc")
IGNORED = {("", "events"), ("events.k8s.io", "events"), ("coordination.k8s.io", "leases")}
JSON_PATCH = "application/json-patch+json"


class Node:
    __slots__ = ("resource", "obj")

    def __init__(self, resource: APIResource, obj: dict):
        self.resource = resource
        self.obj = obj

    @property
    def meta(self) -> dict:
        return self.obj["metadata"]


class GarbageCollector(Controller):
    name = "garbage-collector"
    workers = 4

    def __init__(self, ctx):
        super().__init__(ctx)
        self.nodes: dict[str, Node] = {}
        self.dependents: dict[str, set[str]] = {}
        self.resources: dict[tuple[str, str], APIResource] = {}

    # --- graph --------------------------------------------------------------------------------
    def _observe(self, resource: APIResource, obj: dict, deleted: bool = False) -> None:
        uid = obj["metadata"].get("uid")
        if not uid:
            return
        old = self.nodes.get(uid)
        for ref in (old.meta.get("ownerReferences") or ()) if old else ():
            self.dependents.get(ref["uid"], set()).discard(uid)
        if deleted:
            self.nodes.pop(uid, None)
            for dep in self.dependents.get(uid, ()):
                self.queue.add(dep)
            return
        node = self.nodes[uid] = Node(resource, obj)
        refs = obj["metadata"].get("ownerReferences") or ()
        for ref in refs:
            self.dependents.setdefault(ref["uid"], set()).add(uid)
            if ref["uid"] not in self.nodes:
                self.queue.add(uid)  # owner unknown: verify it exists
        finalizers = node.meta.get("finalizers") or ()
        if node.meta.get("deletionTimestamp") and ("foregroundDeletion" in finalizers or "orphan" in finalizers):
            self.queue.add(uid)
        for ref in refs:
            owner = self.nodes.get(ref["uid"])
            if owner and owner.meta.get("deletionTimestamp"):
                self.queue.add(ref["uid"])

    def _watch_resource(self, r: APIResource) -> None:
        key = (r.group, r.plural)
        if key in self.resources or key in IGNORED:
            return
        if not {"list", "watch", "delete"} <= set(r.verbs):
            return
        self.resources[key] = r
        inf = self.ctx.informers.informer(r.group, r.version, r.plural)
        inf.add_handler(lambda o: self._observe(r, o), lambda _, o: self._observe(r, o),
                        lambda o: self._observe(r, o, deleted=True))
        for obj in inf.list():
            self._observe(r, obj)

    async def run(self, stop: asyncio.Event) -> None:
        async def discover():
            while not stop.is_set():
                try:
                    for r in await server_resources(self.client):
                        self._watch_resource(r)
                except (ApiError, OSError) as e:
                    log.debug("discovery failed: %s", e)
                try:
                    await asyncio.wait_for(stop.wait(), 10)
                except TimeoutError:
                    pass

        task = asyncio.create_task(discover())
        await super().run(stop)
        task.cancel()

    # --- decisions ------------------------------------------------------------------------------
    def _resource_for(self, api_version: str, kind: str) -> APIResource | None:
        group = api_version.split("/", 1)[0] if "/" in api_version else ""
        for r in self.resources.values():
            if r.group == group and r.kind == kind:
                return r
        return None

    async def _owner_exists(self, dep: Node, ref: dict) -> bool:
        r = self._resource_for(ref.get("apiVersion", ""), ref.get("kind", ""))
        if r is None:
            raise Requeue(2.0)  # the owner's resource is not discovered yet: cannot tell
        ns = dep.meta.get("namespace", "") if r.namespaced else ""
        try:
            owner = await self.client.get(r.group, r.version, r.plural, ref["name"], ns)
        except ApiError as e:
            if e.code == 404:
                return False
            raise
        return owner["metadata"].get("uid") == ref["uid"]

    async def reconcile(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None:
            return
        finalizers = node.meta.get("finalizers") or ()
        if node.meta.get("deletionTimestamp"):
            if "orphan" in finalizers:
                await self._orphan_dependents(node)
                return
            if "foregroundDeletion" in finalizers:
                await self._delete_foreground(node)
                return
        refs = node.meta.get("ownerReferences") or ()
        if not refs:
            return
        missing, waiting_foreground = [], False
        for ref in refs:
            owner = self.nodes.get(ref["uid"])
            if owner is not None:
                if owner.meta.get("deletionTimestamp") and "foregroundDeletion" in (owner.meta.get("finalizers") or ()):
                    waiting_foreground = waiting_foreground or bool(ref.get("blockOwnerDeletion"))
                continue
            if not await self._owner_exists(node, ref):
                missing.append(ref)
        if not missing:
            return
        if len(missing) == len(refs):
            policy = "Foreground" if waiting_foreground else "Background"
            await self._delete(node, policy)
        else:
            keep = [r for r in refs if r not in missing]
            await self._patch(node, [{"op": "test", "path": "/metadata/uid", "value": uid},
                                     {"op": "replace", "path": "/metadata/ownerReferences", "value": keep}])

    async def _delete(self, node: Node, policy: str) -> None:
        r = node.resource
        try:
            await self.client.delete(r.group, r.version, r.plural, node.meta["name"], node.meta.get("namespace", ""),
                                     body={"propagationPolicy": policy,
                                           "preconditions": {"uid": node.meta["uid"]}})
        except ApiError as e:
            if e.code not in (404, 409):
                raise

    async def _patch(self, node: Node, ops: list) -> None:
        r = node.resource
        try:
            await self.client.patch(r.group, r.version, r.plural, node.meta["name"], ops,
                                    node.meta.get("namespace", ""), patch_type=JSON_PATCH)
        except ApiError as e:
            if e.code not in (404, 422):
                raise

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        r = node.resource
        current = await self.client.get(r.group, r.version, r.plural, node.meta["name"], node.meta.get("namespace", ""))
        finalizers = [f for f in current["metadata"].get("finalizers") or () if f != finalizer]
        await self._patch(node, [
            {"op": "test", "path": "/metadata/resourceVersion", "value": current["metadata"]["resourceVersion"]},
            {"op": "replace", "path": "/metadata/finalizers", "value": finalizers}])

    async def _delete_foreground(self, owner: Node) -> None:
        blocking = 0
        for dep_uid in list(self.dependents.get(owner.meta["uid"], ())):
            dep = self.nodes.get(dep_uid)
            if dep is None:
                continue
            ref = next((r for r in dep.meta.get("ownerReferences") or () if r["uid"] == owner.meta["uid"]), None)
            if ref is None:
                continue
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if not dep.meta.get("deletionTimestamp"):
                # as upstream's attemptToDeleteItem: in the foreground only if it has dependents of its own
                await self._delete(dep, "Foreground" if self.dependents.get(dep_uid) else "Background")
        if blocking:
            raise Requeue(0.5)
        await self._remove_finalizer(owner, "foregroundDeletion")

    async def _orphan_dependents(self, owner: Node) -> None:
        uid = owner.meta["uid"]
        for dep_uid in list(self.dependents.get(uid, ())):
            dep = self.nodes.get(dep_uid)
            if dep is None:
                continue
            refs = dep.meta.get("ownerReferences") or ()
            keep = [r for r in refs if r["uid"] != uid]
            if len(keep) != len(refs):
                await self._patch(dep, [{"op": "test", "path": "/metadata/uid", "value": dep_uid},
                                        {"op": "replace", "path": "/metadata/ownerReferences", "value": keep}])
        await self._remove_finalizer(owner, "orphan")
