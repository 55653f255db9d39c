"""OpenAPI v3 definitions of custom resources, as upstream's CRD OpenAPI builder publishes them."""

from __future__ import annotations

import copy
from typing import Any

OBJECT_META_REF = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_API_VERSION_DESCRIPTION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
_KIND_DESCRIPTION = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this "
    "from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
_METADATA_DESCRIPTION = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def _as_dict(x: Any) -> dict:
    return x if isinstance(x, dict) else {}


def _version_schema(crd: dict, version: str) -> dict | None:
    versions = _as_dict(crd.get("spec")).get("versions")
    for v in versions if isinstance(versions, list) else ():
        if isinstance(v, dict) and v.get("name") == version:
            schema = _as_dict(v.get("schema")).get("openAPIV3Schema")
            return schema if isinstance(schema, dict) else None
    return None


def openapi_definition_name(crd: dict, version: str, list_kind: bool = False) -> str:
    """Definition name upstream uses: reversed group, version, kind (`com.example.v1.CronTab`)."""
    spec = _as_dict(crd.get("spec"))
    names = _as_dict(spec.get("names"))
    kind = names.get("kind", "")
    if list_kind:
        kind = names.get("listKind") or kind + "List"
    group = ".".join(reversed((spec.get("group") or "").split(".")))
    return f"{group}.{version}.{kind}"


def openapi_schema_for_cr(crd: dict, version: str) -> dict:
    """The OpenAPI v3 definition for one served version of a custom resource.

    The version's schema with `apiVersion`/`kind` described, `metadata` as a reference to
    ObjectMeta and the `x-kubernetes-group-version-kind` extension, as upstream's CRD
    OpenAPI builder publishes it. A version without schema gets an open object.
    """
    spec = _as_dict(crd.get("spec"))
    names = _as_dict(spec.get("names"))
    schema = copy.deepcopy(_version_schema(crd, version)) or {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema.setdefault("type", "object")
    if not isinstance(schema.get("properties"), dict):
        schema["properties"] = {}
    props = schema["properties"]
    props["apiVersion"] = {**_as_dict(props.get("apiVersion")), "type": "string",
                           "description": _API_VERSION_DESCRIPTION}
    props["kind"] = {**_as_dict(props.get("kind")), "type": "string", "description": _KIND_DESCRIPTION}
    props["metadata"] = {"allOf": [{"$ref": OBJECT_META_REF}], "description": _METADATA_DESCRIPTION}
    schema["x-kubernetes-group-version-kind"] = [
        {"group": spec.get("group", ""), "kind": names.get("kind", ""), "version": version}]
    return schema


def openapi_list_schema_for_cr(crd: dict, version: str) -> dict:
    """The `<Kind>List` definition that goes with `openapi_schema_for_cr`."""
    spec = _as_dict(crd.get("spec"))
    names = _as_dict(spec.get("names"))
    list_kind = names.get("listKind") or names.get("kind", "") + "List"
    return {
        "description": f"{list_kind} is a list of {names.get('kind', '')}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": _API_VERSION_DESCRIPTION},
            "items": {
                "type": "array",
                "description": (f"List of {names.get('plural', '')}. More info: "
                                "https://git.k8s.io/community/contributors/devel/api-conventions.md"),
                "items": {"$ref": "#/components/schemas/" + openapi_definition_name(crd, version)},
            },
            "kind": {"type": "string", "description": _KIND_DESCRIPTION},
            "metadata": {
                "allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"}],
                "description": ("Standard list metadata. More info: https://git.k8s.io/community/contributors/"
                                "devel/sig-architecture/api-conventions.md#types-kinds"),
            },
        },
        "x-kubernetes-group-version-kind": [
            {"group": spec.get("group", ""), "kind": list_kind, "version": version}],
    }
