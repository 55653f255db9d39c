"""OpenAPI v3: the root index and one document per group-version.

kubectl reads these to decide who validates fields (a `patch` operation carrying the
kind's `x-kubernetes-group-version-kind` and a `fieldValidation` parameter means the
server does) and to `explain` kinds (`components.schemas` with the GVK extension).
Documents are built on first request and cached until resources change. There is no
OpenAPI v2; kubectl tolerates its 404.
"""

from __future__ import annotations

import hashlib

import orjson
from aiohttp import web

from ..api import cropenapi, errors, schema
from ..api.resources import ResourceType
from . import negotiate

REF = "#/components/schemas/"
VERB_QUERY = {
    "fieldValidation": "fieldValidation instructs the server on how to handle objects in the request "
                       "containing unknown or duplicate fields. Valid values are: Ignore, Warn (default), Strict.",
    "dryRun": "When present, indicates that modifications should not be persisted. Valid values are: All.",
    "fieldManager": "fieldManager is a name associated with the actor or entity that is making these changes.",
}


def _v3(node):
    """A definition in v2 shape (`#/definitions/` refs) in v3 shape (`allOf` around refs)."""
    if isinstance(node, list):
        return [_v3(x) for x in node]
    if not isinstance(node, dict):
        return node
    is_ref = isinstance(node.get("$ref"), str)
    out = {k: _v3(v) for k, v in node.items() if not (is_ref and k == "$ref")}
    if is_ref:
        ref = REF + node["$ref"].removeprefix(schema.REF_PREFIX)
        if len(out) == 0:
            return {"$ref": ref}
        out["allOf"] = [{"$ref": ref}]
    return out


def _reachable(names: list[str], defs: dict[str, dict]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        stack = [defs[name]]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str):
                    todo.append(ref.removeprefix(schema.REF_PREFIX))
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return seen


def _param(name: str, description: str, where: str = "query", required: bool = False) -> dict:
    return {"name": name, "in": where, "description": description, "required": required,
            "schema": {"type": "string", "uniqueItems": True}}


class OpenAPIService:
    def __init__(self, server):
        self.server = server
        self._docs: dict[str, bytes] = {}
        self._root: bytes | None = None

    def invalidate(self) -> None:
        self._docs.clear()
        self._root = None

    # --- building ---------------------------------------------------------------------------------
    @staticmethod
    def gv_path(group: str, version: str) -> str:
        return f"apis/{group}/{version}" if group else f"api/{version}"

    def _gvk(self, rt: ResourceType) -> dict:
        return {"group": rt.group, "version": rt.version, "kind": rt.kind}

    def _paths(self, rt: ResourceType, ref: str) -> dict:
        prefix = "/" + self.gv_path(rt.group, rt.version)
        ns = "/namespaces/{namespace}" if rt.namespaced else ""
        collection = f"{prefix}{ns}/{rt.plural}"
        item = collection + "/{name}"
        body = {"content": {"application/json": {"schema": {"$ref": ref}}}, "required": True}
        ok = {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": ref}}}}}
        gvk = self._gvk(rt)
        write_params = [_param(k, v) for k, v in VERB_QUERY.items()]

        def op(action: str, verb: str, **extra) -> dict:
            operation = {"operationId": f"{verb}{rt.kind}", "tags": [self.gv_path(rt.group, rt.version)],
                         "responses": ok, "x-kubernetes-action": action,
                         "x-kubernetes-group-version-kind": gvk}
            operation.update(extra)
            return operation

        patch_body = {"content": {t: {"schema": {"type": "object"}} for t in (
            "application/json-patch+json", "application/merge-patch+json",
            "application/strategic-merge-patch+json", "application/apply-patch+yaml")}, "required": True}
        path_params = [_param("name", f"name of the {rt.kind}", "path", True)]
        if rt.namespaced:
            path_params.append(_param("namespace", "object name and auth scope", "path", True))
        coll_params = path_params[1:]
        paths = {
            collection: {
                "get": op("list", "list"),
                "post": op("post", "create", requestBody=body, parameters=write_params),
                "parameters": coll_params,
            },
            item: {
                "get": op("get", "read"),
                "put": op("put", "replace", requestBody=body, parameters=write_params),
                "patch": op("patch", "patch", requestBody=patch_body,
                            parameters=write_params + [_param("force", "Force is going to \"force\" Apply requests.")]),
                "delete": op("delete", "delete"),
                "parameters": path_params,
            },
        }
        if "delete" in rt.verbs and "create" in rt.verbs:
            paths[collection]["delete"] = op("deletecollection", "deletecollection")
        for sub in rt.subresources:
            if sub.name in ("status", "scale"):
                paths[f"{item}/{sub.name}"] = {
                    "get": op("get", f"read{sub.name.title()}"),
                    "put": op("put", f"replace{sub.name.title()}", requestBody=body, parameters=write_params),
                    "patch": op("patch", f"patch{sub.name.title()}", requestBody=patch_body, parameters=write_params),
                    "parameters": path_params,
                }
        return paths

    def _document(self, group: str, version: str) -> dict:
        defs = schema.definitions()
        paths: dict = {}
        schemas: dict = {}
        roots = []
        for rt in self.server.index.in_group_version(group, version):
            crd = self.server.crds.lookup(rt)
            if crd is not None:
                name = cropenapi.openapi_definition_name(crd, rt.version)
                schemas[name] = cropenapi.openapi_schema_for_cr(crd, rt.version)
                schemas[cropenapi.openapi_definition_name(crd, rt.version, list_kind=True)] = \
                    cropenapi.openapi_list_schema_for_cr(crd, rt.version)
                roots.append("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")
            else:
                name = schema.definition_name(rt.group, rt.version, rt.kind)
                if name is None:
                    continue
                roots.append(name)
            paths.update(self._paths(rt, REF + name))
        for name in sorted(_reachable(roots, defs)):
            schemas[name] = _v3(defs[name])
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": self.server.version_info()["gitVersion"]},
                "paths": paths, "components": {"schemas": schemas}}

    def _doc_bytes(self, key: str) -> bytes | None:
        if key not in self._docs:
            groups = self.server.index.groups()
            for group, versions in groups.items():
                for version in versions:
                    if self.gv_path(group, version) == key:
                        doc = self._document(group, version)
                        if doc["paths"]:
                            # CR documents also need the ObjectMeta they point at
                            defs = schema.definitions()
                            for name in _reachable(["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"], defs):
                                doc["components"]["schemas"].setdefault(name, _v3(defs[name]))
                        self._docs[key] = orjson.dumps(doc)
        return self._docs.get(key)

    def _root_bytes(self) -> bytes:
        if self._root is None:
            paths = {}
            for group, versions in self.server.index.groups().items():
                for version in versions:
                    key = self.gv_path(group, version)
                    body = self._doc_bytes(key)
                    if body is None:
                        continue
                    digest = hashlib.sha512(body).hexdigest()[:32].upper()
                    paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
            self._root = orjson.dumps({"paths": paths})
        return self._root

    # --- serving -----------------------------------------------------------------------------------
    async def serve(self, request: web.Request, path: str) -> web.Response:
        if path.rstrip("/") == "/openapi/v3":
            return negotiate.raw_json_response(self._root_bytes())
        if path.startswith("/openapi/v3/"):
            body = self._doc_bytes(path[len("/openapi/v3/"):].strip("/"))
            if body is not None:
                headers = {"Cache-Control": "public, immutable"} if request.query.get("hash") else None
                return negotiate.raw_json_response(body, headers=headers)
        raise errors.not_found_error("", path)
