"""ResourceQuota admission: a create that would take a namespace over one of its quotas is refused.

As upstream's quota admission plugin: for every ResourceQuota in the namespace whose scopes
select the new object, each hard resource the object uses must stay within `hard` once the
object is added. Usage is summed from the watch cache (the server's own view), not from the
quota's status, so it never waits for the controller. Creates in one namespace with quotas are
serialized from the check to the write, so two racing creates cannot both take the last unit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from fractions import Fraction

from ..api import errors
from ..api.quantity import parse_quantity
from ..api.quota import format_quantity, missing_values, scopes_match, total_usage, tracked_kind, usage
from ..api.resources import ResourceType
from .watchcache import WatchCache

QUOTAS = "/registry/core/resourcequotas/"


def _pretty(values: dict[str, str]) -> str:
    return ",".join(f"{k}={values[k]}" for k in sorted(values))


class QuotaAdmission:
    def __init__(self, cache: WatchCache, index):
        self.cache = cache
        self.index = index  # resource index: where the objects a quota counts are stored
        self.locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def _quotas(self, namespace: str) -> list[dict]:
        bucket = self.cache.bucket(QUOTAS)
        return sorted((e.obj for e in bucket.items(f"{QUOTAS}{namespace}/")), key=lambda q: q["metadata"]["name"])

    def _objects(self, group: str, plural: str, namespace: str) -> list[dict]:
        rt = next((r for r in self.index.types if r.group == group and r.plural == plural), None)
        prefix = rt.storage_key if rt else f"/registry/{group or 'core'}/{plural}/"
        return [e.obj for e in self.cache.bucket(prefix).items(f"{prefix}{namespace}/")]

    @contextlib.asynccontextmanager
    async def admit_create(self, rt: ResourceType, obj: dict, ctx):
        """Hold while the object is written: raises 403 Forbidden when a quota would be exceeded."""
        namespace = obj["metadata"].get("namespace") or ""
        if not rt.namespaced or not self._quotas(namespace):
            yield
            return
        async with self.locks[namespace]:
            await self.cache.sync()
            self.check(rt, obj, namespace)
            yield

    def check(self, rt: ResourceType, obj: dict, namespace: str) -> None:
        delta = usage(rt.group, rt.plural, obj)
        if not delta:
            return
        name = obj["metadata"].get("name") or ""
        for quota in self._quotas(namespace):
            hard = (quota.get("spec") or {}).get("hard") or {}
            if not scopes_match(quota, rt.group, rt.plural, obj):
                continue
            if (rt.group, rt.plural) == ("", "pods"):
                missing = missing_values(obj, hard)
                if missing:
                    raise errors.forbidden_error(
                        f'{rt.group_resource} "{name}" is forbidden: failed quota: {quota["metadata"]["name"]}: '
                        f"{missing}", rt.plural, name, rt.group)
            relevant = [r for r in hard if r in delta and tracked_kind(r) == (rt.group, rt.plural)]
            if not relevant:
                continue
            used = total_usage(self._objects(rt.group, rt.plural, namespace), rt.group, rt.plural, quota)
            requested, current, limited = {}, {}, {}
            for r in relevant:
                limit = _parse(hard[r])
                have = used.get(r, Fraction(0))
                if have + delta[r] > limit:
                    requested[r] = format_quantity(delta[r], hard[r])
                    current[r] = format_quantity(have, hard[r])
                    limited[r] = str(hard[r])
            if requested:
                raise errors.forbidden_error(
                    f'{rt.group_resource} "{name}" is forbidden: exceeded quota: {quota["metadata"]["name"]}, '
                    f"requested: {_pretty(requested)}, used: {_pretty(current)}, limited: {_pretty(limited)}",
                    rt.plural, name, rt.group)


def _parse(value) -> Fraction:
    try:
        return parse_quantity(value)
    except ValueError:
        return Fraction(0)
