"""The ResourceQuota controller (upstream `pkg/controller/resourcequota`, `syncResourceQuota`).

Keeps each quota's `status.hard` equal to `spec.hard` and `status.used` to what the objects
of its namespace use of those resources (see `api/quota.py`; terminal pods count nothing).
Any change to a counted object re-syncs the quotas of its namespace; a periodic full resync
catches kinds counted only by `count/<resource>.<group>` that no informer here follows.
"""

from __future__ import annotations

import logging
from fractions import Fraction

from ..api.quantity import parse_quantity
from ..api.quota import format_quantity, total_usage, tracked_kind
from ..client.informer import meta_key
from .base import Controller, Requeue
from .podutil import namespace_index

log = logging.getLogger("kybernetes.resourcequota")

# kinds followed by informers: changes to them re-sync the namespace's quotas at once
WATCHED = (("", "v1", "pods"), ("", "v1", "services"), ("", "v1", "configmaps"), ("", "v1", "secrets"),
           ("", "v1", "persistentvolumeclaims"), ("", "v1", "replicationcontrollers"))
FULL_RESYNC = 300.0


class ResourceQuotaController(Controller):
    name = "resourcequota"
    workers = 2

    def __init__(self, ctx):
        super().__init__(ctx)
        self.quotas = self.watch("", "v1", "resourcequotas")
        self.quotas.add_indexer("namespace", namespace_index)
        self.informers = {}
        for group, version, plural in WATCHED:
            inf = self.watch(group, version, plural, self._quotas_of)
            inf.add_indexer("namespace", namespace_index)
            self.informers[(group, plural)] = inf

    def _quotas_of(self, obj: dict) -> list[str]:
        return [meta_key(q) for q in self.quotas.by_index("namespace", obj["metadata"].get("namespace", ""))]

    async def _objects(self, group: str, plural: str, namespace: str) -> list[dict] | None:
        inf = self.informers.get((group, plural))
        if inf is not None:
            return inf.by_index("namespace", namespace)
        versions = {"": "v1"}
        try:
            version = versions.get(group) or await self._preferred_version(group)
            return (await self.client.list(group, version, plural, namespace)).get("items") or []
        except Exception as e:  # noqa: BLE001 - an unknown or unlistable kind counts as nothing
            log.debug("quota: cannot list %s.%s: %s", plural, group, e)
            return None

    async def _preferred_version(self, group: str) -> str:
        doc = await self.client.request("GET", f"/apis/{group}")
        return doc["preferredVersion"]["version"]

    async def reconcile(self, key: str) -> None:
        quota = self.quotas.get(key)
        if quota is None:
            return
        namespace = quota["metadata"]["namespace"]
        hard = dict((quota.get("spec") or {}).get("hard") or {})
        used: dict[str, str] = {}
        sums: dict[tuple[str, str], dict[str, Fraction]] = {}
        polled = False
        for resource, limit in hard.items():
            kind = tracked_kind(resource)
            if kind is None:
                continue
            if kind not in sums:
                objects = await self._objects(kind[0], kind[1], namespace)
                polled |= kind not in self.informers
                sums[kind] = total_usage(objects or [], kind[0], kind[1], quota)
            used[resource] = format_quantity(sums[kind].get(resource, Fraction(0)), limit)
        status = quota.get("status") or {}
        if _same(status.get("hard"), hard) and _same(status.get("used"), used):
            if polled:
                raise Requeue(FULL_RESYNC)
            return
        body = dict(quota, status={"hard": hard, "used": used})
        await self.client.update("", "v1", "resourcequotas", body, namespace=namespace, subresource="status")
        if polled:
            raise Requeue(FULL_RESYNC)


def _same(a: dict | None, b: dict) -> bool:
    a = a or {}
    if set(a) != set(b):
        return False
    try:
        return all(parse_quantity(a[k]) == parse_quantity(b[k]) for k in b)
    except ValueError:
        return a == b
