"""REST handlers for resources: get, list, watch, create, update, patch, delete.

A handler decodes and checks the request, calls the generic store, and encodes the
answer (JSON or a meta.k8s.io Table). Subresources other than status live in
`subresources.py`; watch streaming in `watch.py`.
"""

from __future__ import annotations

from aiohttp import web

from ..api import errors
from ..api.resources import ResourceType
from ..api.selectors import parse_field_selector, parse_label_selector
from . import negotiate
from .negotiate import json_response, read_body
from .requestinfo import RequestInfo, parse_bool
from .store import DeleteOptions, WriteContext, decode_continue, encode_continue, object_key
from .watch import WatchStream, serve_watch

FIELD_VALIDATION_MODES = ("Strict", "Warn", "Ignore")


def _bool(query, name: str) -> bool:
    return parse_bool(query.get(name))


class Handlers:
    """Resource verbs; `server` gives the store, cache, tables, field checks and patching."""

    def __init__(self, server):
        self.server = server
        self.store = server.store
        self.cache = server.cache

    # --- helpers ----------------------------------------------------------------------------
    def write_context(self, request: web.Request) -> WriteContext:
        q = request.query
        dry = q.getall("dryRun", [])
        for d in dry:
            if d != "All":
                raise errors.bad_request(f'Invalid dryRun value: "{d}"; supported values: "All"')
        manager = q.get("fieldManager", "")
        if len(manager) > 128:
            raise errors.invalid_error("PatchOptions", "", [errors.too_long("fieldManager", manager, 128)])
        if not manager:
            agent = request.headers.get("User-Agent", "unknown")
            manager = agent.split("/", 1)[0][:128] or "unknown"
        user = request.get("user") or ("", [])
        return WriteContext(user=user[0], groups=list(user[1]), dry_run=bool(dry), field_manager=manager)

    @staticmethod
    def result_only_read(rt: ResourceType) -> bool:
        """Whether the object a write returns is only read after it (encoded into the response), so
        the watch cache may keep it (WriteContext.keep_result). Not for CRDs: the server's CRD
        registry holds on to what their writes return."""
        return rt.group != "apiextensions.k8s.io"

    def validation_mode(self, request: web.Request) -> str:
        mode = request.query.get("fieldValidation", "Warn") or "Warn"
        if mode not in FIELD_VALIDATION_MODES:
            raise errors.bad_request(
                f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got "{mode}"'
            )
        return mode

    def namespace_for(self, rt: ResourceType, info: RequestInfo) -> str:
        if rt.namespaced:
            if not info.namespace and info.verb not in ("list", "watch", "deletecollection"):
                raise errors.not_found_error(rt.plural, info.name or "", rt.group)
            return info.namespace
        return ""

    def respond(self, request: web.Request, rt: ResourceType, obj: dict, status: int = 200,
                ctx: WriteContext | None = None) -> web.Response:
        headers = {}
        if ctx and ctx.warnings:
            headers["Warning"] = ", ".join(f'299 - "{w}"' for w in ctx.warnings[:50])
        if negotiate.wants_table(request.headers.get("Accept")):
            table = self.server.tables.table(rt, [obj], request.query.get("includeObject", "Metadata"))
            table["metadata"] = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return json_response(table, status, headers or None)
        return json_response(obj, status, headers or None)

    def check_kind(self, rt: ResourceType, obj: dict) -> None:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version and api_version != rt.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
            )
        if kind and kind != rt.kind:
            raise errors.bad_request(
                f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"the object provided is unrecognized (kind {kind} is not {rt.kind})"
            )

    async def decode_write_body(self, request: web.Request, rt: ResourceType, ctx: WriteContext) -> dict:
        raw = await read_body(request)
        content_type = request.headers.get("Content-Type", "")
        obj = negotiate.decode_object(raw, content_type)
        self.check_kind(rt, obj)
        self.server.fields.check(rt, obj, raw, self.validation_mode(request), ctx,
                                 raw_is_json=negotiate.media_type(content_type) in ("", negotiate.JSON, "*/*"))
        return obj

    # --- verbs --------------------------------------------------------------------------------
    async def get(self, request: web.Request, rt: ResourceType, info: RequestInfo) -> web.Response:
        ns = self.namespace_for(rt, info)
        obj = await self.store.get(rt, ns, info.name)
        return self.respond(request, rt, obj)

    async def list(self, request: web.Request, rt: ResourceType, info: RequestInfo) -> web.StreamResponse:
        q = request.query
        ns = info.namespace if rt.namespaced else ""
        matches = self.server.selection(rt, q)
        entries, rev = await self.store.list_entries(rt, ns or None)
        start_key = ""
        cont = q.get("continue", "")
        if cont:
            _, start_key = decode_continue(cont)
        limit = 0
        if q.get("limit"):
            try:
                limit = max(0, int(q["limit"]))
            except ValueError:
                raise errors.bad_request(f"invalid limit: {q['limit']!r}") from None
        selected = []
        next_token = ""
        remaining = None
        for idx, entry in enumerate(entries):
            if start_key:
                key = object_key(rt, entry.obj["metadata"].get("namespace", ""), entry.obj["metadata"]["name"])
                if key < start_key:
                    continue
            if matches is not None and not matches(entry.obj):
                continue
            if limit and len(selected) == limit:
                last = selected[-1].obj["metadata"]
                next_token = encode_continue(rev, object_key(rt, last.get("namespace", ""), last["name"]))
                if matches is None:
                    remaining = len(entries) - idx
                break
            selected.append(entry)
        list_meta = {"resourceVersion": str(rev)}
        if next_token:
            list_meta["continue"] = next_token
            if remaining is not None:
                list_meta["remainingItemCount"] = remaining
        if negotiate.wants_table(request.headers.get("Accept")):
            objs = [self.store.from_storage(rt, e.obj) for e in selected]
            table = self.server.tables.table(rt, objs, q.get("includeObject", "Metadata"))
            table["metadata"] = list_meta
            return json_response(table)
        return self.server.encode_list(rt, selected, list_meta)

    async def watch(self, request: web.Request, rt: ResourceType, info: RequestInfo) -> web.StreamResponse:
        q = request.query
        ns = info.namespace if rt.namespaced else ""
        if info.name:  # /watch/namespaces/ns/pods/name form
            q = q.copy()
            q["fieldSelector"] = ",".join(filter(None, [q.get("fieldSelector"), f"metadata.name={info.name}"]))
        matches = self.server.selection(rt, q) or (lambda obj: True)
        key_prefix = rt.storage_key + (f"{ns}/" if ns else "")
        table = negotiate.wants_table(request.headers.get("Accept"))
        encode = None
        if table:
            first = [True]

            def encode(obj: dict) -> dict:
                t = self.server.tables.table(rt, [self.store.from_storage(rt, obj)], q.get("includeObject", "Metadata"))
                t["metadata"] = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                if not first[0]:
                    t["columnDefinitions"] = []
                first[0] = False
                return t
        elif self.server.needs_conversion(rt):
            def encode(obj: dict) -> dict:
                return self.store.from_storage(rt, obj)
        send_initial = q.get("sendInitialEvents")
        stream = WatchStream(rt, key_prefix, matches, encode, encode is None, _bool(q, "allowWatchBookmarks"))
        return await serve_watch(request, self.cache, stream, q.get("resourceVersion", ""),
                                 parse_bool(send_initial) if send_initial else None)

    async def create(self, request: web.Request, rt: ResourceType, info: RequestInfo) -> web.Response:
        ctx = self.write_context(request)
        if info.name:
            raise errors.method_not_allowed()
        obj = await self.decode_write_body(request, rt, ctx)
        ns = info.namespace if rt.namespaced else ""
        if rt.namespaced and not ns:
            ns = (obj.get("metadata") or {}).get("namespace") or ""
            if not ns:
                raise errors.bad_request("the server could not find the requested resource")
        ctx.keep_result = self.result_only_read(rt)
        created = await self.store.create(rt, ns, obj, ctx)
        await self.server.after_write(rt, "create", created, ctx)
        return self.respond(request, rt, created, 201, ctx)

    async def update(self, request: web.Request, rt: ResourceType, info: RequestInfo) -> web.Response:
        ctx = self.write_context(request)
        obj = await self.decode_write_body(request, rt, ctx)
        ns = self.namespace_for(rt, info)
        sub = info.subresource if info.subresource == "status" else ""
        ctx.keep_result = self.result_only_read(rt)
        result, created = await self.store.update(rt, ns, info.name, obj, ctx, sub,
                                                  allow_create=self.server.allow_create_on_update(rt))
        await self.server.after_write(rt, "create" if created else "update", result, ctx)
        return self.respond(request, rt, result, 201 if created else 200, ctx)

    async def patch(self, request: web.Request, rt: ResourceType, info: RequestInfo) -> web.Response:
        ctx = self.write_context(request)
        ns = self.namespace_for(rt, info)
        content_type = negotiate.media_type(request.headers.get("Content-Type"))
        raw = await read_body(request)
        mode = self.validation_mode(request)
        force = _bool(request.query, "force")
        is_apply = content_type == negotiate.APPLY_PATCH
        if is_apply and not request.query.get("fieldManager"):
            raise errors.bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                                     "is required for apply patch")
        if "force" in request.query and not is_apply:
            raise errors.bad_request("force: Forbidden: may not be specified for non-apply patch")
        patcher = self.server.patcher(rt, content_type, raw, mode, ctx, force)
        sub = info.subresource if info.subresource == "status" else ""
        ctx.keep_result = self.result_only_read(rt)
        result, created = await self.store.patch(rt, ns, info.name, patcher, ctx, sub, allow_create=is_apply)
        await self.server.after_write(rt, "create" if created else "update", result, ctx)
        return self.respond(request, rt, result, 201 if created else 200, ctx)

    async def delete(self, request: web.Request, rt: ResourceType, info: RequestInfo) -> web.Response:
        ctx = self.write_context(request)
        ns = self.namespace_for(rt, info)
        raw = await read_body(request)
        body = negotiate.decode_object(raw, request.headers.get("Content-Type", "")) if raw.strip() else None
        opts = DeleteOptions.from_body(body, request.query)
        obj, deleted = await self.store.delete(rt, ns, info.name, opts, ctx)
        await self.server.after_write(rt, "delete" if deleted else "update", obj, ctx)
        if deleted and not self.server.returns_deleted_object(rt):
            return json_response(negotiate.success_status({
                "name": info.name, "group": rt.group, "kind": rt.plural, "uid": obj["metadata"].get("uid")}))
        return self.respond(request, rt, obj, 200 if deleted else 202, ctx)

    async def delete_collection(self, request: web.Request, rt: ResourceType, info: RequestInfo) -> web.Response:
        ctx = self.write_context(request)
        ns = info.namespace if rt.namespaced else ""
        raw = await read_body(request)
        body = negotiate.decode_object(raw, request.headers.get("Content-Type", "")) if raw.strip() else None
        opts = DeleteOptions.from_body(body, request.query)
        matches = self.server.selection(rt, request.query)
        entries, rev = await self.store.list_entries(rt, ns or None)
        items = []
        for entry in entries:
            if matches is not None and not matches(entry.obj):
                continue
            meta = entry.obj["metadata"]
            try:
                obj, deleted = await self.store.delete(rt, meta.get("namespace", ""), meta["name"], opts, ctx)
            except errors.StatusError as e:
                if e.code == 404:
                    continue
                raise
            await self.server.after_write(rt, "delete" if deleted else "update", obj, ctx)
            items.append(obj)
        return json_response({"kind": rt.list_kind, "apiVersion": rt.api_version,
                              "metadata": {"resourceVersion": str(rev)}, "items": items})


__all__ = ["Handlers", "parse_field_selector", "parse_label_selector"]
