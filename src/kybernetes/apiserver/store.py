"""The generic store: the one place that orders every write, for every kind.

Create: system metadata -> namespace checks -> prepare_for_create -> validate ->
canonicalize -> managed fields -> storage. Update and patch: read the current object,
build the new one, prepare_for_update -> validate_update -> canonicalize -> compare-and-
swap on the revision read (retried for unconditional writes). Delete: preconditions,
finalizers and graceful deletion, as upstream's `registry/generic/registry/store.go`.
Reads come from the watch cache after it has caught up with storage.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson

from ..api import errors
from ..api.meta import generate_name, new_uid, rfc3339
from ..api.resources import ResourceType
from ..storage.interface import KeyExistsError, KeyNotFoundError, RevisionMismatchError, Storage
from .strategy import RawStrategy, StatusStrategy, Strategy
from .watchcache import Entry, WatchCache, decode

log = logging.getLogger("kybernetes.store")

MAX_UPDATE_RETRIES = 20


@dataclass
class WriteContext:
    """Per-request facts a write needs."""

    user: str = ""
    groups: list = field(default_factory=list)
    dry_run: bool = False
    field_manager: str = ""
    warnings: list = field(default_factory=list)
    # server-side apply computed managedFields itself; the store must not record an Update
    applied: bool = False
    # the subresource a write's fields are recorded under when the store is not told it (scale)
    fields_subresource: str = ""
    # the caller only reads (or drops) the object a write returns: the watch cache may keep that
    # very object instead of decoding the stored bytes (WatchCache.keep)
    keep_result: bool = False


@dataclass
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    orphan_dependents: bool | None = None
    precondition_uid: str | None = None
    precondition_rv: str | None = None

    @classmethod
    def from_body(cls, body: dict | None, query) -> DeleteOptions:
        body = body or {}
        opts = cls()
        grace = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        if grace is not None and grace != "":
            try:
                opts.grace_period_seconds = int(grace)
            except (TypeError, ValueError):
                raise errors.bad_request(f"invalid gracePeriodSeconds: {grace!r}") from None
        opts.propagation_policy = body.get("propagationPolicy") or query.get("propagationPolicy")
        if opts.propagation_policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.invalid_error(
                "DeleteOptions", "", [errors.not_supported("propagationPolicy", opts.propagation_policy,
                                                           ["Foreground", "Background", "Orphan", "nil"])])
        orphan = body.get("orphanDependents", query.get("orphanDependents"))
        if orphan is not None:
            opts.orphan_dependents = orphan in (True, "true")
        pre = body.get("preconditions") or {}
        opts.precondition_uid = pre.get("uid")
        opts.precondition_rv = pre.get("resourceVersion")
        return opts


def object_key(rt: ResourceType, namespace: str, name: str) -> str:
    if rt.namespaced:
        return f"{rt.storage_key}{namespace}/{name}"
    return f"{rt.storage_key}{name}"


def encode_for_storage(obj: dict) -> bytes:
    meta = obj["metadata"]
    rv = meta.pop("resourceVersion", None)
    try:
        return orjson.dumps(obj)
    finally:
        if rv is not None:
            meta["resourceVersion"] = rv


class Store:
    """Reads and writes of every resource; strategies supply the per-kind steps."""

    def __init__(self, storage: Storage, cache: WatchCache, strategy_for: Callable[[ResourceType], Strategy]):
        self.storage = storage
        self.cache = cache
        self.strategy_for = strategy_for
        # hooks the server wires in: managed fields tracking, conversion, after-write events
        self.track_fields: Callable | None = None
        self.to_storage: Callable[[ResourceType, dict], dict] = lambda rt, obj: obj
        self.from_storage: Callable[[ResourceType, dict], dict] = lambda rt, obj: obj
        # validating admission around a create's write (resource quota): an async context manager or None
        self.admit_create: Callable | None = None
        # mutating admission of a create, after defaulting (ServiceAccount): an async function or None
        self.mutate_create: Callable | None = None

    # --- reads ------------------------------------------------------------------------------
    async def get(self, rt: ResourceType, namespace: str, name: str) -> dict:
        await self.cache.sync()
        entry = self.cache.bucket(rt.storage_key).store.get(object_key(rt, namespace, name))
        if entry is None:
            raise errors.not_found_error(rt.plural, name, rt.group)
        return self.from_storage(rt, entry.obj)

    async def get_or_none(self, rt: ResourceType, namespace: str, name: str) -> dict | None:
        await self.cache.sync()
        entry = self.cache.bucket(rt.storage_key).store.get(object_key(rt, namespace, name))
        return self.from_storage(rt, entry.obj) if entry else None

    async def list_entries(self, rt: ResourceType, namespace: str | None) -> tuple[list[Entry], int]:
        await self.cache.sync()
        bucket = self.cache.bucket(rt.storage_key)
        prefix = rt.storage_key + (f"{namespace}/" if namespace and rt.namespaced else "")
        return bucket.items(prefix), self.cache.revision

    # --- create -----------------------------------------------------------------------------
    async def create(self, rt: ResourceType, namespace: str, obj: dict, ctx: WriteContext) -> dict:
        strategy = self.strategy_for(rt)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        self._check_namespace_matches(rt, namespace, meta)
        if rt.namespaced:
            meta["namespace"] = namespace
            await self._check_namespace_open(namespace)
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generate_name(meta["generateName"])
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(k, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = rfc3339()
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        strategy.default(obj)
        # The writer owns what it sent, defaults included, and not what admission (a pod's token
        # volume), PrepareForCreate (a Job's selector) or allocation (a ClusterIP) add: upstream's
        # create handler records managedFields before any of them.
        if self.track_fields:
            self.track_fields(rt, None, obj, ctx, "Update")
        if self.mutate_create is not None:
            await self.mutate_create(rt, obj)
        strategy.prepare_for_create(obj)
        errs = strategy.validate(obj)
        if errs:
            raise errors.invalid_error(rt.kind, meta.get("name") or "", errs, rt.group)
        if not ctx.dry_run:
            strategy.allocate(obj)  # e.g. ClusterIPs; released again if the write fails
        strategy.canonicalize(obj)
        try:
            admission = self.admit_create(rt, obj, ctx) if self.admit_create else contextlib.nullcontext()
            async with admission:
                return await self._write_new(rt, namespace, obj, ctx, strategy)
        except errors.StatusError:
            if not ctx.dry_run:
                strategy.release(obj)
            raise

    async def _write_new(self, rt: ResourceType, namespace: str, obj: dict, ctx: WriteContext,
                         strategy: Strategy) -> dict:
        name = obj["metadata"]["name"]
        if ctx.dry_run:
            if await self.get_or_none(rt, namespace, name) is not None:
                raise errors.already_exists(rt.plural, name, rt.group)
            return obj
        stored = self.to_storage(rt, obj)
        key = object_key(rt, namespace, name)
        try:
            rev = await self.storage.create(key, encode_for_storage(stored))
        except KeyExistsError:
            raise errors.already_exists(rt.plural, name, rt.group) from None
        obj["metadata"]["resourceVersion"] = str(rev)
        if ctx.keep_result and stored is obj:
            self.cache.keep(key, rev, obj)
        return obj

    def _check_namespace_matches(self, rt: ResourceType, namespace: str, meta: dict) -> None:
        body_ns = meta.get("namespace")
        if rt.namespaced and body_ns and namespace and body_ns != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )

    async def _check_namespace_open(self, namespace: str) -> None:
        await self.cache.sync()
        entry = self.cache.bucket("/registry/core/namespaces/").store.get(f"/registry/core/namespaces/{namespace}")
        if entry is None:
            raise errors.not_found_error("namespaces", namespace)
        if entry.obj["metadata"].get("deletionTimestamp") or (entry.obj.get("status") or {}).get("phase") == "Terminating":
            raise errors.StatusError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} because it is being terminated",
                {"name": namespace, "kind": "namespaces", "causes": [{
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace"}]},
            )

    # --- update and patch ------------------------------------------------------------------
    async def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: dict,
        ctx: WriteContext,
        subresource: str = "",
        allow_create: bool = False,
    ) -> tuple[dict, bool]:
        """PUT: replace the object. Returns (object, created)."""
        meta = body.get("metadata")
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        self._check_namespace_matches(rt, namespace, meta)
        precondition_rv = meta.get("resourceVersion") or ""

        try:  # each try of the update starts from a fresh copy of the body: a JSON round trip is the cheap one
            pristine = orjson.dumps(body, option=orjson.OPT_PASSTHROUGH_DATETIME)
        except TypeError:  # YAML dates, ints beyond 64 bits
            pristine = None

        async def build(current: dict | None) -> dict:
            return orjson.loads(pristine) if pristine is not None else copy.deepcopy(body)

        return await self._update(rt, namespace, name, build, ctx, subresource, precondition_rv, allow_create,
                                  needs_current=False)

    async def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        apply_patch: Callable[[dict | None], Awaitable[dict]],
        ctx: WriteContext,
        subresource: str = "",
        allow_create: bool = False,
    ) -> tuple[dict, bool]:
        """PATCH: `apply_patch(current)` returns the new object; retried on write races."""
        return await self._update(rt, namespace, name, apply_patch, ctx, subresource, "", allow_create, patching=True)

    async def _update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        build: Callable[[dict | None], Awaitable[dict]],
        ctx: WriteContext,
        subresource: str,
        precondition_rv: str,
        allow_create: bool,
        patching: bool = False,
        needs_current: bool = True,
    ) -> tuple[dict, bool]:
        """`build(current)` makes the new object from a private copy of the stored one (None when
        `needs_current` is false: a PUT's body replaces it whole)."""
        main_strategy = strategy = self.strategy_for(rt)
        if subresource == "status":
            strategy = StatusStrategy(rt)
        elif subresource:
            strategy = RawStrategy(rt)
        key = object_key(rt, namespace, name)
        for _ in range(MAX_UPDATE_RETRIES):
            kv = await self.storage.get(key)
            if kv is None:
                if not allow_create or subresource:
                    raise errors.not_found_error(rt.plural, name, rt.group)
                new = await build(None)
                new.setdefault("metadata", {})["name"] = name
                return await self.create(rt, namespace, new, ctx), True
            old = self.from_storage(rt, decode(kv))
            # a second decode of the stored bytes is the deep copy, at a fraction of copy.deepcopy's cost
            new = await build(self.from_storage(rt, decode(kv)) if needs_current else None)
            if not isinstance(new, dict) or not isinstance(new.get("metadata", {}), dict):
                raise errors.bad_request("the object must be a JSON object with metadata")
            meta = new.setdefault("metadata", {})
            rv = precondition_rv
            if patching:
                rv = meta.get("resourceVersion") or ""
                if rv == old["metadata"]["resourceVersion"]:
                    rv = ""  # the patch did not ask for a precondition
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(
                    rt.plural, name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                    rt.group,
                )
            if meta.get("name", name) != name:
                raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
            new["apiVersion"], new["kind"] = rt.api_version, rt.kind
            meta["name"] = name
            if rt.namespaced:
                meta["namespace"] = namespace
            self._carry_system_meta(new, old)
            if not subresource:
                strategy.default(new)
            strategy.prepare_for_update(new, old)
            errs = strategy.validate_update(new, old)
            if errs:
                raise errors.invalid_error(rt.kind, name, errs, rt.group)
            strategy.canonicalize(new)
            if self.track_fields:
                self.track_fields(rt, old, new, ctx, "Update", ctx.fields_subresource or subresource)
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            if new == old:
                return old, False  # no-op: upstream skips the write and keeps the revision
            if ctx.dry_run:
                return new, False
            if self._delete_during_update(main_strategy, new, old):
                try:
                    rev, _ = await self.storage.delete(key, kv.mod_revision)
                except (RevisionMismatchError, KeyNotFoundError):
                    continue
                strategy.after_delete(new)
                new["metadata"]["resourceVersion"] = str(rev)
                return new, False
            stored = self.to_storage(rt, new)
            try:
                rev = await self.storage.update(key, encode_for_storage(stored), kv.mod_revision)
            except (RevisionMismatchError, KeyNotFoundError):
                if rv:
                    raise errors.conflict(
                        rt.plural, name,
                        "the object has been modified; please apply your changes to the latest version and try again",
                        rt.group,
                    ) from None
                continue
            new["metadata"]["resourceVersion"] = str(rev)
            if ctx.keep_result and stored is new:
                self.cache.keep(key, rev, new)
            return new, False
        raise errors.conflict(rt.plural, name, "too many concurrent updates, please retry", rt.group)

    @staticmethod
    def _delete_during_update(strategy: Strategy, new: dict, old: dict) -> bool:
        """Whether this update removes the last finalizer of an object whose deletion is due.

        As upstream's shouldDeleteDuringUpdate: only an update that takes away the last
        finalizer deletes, and only when no grace period is still running (a pod being
        stopped on its node stays until its kubelet deletes it with grace 0).
        """
        meta = new["metadata"]
        if not meta.get("deletionTimestamp") or strategy.finalizers_pending(new):
            return False
        if not strategy.finalizers_pending(old):
            return False
        return not meta.get("deletionGracePeriodSeconds")

    @staticmethod
    def _carry_system_meta(new: dict, old: dict) -> None:
        """What an update may never change, as upstream's BeforeUpdate enforces."""
        nm, om = new["metadata"], old["metadata"]
        if not nm.get("uid"):
            nm["uid"] = om.get("uid")
        for k in ("creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if om.get(k) is not None:
                nm[k] = om[k]
            else:
                nm.pop(k, None)
        if "generation" in om:
            nm["generation"] = om["generation"]
        if "managedFields" not in nm and "managedFields" in om:
            nm["managedFields"] = om["managedFields"]

    # --- delete -----------------------------------------------------------------------------
    async def delete(
        self, rt: ResourceType, namespace: str, name: str, opts: DeleteOptions, ctx: WriteContext
    ) -> tuple[dict, bool]:
        """Returns (object, deleted_now). Not deleted now = finalizers or grace period pending."""
        strategy = self.strategy_for(rt)
        key = object_key(rt, namespace, name)
        for _ in range(MAX_UPDATE_RETRIES):
            kv = await self.storage.get(key)
            if kv is None:
                raise errors.not_found_error(rt.plural, name, rt.group)
            obj = self.from_storage(rt, decode(kv))
            meta = obj["metadata"]
            if opts.precondition_uid and opts.precondition_uid != meta.get("uid"):
                raise errors.conflict(
                    rt.plural, name,
                    f"Precondition failed: UID in precondition: {opts.precondition_uid}, UID in object meta: {meta.get('uid')}",
                    rt.group,
                )
            if opts.precondition_rv and opts.precondition_rv != meta.get("resourceVersion"):
                raise errors.conflict(
                    rt.plural, name,
                    f"Precondition failed: ResourceVersion in precondition: {opts.precondition_rv}, "
                    f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
                    rt.group,
                )
            updated = self.from_storage(rt, decode(kv))  # a deep copy of obj
            umeta = updated["metadata"]
            finalizers = list(umeta.get("finalizers") or [])
            policy = opts.propagation_policy
            if policy is None and opts.orphan_dependents is not None:
                policy = "Orphan" if opts.orphan_dependents else "Background"
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
                finalizers = [f for f in finalizers if f != "orphan"]
            elif policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
                finalizers = [f for f in finalizers if f != "foregroundDeletion"]
            elif policy == "Background":
                finalizers = [f for f in finalizers if f not in ("orphan", "foregroundDeletion")]
            grace = strategy.grace_period(obj, opts.grace_period_seconds)
            umeta["finalizers"] = finalizers
            pending = strategy.finalizers_pending(updated) or grace > 0
            if not finalizers:
                umeta.pop("finalizers", None)
            if umeta.get("deletionTimestamp") and pending:
                # already being deleted: only a shorter grace period or new finalizers change anything
                current_grace = umeta.get("deletionGracePeriodSeconds")
                if finalizers == (meta.get("finalizers") or []) and (
                    current_grace is None or grace >= current_grace):
                    return obj, False
            if not pending:
                if ctx.dry_run:
                    return obj, True
                try:
                    rev, _ = await self.storage.delete(key, kv.mod_revision)
                except (RevisionMismatchError, KeyNotFoundError):
                    continue
                strategy.after_delete(obj)
                obj["metadata"]["resourceVersion"] = str(rev)
                return obj, True
            if not umeta.get("deletionTimestamp") or grace < (umeta.get("deletionGracePeriodSeconds") or 0):
                umeta["deletionTimestamp"] = rfc3339(_in_seconds(grace))
                umeta["deletionGracePeriodSeconds"] = grace
            strategy.prepare_for_delete(updated)
            if ctx.dry_run:
                return updated, False
            try:
                rev = await self.storage.update(key, encode_for_storage(self.to_storage(rt, updated)), kv.mod_revision)
            except (RevisionMismatchError, KeyNotFoundError):
                continue
            updated["metadata"]["resourceVersion"] = str(rev)
            return updated, False
        raise errors.conflict(rt.plural, name, "too many concurrent updates, please retry", rt.group)


def _in_seconds(seconds: int):
    import datetime

    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)


def encode_continue(rv: int, last_key: str) -> str:
    token = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": last_key + "\x00"})
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        return int(data["rv"]), str(data["start"])
    except Exception:
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion") from None
