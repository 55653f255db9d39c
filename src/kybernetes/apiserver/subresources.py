"""Subresources: status, scale, pods/binding, pods/eviction, namespaces/finalize.

`scale` answers with an autoscaling/v1 Scale for every kind that has it (kubectl scale
requires that kind back), reading and writing the parent's replica count.
"""

from __future__ import annotations

import copy

from aiohttp import web

from ..api import errors
from ..api.resources import ResourceType
from ..api.selectors import label_selector_string
from . import negotiate
from .eviction import Eviction
from .negotiate import json_response, read_body
from .requestinfo import RequestInfo


def _get_path(obj: dict, path: str):
    cur = obj
    for part in path.strip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set_path(obj: dict, path: str, value) -> None:
    parts = path.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


class Subresources:
    def __init__(self, server):
        self.server = server
        self.store = server.store
        self.handlers = server.handlers

    async def handle(self, request: web.Request, rt: ResourceType, info: RequestInfo) -> web.StreamResponse:
        sub = rt.subresource(info.subresource)
        if sub is None:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource", {})
        verb = info.verb
        if verb not in sub.verbs and not (verb == "get" and "get" in sub.verbs):
            raise errors.method_not_allowed()
        name = info.subresource
        if name == "status":
            if verb == "get":
                return await self.handlers.get(request, rt, info)
            if verb == "update":
                return await self.handlers.update(request, rt, info)
            if verb == "patch":
                return await self.handlers.patch(request, rt, info)
        if name == "scale":
            return await self.scale(request, rt, info)
        if (rt.group, rt.plural, name) == ("", "pods", "binding"):
            return await self.binding(request, rt, info)
        if (rt.group, rt.plural, name) == ("", "pods", "eviction"):
            return await self.eviction(request, rt, info)
        if (rt.group, rt.plural, name) == ("", "serviceaccounts", "token"):
            return await self.server.tokens.create(request, rt, info)
        if (rt.group, rt.plural, name) == ("", "namespaces", "finalize"):
            return await self.finalize(request, rt, info)
        handler = getattr(self.server, "stream_subresource", None)
        if handler is not None:
            return await handler(request, rt, info)
        raise errors.StatusError(404, "NotFound", "the server could not find the requested resource", {})

    # --- scale ------------------------------------------------------------------------------
    def _scale_paths(self, rt: ResourceType) -> tuple[str, str, str | None]:
        custom = self.server.crds.scale_paths(rt)
        if custom:
            return custom
        return ".spec.replicas", ".status.replicas", None

    def scale_of(self, rt: ResourceType, obj: dict) -> dict:
        spec_path, status_path, selector_path = self._scale_paths(rt)
        meta = obj["metadata"]
        status = {"replicas": _get_path(obj, status_path) or 0}
        if selector_path:
            sel = _get_path(obj, selector_path)
            if sel:
                status["selector"] = sel
        else:
            selector = (obj.get("spec") or {}).get("selector")
            if isinstance(selector, dict) and rt.group != "":
                status["selector"] = label_selector_string(selector)
            elif isinstance(selector, dict):  # ReplicationController: a plain map
                status["selector"] = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": _get_path(obj, spec_path) or 0},
            "status": status,
        }

    async def scale(self, request: web.Request, rt: ResourceType, info: RequestInfo) -> web.Response:
        ns = self.handlers.namespace_for(rt, info)
        if info.verb == "get":
            return json_response(self.scale_of(rt, await self.store.get(rt, ns, info.name)))
        ctx = self.handlers.write_context(request)
        raw = await read_body(request)
        content_type = negotiate.media_type(request.headers.get("Content-Type"))
        spec_path = self._scale_paths(rt)[0]
        scale_rt = ResourceType("autoscaling", "v1", "Scale", "scale", rt.namespaced)

        async def build(current: dict | None) -> dict:
            if current is None:
                raise errors.not_found_error(rt.plural, info.name, rt.group)
            scale = self.scale_of(rt, current)
            if info.verb == "update":
                new_scale = negotiate.decode_object(raw, content_type)
            else:
                patch = self.server.patcher(scale_rt, content_type, raw, "Ignore", ctx, False)
                new_scale = await patch(copy.deepcopy(scale))
            replicas = (new_scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool):
                raise errors.invalid_error("Scale", info.name, [errors.invalid("spec.replicas", replicas,
                                                                                "must be an integer")], "autoscaling")
            if replicas < 0:
                raise errors.invalid_error("Scale", info.name, [errors.invalid(
                    "spec.replicas", replicas, "must be greater than or equal to 0")], "autoscaling")
            rv = (new_scale.get("metadata") or {}).get("resourceVersion")
            if rv and rv != current["metadata"]["resourceVersion"]:
                raise errors.conflict(rt.plural, info.name,
                                      "the object has been modified; please apply your changes to the latest "
                                      "version and try again", rt.group)
            _set_path(current, spec_path, replicas)
            return current

        ctx.fields_subresource = "scale"
        result, _ = await self.store.patch(rt, ns, info.name, build, ctx)
        await self.server.after_write(rt, "update", result, ctx)
        return json_response(self.scale_of(rt, result))

    # --- pods -------------------------------------------------------------------------------
    async def binding(self, request: web.Request, rt: ResourceType, info: RequestInfo) -> web.Response:
        ctx = self.handlers.write_context(request)
        body = negotiate.decode_object(await read_body(request), request.headers.get("Content-Type", ""))
        target = body.get("target") or {}
        node = target.get("name")
        if not node:
            raise errors.invalid_error("Binding", info.name, [errors.required("target.name")])
        if target.get("kind", "Node") != "Node":
            raise errors.invalid_error("Binding", info.name, [errors.not_supported("target.kind", target.get("kind"), ["Node"])])

        async def build(current: dict | None) -> dict:
            if current is None:
                raise errors.not_found_error("pods", info.name)
            if current["metadata"].get("deletionTimestamp"):
                raise errors.conflict("pods", info.name, "pod is being deleted, cannot be assigned to a host")
            spec = current.setdefault("spec", {})
            if spec.get("nodeName"):
                raise errors.conflict("pods", info.name,
                                      f"pod {info.name} is already assigned to node \"{spec['nodeName']}\"")
            spec["nodeName"] = node
            conditions = [c for c in (current.get("status") or {}).get("conditions") or ()
                          if c.get("type") != "PodScheduled"]
            from ..api.meta import rfc3339
            conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                               "lastTransitionTime": rfc3339()})
            current.setdefault("status", {})["conditions"] = conditions
            return current

        # binding writes spec and status together, bypassing both strategies' resets; upstream binds at the
        # storage layer, so the binding is nobody's in managedFields
        ctx.field_manager = ""
        ctx.keep_result = True  # the bound pod is not even read
        await self.store.patch(rt, info.namespace, info.name, build, ctx, subresource="binding")
        return json_response(negotiate.success_status(), 201)

    async def eviction(self, request: web.Request, rt: ResourceType, info: RequestInfo) -> web.Response:
        ctx = self.handlers.write_context(request)
        raw = await read_body(request)
        body = negotiate.decode_object(raw, request.headers.get("Content-Type", "")) if raw.strip() else {}
        obj, deleted = await Eviction(self.server).evict(rt, info.namespace, info.name, body, ctx)
        await self.server.after_write(rt, "delete" if deleted else "update", obj, ctx)
        return json_response(negotiate.success_status(), 201)

    async def finalize(self, request: web.Request, rt: ResourceType, info: RequestInfo) -> web.Response:
        ctx = self.handlers.write_context(request)
        body = negotiate.decode_object(await read_body(request), request.headers.get("Content-Type", ""))
        finalizers = list((body.get("spec") or {}).get("finalizers") or [])

        async def build(current: dict | None) -> dict:
            if current is None:
                raise errors.not_found_error("namespaces", info.name)
            current["spec"] = {"finalizers": finalizers} if finalizers else {}
            return current

        result, _ = await self.store.patch(rt, "", info.name, build, ctx, subresource="finalize")
        return json_response(result)
