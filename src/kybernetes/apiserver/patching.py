"""PATCH bodies: JSON patch, merge patch, strategic merge patch and server-side apply.

`make_patcher` returns the function the store calls with the current object (None when
absent) to build the new one; it runs inside the store's optimistic-concurrency retry
loop, so it must be pure. Custom resources have no strategic merge patch (415), as
upstream: their types carry no patch metadata.
"""

from __future__ import annotations

from ..api import errors, managedfields
from ..api.patch import apply_json_patch, apply_merge_patch, apply_strategic_merge_patch
from ..api.resources import ResourceType
from . import negotiate

BUILTIN_PATCH_TYPES = (negotiate.JSON_PATCH, negotiate.MERGE_PATCH, negotiate.APPLY_PATCH, negotiate.STRATEGIC_PATCH)
CUSTOM_PATCH_TYPES = (negotiate.JSON_PATCH, negotiate.MERGE_PATCH, negotiate.APPLY_PATCH)


def make_patcher(server, rt: ResourceType, content_type: str, raw: bytes, mode: str, ctx, force: bool):
    custom = server.crds.lookup(rt) is not None
    accepted = CUSTOM_PATCH_TYPES if custom else BUILTIN_PATCH_TYPES
    if content_type not in accepted:
        raise errors.unsupported_media_type(", ".join(accepted))
    if content_type == negotiate.APPLY_PATCH:
        body = negotiate.decode_yaml(raw) if raw.strip()[:1] not in (b"{", b"[") else negotiate.decode_json(raw)
    else:
        body = negotiate.decode_json(raw, "the patch")
    if content_type == negotiate.JSON_PATCH:
        if not isinstance(body, list):
            raise errors.bad_request("json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp")
    elif not isinstance(body, dict):
        raise errors.bad_request("the patch must be a JSON object")
    schema = server.patch_schema(rt)

    async def build(current: dict | None) -> dict:
        if content_type == negotiate.APPLY_PATCH:
            return apply(current)
        if current is None:
            raise errors.not_found_error(rt.plural, "", rt.group)
        if content_type == negotiate.JSON_PATCH:
            new = apply_json_patch(current, body)
        elif content_type == negotiate.MERGE_PATCH:
            new = apply_merge_patch(current, body, copy_doc=False)  # `current` is the store's fresh copy
        else:
            new = apply_strategic_merge_patch(current, body, schema)
        if not isinstance(new, dict):
            raise errors.bad_request("the patched object must be a JSON object")
        server.fields.check(rt, new, raw if content_type != negotiate.JSON_PATCH else None, mode, ctx, patch=raw)
        return new

    def apply(current: dict | None) -> dict:
        server.handlers.check_kind(rt, body)
        if not body.get("apiVersion") or not body.get("kind"):
            raise errors.bad_request("apply patches must carry apiVersion and kind")
        applied = {k: v for k, v in body.items()}
        server.fields.check(rt, applied, raw if raw.strip()[:1] == b"{" else None, mode, ctx)
        ctx.applied = True
        return managedfields.apply(current, applied, ctx.field_manager, rt.api_version, schema, force)

    return build
