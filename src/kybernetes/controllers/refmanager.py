"""Adopt and orphan dependents by selector (upstream `ControllerRefManager`).

An owner claims the objects its selector matches that have no controller; it releases
the objects it controls that its selector no longer matches. Adoption first re-reads
the owner from the server (once per claim) so a deleted or replaced owner adopts
nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..client.rest import ApiError, RESTClient
from .podutil import controller_ref, new_controller_ref


def live_owner(client: RESTClient, group: str, version: str, plural: str,
               owner: dict) -> Callable[[], Awaitable[dict | None]]:
    """The `recheck` of a ControllerRefManager: the owner read again from the server, None once gone."""
    meta = owner["metadata"]

    async def get() -> dict | None:
        try:
            return await client.get(group, version, plural, meta["name"], meta.get("namespace", ""))
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    return get


class ControllerRefManager:
    def __init__(self, client: RESTClient, owner: dict, owner_api_version: str, owner_kind: str,
                 matches: Callable[[dict], bool], dependent_gvr: tuple[str, str, str],
                 recheck: Callable[[], Awaitable[dict | None]], finalizers: tuple[str, ...] = ()):
        self.client = client
        self.finalizers = finalizers  # added to what is adopted (the Job's tracking finalizer)
        self.owner = owner
        self.uid = owner["metadata"]["uid"]
        self.ref = new_controller_ref(owner, owner_api_version, owner_kind)
        self.matches = matches
        self.gvr = dependent_gvr
        self.recheck = recheck
        self._can_adopt: bool | None = None

    async def can_adopt(self) -> bool:
        if self._can_adopt is None:
            fresh = await self.recheck()
            self._can_adopt = bool(fresh and fresh["metadata"].get("uid") == self.uid
                                   and not fresh["metadata"].get("deletionTimestamp"))
        return self._can_adopt

    async def claim(self, objs: list[dict]) -> list[dict]:
        """The objects this owner controls after adopting and releasing."""
        claimed, errors = [], []
        owner_deleting = bool(self.owner["metadata"].get("deletionTimestamp"))
        for obj in objs:
            ref = controller_ref(obj)
            matched = self.matches(obj)
            try:
                if ref is not None:
                    if ref.get("uid") != self.uid:
                        continue  # someone else's
                    if matched or owner_deleting:
                        claimed.append(obj)
                    elif not obj["metadata"].get("deletionTimestamp"):
                        await self._release(obj)
                    continue
                if not matched or owner_deleting or obj["metadata"].get("deletionTimestamp"):
                    continue
                if not await self.can_adopt():
                    continue
                adopted = await self._adopt(obj)
                if adopted is not None:
                    claimed.append(adopted)
            except ApiError as e:
                errors.append(e)
        if errors:
            raise errors[0]
        return claimed

    async def _patch_refs(self, obj: dict, refs: list[dict], finalizers: tuple[str, ...] = ()) -> dict | None:
        meta = obj["metadata"]
        body = {"metadata": {"ownerReferences": refs, "resourceVersion": meta["resourceVersion"]}}
        have = list(meta.get("finalizers") or ())
        if any(f not in have for f in finalizers):
            body["metadata"]["finalizers"] = have + [f for f in finalizers if f not in have]
        try:
            return await self.client.patch(*self.gvr, meta["name"], body, meta.get("namespace", ""))
        except ApiError as e:
            if e.code in (404, 422):
                return None  # gone, or being deleted: nothing to adopt or release
            raise

    async def _adopt(self, obj: dict) -> dict | None:
        refs = [r for r in obj["metadata"].get("ownerReferences") or () if r.get("uid") != self.uid]
        return await self._patch_refs(obj, [*refs, self.ref], self.finalizers)

    async def _release(self, obj: dict) -> None:
        refs = [r for r in obj["metadata"].get("ownerReferences") or () if r.get("uid") != self.uid]
        await self._patch_refs(obj, refs)
