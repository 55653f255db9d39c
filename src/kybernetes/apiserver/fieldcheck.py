"""fieldValidation (Strict, Warn, Ignore), pruning of unknown fields, and managedFields.

Unknown and duplicate fields are found the way upstream's strict decoder reports them;
Strict turns them into a 400, Warn into `Warning` headers, Ignore drops them silently.
They are pruned in every mode, as the Go decoder drops what its types do not have.
"""

from __future__ import annotations

from ..api import crschema, errors, managedfields, schema
from ..api.resources import ResourceType


class FieldChecker:
    def __init__(self, server):
        self.server = server

    def check(self, rt: ResourceType, obj: dict, raw: bytes | None, mode: str, ctx, raw_is_json: bool = False,
              patch: bytes | None = None) -> None:
        """`raw_is_json`: `obj` is `raw` decoded as JSON (and not yet changed), so it need not be decoded again.
        `patch`: `obj` is the result of this patch, which a value of the wrong type is blamed on."""
        problems: list[str] = []
        if raw is not None and mode != "Ignore" and raw[:1] in (b"{", b"["):
            problems += [f'duplicate field "{p}"' for p in schema.find_duplicate_fields(raw, obj if raw_is_json else None)]
        crd_schema = self.server.crds.schema(rt) if self.server.crds.lookup(rt) is not None else None
        if crd_schema is not None:
            unknown = crschema.prune(obj, crd_schema)
        elif self.server.crds.lookup(rt) is None:
            unknown, mistyped = schema.decode_check(rt.group, rt.version, rt.kind, obj)
            if mistyped:  # the Go decoder's error: in every validation mode, before any other
                if patch is not None:
                    raise errors.invalid_error("", "", [errors.invalid("patch", patch.decode(errors="replace"),
                                                                       mistyped)])
                raise errors.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                                         f"{mistyped}")
        else:
            unknown = []
        problems += [f'unknown field "{p}"' for p in unknown]
        if not problems or mode == "Ignore":
            return
        if mode == "Strict":
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {', '.join(problems)}"
            )
        ctx.warnings.extend(problems)

    def track_managed_fields(self, rt: ResourceType, old: dict | None, new: dict, ctx, operation: str,
                             subresource: str = "") -> None:
        """Record the write's fields for its manager; a subresource's writer (status, scale) gets an entry of
        its own that names the subresource, as upstream's."""
        if not ctx.field_manager or ctx.applied:
            return
        managedfields.update_managed_fields(old, new, ctx.field_manager, rt.api_version, operation,
                                            self.schema_for(rt), subresource)

    def schema_for(self, rt: ResourceType):
        return self.server.patch_schema(rt)
