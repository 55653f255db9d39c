"""Namespace lifecycle: a namespace being deleted loses all its contents, then itself.

As upstream's namespace controller: for every namespaced resource the server serves,
delete what is left in the namespace; once nothing is left, remove the `kubernetes`
finalizer through `/finalize`, and the API server deletes the namespace.
"""

from __future__ import annotations

from ..client.discovery import server_resources
from ..client.rest import ApiError
from .base import Controller, Requeue


class NamespaceController(Controller):
    name = "namespace"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.namespaces = self.watch("", "v1", "namespaces")

    async def reconcile(self, name: str) -> None:
        ns = self.namespaces.get(name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if "kubernetes" not in ((ns.get("spec") or {}).get("finalizers") or ()):
            return
        remaining = 0
        for r in await server_resources(self.client):
            if not r.namespaced or "list" not in r.verbs or "delete" not in r.verbs:
                continue
            items = (await self.client.list(r.group, r.version, r.plural, name)).get("items") or []
            for obj in items:
                remaining += 1
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await self.client.delete(r.group, r.version, r.plural, obj["metadata"]["name"], name,
                                             body={"propagationPolicy": "Background"})
                except ApiError as e:
                    if e.code not in (404, 409):
                        raise
        if remaining:
            raise Requeue(1.0)
        ns = await self.client.get("", "v1", "namespaces", name)
        finalizers = [f for f in (ns.get("spec") or {}).get("finalizers") or () if f != "kubernetes"]
        ns.setdefault("spec", {})["finalizers"] = finalizers
        await self.client.update("", "v1", "namespaces", ns, subresource="finalize")
