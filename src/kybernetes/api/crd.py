"""CustomResourceDefinitions (apiextensions.k8s.io/v1): defaults, validation, status, serving.

Validation follows upstream's `apiextensions/validation` on the internal form of the
CRD: like upstream's v1 conversion, a per-version schema, subresources or printer
columns that are identical in every version are checked as the top-level field, so a
one-version CRD reports `spec.validation.openAPIV3Schema...`,
`spec.subresources.scale...` and `spec.additionalPrinterColumns[0]...` exactly as a
real API server does. Schemas must be structural (upstream `schema/validation.go` and
`complete.go`) and defaults must validate against them.

Not checked: CEL rules in `x-kubernetes-validations` beyond their static shape, and
the caBundle of conversion webhooks.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
from typing import Any

from . import crschema
from .errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from .resources import ALL_VERBS, ResourceType, Subresource

GROUP = "apiextensions.k8s.io"
STATUS_SUBRESOURCE = Subresource("status")
SCALE_SUBRESOURCE = Subresource("scale", ("get", "patch", "update"), "autoscaling", "v1", "Scale")

PRINTER_COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
PRINTER_COLUMN_FORMATS = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")
OPENAPI_TYPES = ("array", "boolean", "integer", "number", "object", "string")
ACCEPTED_CONVERSION_REVIEW_VERSIONS = ("v1", "v1beta1")
MAX_SELECTABLE_FIELDS = 8
API_APPROVAL_ANNOTATION = "api-approved.kubernetes.io"
# fields the root schema may carry when the status subresource is enabled (upstream's
# allowedFieldsAtRootSchema, by JSON name; the message shows the Go names)
_ROOT_ALLOWED = {
    "description": "Description", "type": "Type", "format": "Format", "title": "Title",
    "maximum": "Maximum", "exclusiveMaximum": "ExclusiveMaximum", "minimum": "Minimum",
    "exclusiveMinimum": "ExclusiveMinimum", "maxLength": "MaxLength", "minLength": "MinLength",
    "pattern": "Pattern", "maxItems": "MaxItems", "minItems": "MinItems", "uniqueItems": "UniqueItems",
    "multipleOf": "MultipleOf", "required": "Required", "items": "Items", "properties": "Properties",
    "externalDocs": "ExternalDocs", "example": "Example",
    "x-kubernetes-preserve-unknown-fields": "XPreserveUnknownFields",
    "x-kubernetes-validations": "XValidations",
}
_ROOT_ALLOWED_MESSAGE = (
    "only [" + " ".join(_ROOT_ALLOWED.values()) + "] fields are allowed at the root of the schema "
    "if the status subresource is enabled"
)

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _is_dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        errs.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return errs


def _is_dns1035_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1035_LABEL.match(value):
        errs.append(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
            "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        )
    return errs


def _d(x: Any) -> dict:
    return x if isinstance(x, dict) else {}


def _l(x: Any) -> list:
    return x if isinstance(x, list) else []


def _s(x: Any) -> str:
    return x if isinstance(x, str) else ""


# ---------------------------------------------------------------------------------------
# lookups


def versions(crd: dict) -> list[dict]:
    return [v for v in _l(_d(crd.get("spec")).get("versions")) if isinstance(v, dict)]


def version_of(crd: dict, version: str) -> dict | None:
    for v in versions(crd):
        if v.get("name") == version:
            return v
    return None


def storage_version(crd: dict) -> str | None:
    for v in versions(crd):
        if v.get("storage"):
            return _s(v.get("name")) or None
    return None


def served_versions(crd: dict) -> list[str]:
    return [_s(v.get("name")) for v in versions(crd) if v.get("served") and v.get("name")]


def condition(crd: dict, type_: str) -> dict | None:
    for c in _l(_d(crd.get("status")).get("conditions")):
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return None


def is_established(crd: dict) -> bool:
    c = condition(crd, "Established")
    return bool(c and c.get("status") == "True")


def schema_for(crd: dict, version: str) -> dict | None:
    """The openAPIV3Schema of a version, or None."""
    v = version_of(crd, version)
    if v is None:
        return None
    schema = _d(v.get("schema")).get("openAPIV3Schema")
    return schema if isinstance(schema, dict) else None


def printer_columns(crd: dict, version: str) -> list[dict]:
    """The additionalPrinterColumns declared for a version (a copy; empty when none).

    Upstream prints `Name` first and, when a version declares no columns, an `Age`
    column from `.metadata.creationTimestamp`; that is the table printer's business.
    """
    v = version_of(crd, version)
    if v is None:
        return []
    return [dict(c) for c in _l(v.get("additionalPrinterColumns")) if isinstance(c, dict)]


def resource_types_for(crd: dict) -> list[ResourceType]:
    """One ResourceType per served version, in spec order."""
    spec = _d(crd.get("spec"))
    names = _d(spec.get("names"))
    out = []
    for v in versions(crd):
        if not v.get("served") or not v.get("name"):
            continue
        subs = _d(v.get("subresources"))
        subresources = []
        if "scale" in subs and subs["scale"] is not None:
            subresources.append(SCALE_SUBRESOURCE)
        if "status" in subs and subs["status"] is not None:
            subresources.append(STATUS_SUBRESOURCE)
        out.append(ResourceType(
            group=_s(spec.get("group")),
            version=v["name"],
            kind=_s(names.get("kind")),
            plural=_s(names.get("plural")),
            namespaced=spec.get("scope") == "Namespaced",
            short_names=tuple(_s(x) for x in _l(names.get("shortNames"))),
            categories=tuple(_s(x) for x in _l(names.get("categories"))),
            verbs=ALL_VERBS,
            subresources=tuple(subresources),
        ))
    return out


# ---------------------------------------------------------------------------------------
# defaults and status


def default_crd(obj: dict) -> None:
    """Upstream's v1 defaults: singular, listKind, conversion None, webhook port, storedVersions."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict):
        kind = _s(names.get("kind"))
        if not names.get("singular") and kind:
            names["singular"] = kind.lower()
        if not names.get("listKind") and kind:
            names["listKind"] = kind + "List"
    conversion = spec.get("conversion")
    if conversion is None:
        spec["conversion"] = {"strategy": "None"}
    elif isinstance(conversion, dict):
        service = _d(_d(conversion.get("webhook")).get("clientConfig")).get("service")
        if isinstance(service, dict) and service.get("port") is None:
            service["port"] = 443
    for v in versions(obj):
        if isinstance(v.get("subresources"), dict):
            for key in ("status", "scale"):
                if key in v["subresources"] and v["subresources"][key] is None:
                    del v["subresources"][key]
    status = obj.setdefault("status", {})
    if isinstance(status, dict) and not status.get("storedVersions"):
        sv = storage_version(obj)
        if sv:
            status["storedVersions"] = [sv]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cond(type_: str, status: str, reason: str, message: str, when: str) -> dict:
    return {"type": type_, "status": status, "lastTransitionTime": when, "reason": reason, "message": message}


def crd_status_after_create(obj: dict, existing_crds: list[dict], now: str | None = None) -> dict:
    """Status a new CRD gets from the naming and establishing controllers.

    Names already accepted by another CRD of the same group conflict, as upstream's
    NamingConditionController decides: the conflicting names are not accepted and the
    CRD is not Established.
    """
    when = now or _now()
    spec = _d(obj.get("spec"))
    group = spec.get("group")
    requested = _d(spec.get("names"))
    name = _d(obj.get("metadata")).get("name")
    resources: set[str] = set()
    kinds: set[str] = set()
    for other in existing_crds:
        if not isinstance(other, dict) or _d(other.get("spec")).get("group") != group:
            continue
        if name and _d(other.get("metadata")).get("name") == name:
            continue
        acc = _d(_d(other.get("status")).get("acceptedNames"))
        resources.update(x for x in (acc.get("plural"), acc.get("singular")) if isinstance(x, str) and x)
        resources.update(x for x in _l(acc.get("shortNames")) if isinstance(x, str))
        kinds.update(x for x in (acc.get("kind"), acc.get("listKind")) if isinstance(x, str) and x)

    accepted: dict = {}
    reason = message = ""

    def take(field: str, used: set[str], conflict: str) -> None:
        nonlocal reason, message
        value = requested.get(field)
        if not value or not isinstance(value, str):
            return
        if value in used:
            reason, message = conflict, f"{json.dumps(value)} is already in use"
        else:
            accepted[field] = value

    take("plural", resources, "PluralConflict")
    take("singular", resources, "SingularConflict")
    short = [x for x in _l(requested.get("shortNames")) if isinstance(x, str)]
    if short:
        clashes = [f"{json.dumps(x)} is already in use" for x in short
                   if x in resources and x not in (accepted.get("plural"), accepted.get("singular"))]
        if clashes:
            reason = "ShortNamesConflict"
            message = clashes[0] if len(clashes) == 1 else "[" + ", ".join(clashes) + "]"
        else:
            accepted["shortNames"] = list(short)
    take("kind", kinds, "KindConflict")
    take("listKind", kinds, "ListKindConflict")
    if "categories" in requested:
        accepted["categories"] = list(_l(requested.get("categories")))

    if reason:
        names_cond = _cond("NamesAccepted", "False", reason, message, when)
        established = _cond("Established", "False", "NotAccepted", "not all names are accepted", when)
    else:
        names_cond = _cond("NamesAccepted", "True", "NoConflicts", "no conflicts found", when)
        established = _cond("Established", "True", "InitialNamesAccepted", "the initial names have been accepted",
                            when)
    ordered = {k: accepted[k] for k in ("categories", "kind", "listKind", "plural", "shortNames", "singular")
               if k in accepted}
    status: dict = {"conditions": [names_cond, established], "acceptedNames": ordered}
    sv = storage_version(obj)
    status["storedVersions"] = [sv] if sv else []
    return status


# ---------------------------------------------------------------------------------------
# validation


class _Spec:
    """The internal view of a v1 spec: identical per-version fields lifted to the top."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.versions = [v if isinstance(v, dict) else {} for v in _l(spec.get("versions"))]
        vs = self.versions

        def identical(key: str, empty: Any) -> bool:
            if not vs:
                return False
            first = vs[0].get(key, empty) or empty
            return all(_equal(v.get(key, empty) or empty, first) for v in vs)

        self.top_schema = self.top_subresources = None
        self.top_columns: list = []
        self.per_version_schema = self.per_version_subresources = self.per_version_columns = True
        if identical("schema", None):
            self.top_schema = vs[0].get("schema")
            self.per_version_schema = False
        if identical("subresources", None):
            self.top_subresources = vs[0].get("subresources")
            self.per_version_subresources = False
        if identical("additionalPrinterColumns", []):
            self.top_columns = _l(vs[0].get("additionalPrinterColumns"))
            self.per_version_columns = False

    def subresources_for(self, v: dict) -> dict | None:
        subs = v.get("subresources") if self.per_version_subresources else self.top_subresources
        return subs if isinstance(subs, dict) else None

    def any_status(self) -> bool:
        if _status_enabled(self.top_subresources):
            return True
        return any(_status_enabled(v.get("subresources")) for v in self.versions)


def _equal(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _status_enabled(subs: Any) -> bool:
    return isinstance(subs, dict) and subs.get("status") is not None


def validate_crd(obj: dict) -> list[FieldError]:
    """Validate a CRD on create (metadata.name rules included; the rest of ObjectMeta is not)."""
    return _validate(obj, None)


def validate_crd_update(new: dict, old: dict) -> list[FieldError]:
    """Validate a CRD update: the create rules, plus the immutable fields."""
    return _validate(new, old)


def validate_crd_status_update(new: dict, old: dict) -> list[FieldError]:
    """Validation of the status subresource: the accepted names."""
    return validate_names(_d(_d(new.get("status")).get("acceptedNames")), "status.acceptedNames")


def _validate(obj: dict, old: dict | None) -> list[FieldError]:
    errs: list[FieldError] = []
    meta = _d(obj.get("metadata"))
    spec = _d(obj.get("spec"))
    names = _d(spec.get("names"))
    name = _s(meta.get("name"))
    if name:
        msgs = _is_dns1123_subdomain(name)
        if name != f"{_s(names.get('plural'))}.{_s(spec.get('group'))}":
            msgs.append('must be spec.names.plural+"."+spec.group')
        errs += [invalid("metadata.name", name, m) for m in msgs]
    old_spec = _d(old.get("spec")) if old is not None else None
    errs += _validate_spec(spec, old_spec, old)
    if old is not None:
        errs += _validate_update(spec, old_spec or {}, old)
    status = _d(obj.get("status"))
    errs += validate_names(_d(status.get("acceptedNames")), "status.acceptedNames")
    errs += _validate_stored_versions(status.get("storedVersions"), spec)
    errs += _validate_api_approval(obj, old)
    errs += _validate_preserve_unknown_fields(obj, old)
    return errs


def _validate_update(spec: dict, old_spec: dict, old: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    old_names = _d(old_spec.get("names"))
    names = _d(spec.get("names"))
    if is_established(old):
        if spec.get("scope") != old_spec.get("scope"):
            errs.append(invalid("spec.scope", spec.get("scope"), "field is immutable"))
        if names.get("kind") != old_names.get("kind"):
            errs.append(invalid("spec.names.kind", names.get("kind"), "field is immutable"))
    if spec.get("group") != old_spec.get("group"):
        errs.append(invalid("spec.group", spec.get("group"), "field is immutable"))
    if names.get("plural") != old_names.get("plural"):
        errs.append(invalid("spec.names.plural", names.get("plural"), "field is immutable"))
    return errs


def _validate_stored_versions(stored: Any, spec: dict) -> list[FieldError]:
    path = "status.storedVersions"
    stored = [x for x in _l(stored)]
    if not stored:
        return [invalid(path, stored, "must have at least one stored version")]
    errs: list[FieldError] = []
    index = {v: i for i, v in enumerate(stored)}
    for v in _l(spec.get("versions")):
        v = _d(v)
        if v.get("storage") and v.get("name") not in index:
            errs.append(invalid(path, stored, "must have the storage version " + _s(v.get("name"))))
        index.pop(v.get("name"), None)
    for v, i in sorted(index.items(), key=lambda kv: kv[1]):
        errs.append(invalid(
            f"{path}[{i}]", v,
            f"missing from spec.versions; {v} was previously a storage version, and must remain in "
            f"spec.versions until a storage migration ensures no data remains persisted in {v} and "
            f"removes {v} from status.storedVersions"))
    return errs


def _protected_group(group: str) -> bool:
    return group in ("k8s.io", "kubernetes.io") or group.endswith(".k8s.io") or group.endswith(".kubernetes.io")


def _validate_api_approval(obj: dict, old: dict | None) -> list[FieldError]:
    group = _s(_d(obj.get("spec")).get("group"))
    if not _protected_group(group):
        return []
    annotations = _d(_d(obj.get("metadata")).get("annotations"))
    if API_APPROVAL_ANNOTATION in annotations:
        return []
    return [required(
        f"metadata.annotations[{API_APPROVAL_ANNOTATION}]",
        f'protected groups must have approval annotation "{API_APPROVAL_ANNOTATION}", see '
        "https://github.com/kubernetes/enhancements/pull/1111")]


def _validate_preserve_unknown_fields(obj: dict, old: dict | None) -> list[FieldError]:
    if old is not None and _d(old.get("spec")).get("preserveUnknownFields") is True:
        return []
    if _d(obj.get("spec")).get("preserveUnknownFields") is True:
        return [invalid("spec.preserveUnknownFields", True,
                        "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in "
                        "spec.versions[*].schema instead")]
    return []


def _validate_spec(spec: dict, old_spec: dict | None, old: dict | None) -> list[FieldError]:
    errs: list[FieldError] = []
    group = _s(spec.get("group"))
    if not group:
        errs.append(required("spec.group"))
    elif msgs := _is_dns1123_subdomain(group):
        errs.append(invalid("spec.group", group, ",".join(msgs)))
    elif len(group.split(".")) < 2:
        errs.append(invalid("spec.group", group, "should be a domain with at least one dot"))

    scope = spec.get("scope")
    if not scope:
        errs.append(required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        errs.append(not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))

    internal = _Spec(spec)
    vs = internal.versions
    preserve = spec.get("preserveUnknownFields") is True
    require_schema = old_spec is None or _all_versions_have_schema(old_spec)
    top_has_schema = isinstance(_d(internal.top_schema).get("openAPIV3Schema"), dict)
    if not top_has_schema:
        for i, v in enumerate(vs):
            has = isinstance(_d(v.get("schema")).get("openAPIV3Schema"), dict)
            if has:
                continue
            if require_schema:
                errs.append(required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required"))
            elif not preserve and v.get("served"):
                errs.append(required(f"spec.versions[{i}].schema.openAPIV3Schema",
                                     "because otherwise all fields are pruned"))
    if preserve and _spec_has(internal, lambda s: "default" in s):
        errs.append(invalid("spec.preserveUnknownFields", True, "must be false in order to use defaults in the schema"))

    storage = 0
    seen: set = set()
    unique = True
    for i, v in enumerate(vs):
        if v.get("storage"):
            storage += 1
        vname = v.get("name")
        if not isinstance(vname, str):
            vname = json.dumps(vname)
        if vname in seen:
            unique = False
        seen.add(vname)
        if msgs := _is_dns1035_label(_s(vname)):
            errs.append(invalid(f"spec.versions[{i}].name", vname, ",".join(msgs)))
        errs += _validate_version(internal, v, f"spec.versions[{i}]")

    if not unique:
        errs.append(invalid("spec.versions", vs, "must contain unique version names"))
    if storage != 1:
        errs.append(invalid("spec.versions", vs, "must have exactly one version marked as storage version"))

    names = _d(spec.get("names"))
    for field in ("plural", "singular", "kind", "listKind"):
        if not names.get(field):
            errs.append(required(f"spec.names.{field}"))
    errs += validate_names(names, "spec.names")

    if internal.top_schema is not None:
        errs += _validate_validation(internal.top_schema, internal.any_status(), "spec.validation")
    errs += _validate_subresources(internal.top_subresources, "spec.subresources")
    for i, col in enumerate(internal.top_columns):
        errs += _validate_column(_d(col), f"spec.additionalPrinterColumns[{i}]")
    errs += _validate_conversion(spec.get("conversion"), old_spec)
    return errs


def _all_versions_have_schema(spec: dict) -> bool:
    return all(isinstance(_d(_d(v).get("schema")).get("openAPIV3Schema"), dict) for v in _l(spec.get("versions")))


def _validate_version(internal: _Spec, v: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    warning = v.get("deprecationWarning")
    if warning is not None:
        if not v.get("deprecated"):
            errs.append(invalid(f"{path}.deprecationWarning", warning, "can only be set for deprecated versions"))
        elif isinstance(warning, str):
            if len(warning) > 256:
                errs.append(invalid(f"{path}.deprecationWarning", warning, "must be <= 256 characters long"))
            if not warning:
                errs.append(invalid(f"{path}.deprecationWarning", warning, "must not be an empty string"))
            for i, ch in enumerate(warning):
                if not ch.isprintable():
                    errs.append(invalid(
                        f"{path}.deprecationWarning", warning,
                        f"must only contain printable UTF-8 characters; non-printable character found at index {i}"))
                    break
    if internal.per_version_schema and v.get("schema") is not None:
        errs += _validate_validation(v.get("schema"), _status_enabled(internal.subresources_for(v)),
                                     f"{path}.schema")
    if internal.per_version_subresources:
        errs += _validate_subresources(v.get("subresources"), f"{path}.subresources")
    if internal.per_version_columns:
        for i, col in enumerate(_l(v.get("additionalPrinterColumns"))):
            errs += _validate_column(_d(col), f"{path}.additionalPrinterColumns[{i}]")
    selectable = _l(v.get("selectableFields"))
    if selectable:
        schema = schema_for({"spec": {"versions": [v]}}, _s(v.get("name"))) if v.get("name") else None
        if schema is None and internal.top_schema is not None:
            schema = _d(internal.top_schema).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            errs.append(invalid(f"{path}.selectableFields", "",
                                "selectableFields may only be set when version.schema.openAPIV3Schema is not included"))
        else:
            errs += _validate_selectable_fields(selectable, schema, f"{path}.selectableFields")
    return errs


def validate_names(names: dict, path: str) -> list[FieldError]:
    """Upstream's ValidateCustomResourceDefinitionNames (spec.names and status.acceptedNames)."""
    errs: list[FieldError] = []
    for field in ("plural", "singular"):
        value = _s(names.get(field))
        if value and (msgs := _is_dns1035_label(value)):
            errs.append(invalid(f"{path}.{field}", value, ",".join(msgs)))
    for field in ("kind", "listKind"):
        value = _s(names.get(field))
        if value and (msgs := _is_dns1035_label(value.lower())):
            errs.append(invalid(f"{path}.{field}", value, "may have mixed case, but should otherwise match: "
                                + ",".join(msgs)))
    for i, short in enumerate(_l(names.get("shortNames"))):
        if msgs := _is_dns1035_label(_s(short)):
            errs.append(invalid(f"{path}.shortNames[{i}]", short, ",".join(msgs)))
    kind = names.get("kind")
    if kind and kind == names.get("listKind"):
        errs.append(invalid(f"{path}.listKind", names.get("listKind"), "kind and listKind may not be the same"))
    for i, category in enumerate(_l(names.get("categories"))):
        if msgs := _is_dns1035_label(_s(category)):
            errs.append(invalid(f"{path}.categories[{i}]", category, ",".join(msgs)))
    return errs


def _validate_column(col: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not col.get("name"):
        errs.append(required(f"{path}.name"))
    types = ",".join(PRINTER_COLUMN_TYPES)
    if not col.get("type"):
        errs.append(required(f"{path}.type", f"must be one of {types}"))
    elif col["type"] not in PRINTER_COLUMN_TYPES:
        errs.append(invalid(f"{path}.type", col["type"], f"must be one of {types}"))
    fmt = col.get("format")
    if fmt and fmt not in PRINTER_COLUMN_FORMATS:
        errs.append(invalid(f"{path}.format", fmt, "must be one of " + ",".join(PRINTER_COLUMN_FORMATS)))
    json_path = col.get("jsonPath")
    if not json_path:
        errs.append(required(f"{path}.JSONPath"))
    else:
        errs += _validate_simple_json_path(_s(json_path), f"{path}.JSONPath")
    return errs


def _validate_simple_json_path(s: str, path: str) -> list[FieldError]:
    if not s:
        return [invalid(path, s, "must not be empty")]
    if s[0] != ".":
        return [invalid(path, s, "must be a simple json path starting with .")]
    return []


def _validate_subresources(subs: Any, path: str) -> list[FieldError]:
    scale = _d(subs).get("scale")
    if not isinstance(scale, dict):
        return []
    errs: list[FieldError] = []
    for field, prefix, under in (("specReplicasPath", ".spec.", ".spec"),
                                 ("statusReplicasPath", ".status.", ".status")):
        value = _s(scale.get(field))
        if not value:
            errs.append(required(f"{path}.scale.{field}"))
            continue
        bad = _validate_simple_json_path(value, f"{path}.scale.{field}")
        if bad:
            errs += bad
        elif not value.startswith(prefix):
            errs.append(invalid(f"{path}.scale.{field}", value, f"should be a json path under {under}"))
    selector = scale.get("labelSelectorPath")
    if isinstance(selector, str) and selector:
        bad = _validate_simple_json_path(selector, f"{path}.scale.labelSelectorPath")
        if bad:
            errs += bad
        elif not selector.startswith(".spec.") and not selector.startswith(".status."):
            errs.append(invalid(f"{path}.scale.labelSelectorPath", selector,
                                "should be a json path under either .spec or .status"))
    return errs


def _validate_selectable_fields(fields: list, schema: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, f in enumerate(fields):
        p = f"{path}[{i}].jsonPath"
        json_path = _s(_d(f).get("jsonPath"))
        if not json_path:
            errs.append(required(p))
            continue
        parts = json_path.split(".")
        if parts[0] != "" or any(not x for x in parts[1:]) or len(parts) < 2:
            errs.append(invalid(p, json_path, f"is an invalid path: invalid path {json.dumps(json_path)}"))
            continue
        node: dict | None = schema
        for part in parts[1:]:
            node = _d(_d(node).get("properties")).get(part) if node is not None else None
        if parts[1] == "metadata":
            errs.append(invalid(p, json_path, "must not point to fields in metadata"))
        if node is None:
            errs.append(invalid(p, json_path, f"is an invalid path: does not refer to a valid field: {json_path}"))
            continue
        if _d(node).get("type") not in ("string", "boolean", "integer"):
            errs.append(invalid(p, json_path, "must point to a field of type string, boolean or integer. "
                                              "Enum string fields and strings with formats are allowed."))
        if json_path in seen:
            errs.append(duplicate(p, json_path))
        seen.add(json_path)
    if len(seen) > MAX_SELECTABLE_FIELDS:
        errs.append(FieldError("too_many", path, f"must have at most {MAX_SELECTABLE_FIELDS} items", len(seen)))
    return errs


def _validate_conversion(conversion: Any, old_spec: dict | None) -> list[FieldError]:
    if not isinstance(conversion, dict):
        return []
    errs: list[FieldError] = []
    path = "spec.conversion"
    strategy = conversion.get("strategy")
    if not strategy:
        errs.append(required(f"{path}.strategy"))
    elif strategy not in ("None", "Webhook"):
        errs.append(not_supported(f"{path}.strategy", strategy, ["None", "Webhook"]))
    webhook = conversion.get("webhook")
    if strategy == "Webhook":
        webhook = _d(webhook)
        config = webhook.get("clientConfig")
        if not isinstance(config, dict):
            errs.append(required(f"{path}.webhook.clientConfig", "required when strategy is set to Webhook"))
        elif (config.get("url") is None) == (config.get("service") is None):
            errs.append(required(f"{path}.webhook.clientConfig", "exactly one of url or service is required"))
        elif isinstance(config.get("url"), str) and not config["url"].startswith("https://"):
            errs.append(invalid(f"{path}.webhook.clientConfig.url", config["url"], "'https' is the only allowed URL scheme"))
        review = _l(webhook.get("conversionReviewVersions"))
        rpath = f"{path}.webhook.conversionReviewVersions"
        if not review:
            errs.append(required(rpath))
        else:
            seen: set = set()
            for i, rv in enumerate(review):
                if rv in seen:
                    errs.append(invalid(f"{rpath}[{i}]", rv, "duplicate version"))
                    continue
                seen.add(rv)
                for msg in _is_dns1035_label(_s(rv)):
                    errs.append(invalid(f"{rpath}[{i}]", rv, msg))
            old_ok = old_spec is None or _old_review_ok(old_spec)
            if old_ok and not any(rv in ACCEPTED_CONVERSION_REVIEW_VERSIONS for rv in review):
                errs.append(invalid(rpath, review, "must include at least one of v1, v1beta1"))
    elif isinstance(webhook, dict):
        if webhook.get("clientConfig") is not None:
            errs.append(forbidden(f"{path}.webhook.clientConfig", "should not be set when strategy is not set to Webhook"))
        if webhook.get("conversionReviewVersions"):
            errs.append(forbidden(f"{path}.webhook.conversionReviewVersions",
                                  "should not be set when strategy is not set to Webhook"))
    return errs


def _old_review_ok(old_spec: dict) -> bool:
    review = _l(_d(_d(old_spec.get("conversion")).get("webhook")).get("conversionReviewVersions"))
    return not review or any(rv in ACCEPTED_CONVERSION_REVIEW_VERSIONS for rv in review)


# -- schemas ------------------------------------------------------------------------------


def _walk(s: Any, pred) -> bool:
    if not isinstance(s, dict):
        return False
    if pred(s):
        return True
    children: list = []
    items = s.get("items")
    children += items if isinstance(items, list) else [items]
    for key in ("allOf", "anyOf", "oneOf"):
        children += _l(s.get(key))
    children.append(s.get("not"))
    children += list(_d(s.get("properties")).values())
    children.append(s.get("additionalProperties"))
    return any(_walk(c, pred) for c in children)


def _spec_has(internal: _Spec, pred) -> bool:
    schemas = [_d(internal.top_schema).get("openAPIV3Schema")]
    schemas += [_d(v.get("schema")).get("openAPIV3Schema") for v in internal.versions]
    return any(_walk(s, pred) for s in schemas)


def _validate_validation(validation: Any, status_enabled: bool, path: str) -> list[FieldError]:
    schema = _d(validation).get("openAPIV3Schema")
    if not isinstance(schema, dict):
        return []
    errs: list[FieldError] = []
    spath = f"{path}.openAPIV3Schema"
    if status_enabled:
        for key, value in schema.items():
            if value in (None, False, "", [], {}, 0):
                continue
            if key == "type":
                if value != "object":
                    errs.append(invalid(f"{path}.openAPIV3Schema.type", value,
                                        'only "object" is allowed as the type at the root of the schema '
                                        "if the status subresource is enabled"))
                    break
                continue
            if key not in _ROOT_ALLOWED:
                errs.append(invalid(spath, schema, _ROOT_ALLOWED_MESSAGE))
                break
    if schema.get("nullable"):
        errs.append(forbidden(f"{spath}.nullable", "nullable cannot be true at the root"))

    structural = validate_structural(schema, spath)
    if structural:
        errs += structural
    else:
        errs += validate_defaults(schema, spath)
    errs += _validate_openapi(schema, spath, is_root=True, allow_defaults=True, defaults_reason="",
                              inside_meta=False)
    return errs


# structural schema invariants (upstream schema/validation.go and complete.go)

_ROOT, _ITEM, _FIELD = "root", "item", "field"
_VALUE_VALIDATION_KEYS = (
    "format", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength",
    "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties",
    "minProperties", "required", "allOf", "oneOf", "anyOf", "not",
)
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


def validate_structural(schema: dict, path: str) -> list[FieldError]:
    """Structural-schema violations, sorted by message as upstream sorts them."""
    errs = _structural(schema, _ROOT, path)
    errs += _completeness(schema, schema, path, path)
    return sorted(errs, key=lambda e: e.message())


def _is_int_or_string_any_of(s: dict) -> bool:
    return _equal(s.get("anyOf"), _INT_OR_STRING_ANY_OF)


def _is_int_or_string_all_of(s: dict) -> bool:
    all_of = _l(s.get("allOf"))
    return bool(all_of) and _equal(_d(all_of[0]).get("anyOf"), _INT_OR_STRING_ANY_OF)


def _structural(s: Any, lvl: str, path: str) -> list[FieldError]:
    if not isinstance(s, dict):
        return []
    errs: list[FieldError] = []
    stype = s.get("type") or ""
    if stype == "array" and s.get("items") is None:
        errs.append(required(f"{path}.items", "must be specified"))
    if isinstance(s.get("items"), dict):
        errs += _structural(s["items"], _ITEM, f"{path}.items")
    for k, v in _d(s.get("properties")).items():
        errs += _structural(v, _FIELD, f"{path}.properties[{k}]")
    additional = s.get("additionalProperties")
    if additional is not None:
        if lvl == _ROOT:
            errs.append(forbidden(f"{path}.additionalProperties", "must not be used at the root"))
        if isinstance(additional, dict):
            errs += _structural(additional, _FIELD, f"{path}.additionalProperties")

    int_or_string = bool(s.get("x-kubernetes-int-or-string"))
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(s.get("x-kubernetes-embedded-resource"))
    if int_or_string and preserve:
        errs.append(invalid(f"{path}.x-kubernetes-preserve-unknown-fields", True,
                            "must be false if x-kubernetes-int-or-string is true"))
    if int_or_string and embedded:
        errs.append(invalid(f"{path}.x-kubernetes-embedded-resource", True,
                            "must be false if x-kubernetes-int-or-string is true"))

    errs += _value_validation(s, _is_int_or_string_any_of(s), _is_int_or_string_all_of(s), lvl, path)

    check_meta = lvl == _ROOT or embedded
    if embedded and stype != "object":
        if not stype:
            errs.append(required(f"{path}.type", "must be object if x-kubernetes-embedded-resource is true"))
        else:
            errs.append(invalid(f"{path}.type", stype, "must be object if x-kubernetes-embedded-resource is true"))
    elif not stype and not int_or_string and not preserve:
        detail = {_ROOT: "must not be empty at the root", _ITEM: "must not be empty for specified array items",
                  _FIELD: "must not be empty for specified object fields"}[lvl]
        errs.append(required(f"{path}.type", detail))
    if embedded and additional is not None:
        errs.append(forbidden(f"{path}.additionalProperties", "must not be used if x-kubernetes-embedded-resource is set"))
    if lvl == _ROOT and stype and stype != "object":
        errs.append(invalid(f"{path}.type", stype, "must be object at the root"))

    props = _d(s.get("properties"))
    for key in ("kind", "apiVersion"):
        if key in props and check_meta and _d(props[key]).get("type") != "string":
            errs.append(invalid(f"{path}.properties[{key}].type", _d(props[key]).get("type", ""), "must be string"))
    if "metadata" in props:
        errs += _structural_metadata(_d(props["metadata"]), check_meta, lvl, f"{path}.properties[metadata]")
    if embedded and not preserve and not props:
        errs.append(required(f"{path}.properties", "must not be empty if x-kubernetes-embedded-resource is true "
                                                    "without x-kubernetes-preserve-unknown-fields"))
    return errs


def _structural_metadata(s: dict, check_meta: bool, lvl: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if check_meta and s.get("type") != "object":
        errs.append(invalid(f"{path}.type", s.get("type", ""), "must be object"))
    if lvl == _ROOT:
        rest = {k: v for k, v in s.items() if k not in ("type", "default")}
        props = _d(rest.get("properties"))
        if props and set(props) <= {"name", "generateName"}:
            rest.pop("properties")
        if any(v not in (None, False, "", [], {}) for v in rest.values()):
            errs.append(forbidden(path, "must not specify anything other than name and generateName, but "
                                        "metadata is implicitly specified"))
    return errs


def _value_validation(s: dict, skip_any_of: bool, skip_first_all_of_any_of: bool, lvl: str,
                      path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not skip_any_of:
        for i, sub in enumerate(_l(s.get("anyOf"))):
            errs += _nested(sub, False, lvl, f"{path}.anyOf[{i}]")
    for i, sub in enumerate(_l(s.get("allOf"))):
        errs += _nested(sub, skip_first_all_of_any_of and i == 0, lvl, f"{path}.allOf[{i}]")
    for i, sub in enumerate(_l(s.get("oneOf"))):
        errs += _nested(sub, False, lvl, f"{path}.oneOf[{i}]")
    if s.get("not") is not None:
        errs += _nested(s.get("not"), False, lvl, f"{path}.not")
    pattern = s.get("pattern")
    if isinstance(pattern, str) and pattern:
        try:
            re.compile(pattern)
        except re.error as e:
            errs.append(invalid(f"{path}.pattern", pattern,
                                f"must be a valid regular expression, but isn't: error parsing regexp: {e}"))
    return errs


_NESTED_FORBIDDEN = (
    ("type", "must be empty to be structural"),
    ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("externalDocs", "must be undefined to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)


def _nested(v: Any, skip_any_of: bool, lvl: str, path: str) -> list[FieldError]:
    if not isinstance(v, dict):
        return []
    errs = _value_validation(v, skip_any_of, False, lvl, path)
    if isinstance(v.get("items"), dict):
        errs += _nested(v["items"], False, lvl, f"{path}.items")
    for k, sub in _d(v.get("properties")).items():
        errs += _nested(sub, False, _FIELD, f"{path}.properties[{k}]")
    for key, detail in _NESTED_FORBIDDEN:
        value = v.get(key)
        if key == "default":
            present = value is not None
        elif key == "additionalProperties":
            present = key in v and value is not None
        else:
            present = value not in (None, False, "", [], {})
        if present:
            errs.append(forbidden(f"{path}.{key}", detail))
    if "metadata" in _d(v.get("properties")):
        errs.append(forbidden(f"{path}.properties[metadata]", "must not be specified in a nested context"))
    return errs


def _completeness(v: Any, s: Any, s_path: str, v_path: str) -> list[FieldError]:
    """Every field or item named inside allOf/anyOf/oneOf/not must be specified structurally."""
    if not isinstance(v, dict):
        return []
    errs: list[FieldError] = []
    for key in ("not",):
        if isinstance(v.get(key), dict):
            errs += _nested_completeness(v[key], s, s_path, f"{v_path}.{key}")
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(_l(v.get(key))):
            errs += _nested_completeness(sub, s, s_path, f"{v_path}.{key}[{i}]")
    return errs


def _nested_completeness(v: Any, s: Any, s_path: str, v_path: str) -> list[FieldError]:
    if not isinstance(v, dict):
        return []
    if not isinstance(s, dict):
        return [required(s_path, f"because it is defined in {v_path}")]
    errs = _completeness(v, s, s_path, v_path)
    if isinstance(v.get("items"), dict):
        items = s.get("items") if isinstance(s.get("items"), dict) else None
        if items is None:
            errs.append(required(f"{s_path}.items", f"because it is defined in {v_path}.items"))
        else:
            errs += _nested_completeness(v["items"], items, f"{s_path}.items", f"{v_path}.items")
    s_props = _d(s.get("properties"))
    for k, sub in _d(v.get("properties")).items():
        if k not in s_props:
            errs.append(required(f"{s_path}.properties[{k}]", f"because it is defined in {v_path}.properties[{k}]"))
        else:
            errs += _nested_completeness(sub, s_props[k], f"{s_path}.properties[{k}]", f"{v_path}.properties[{k}]")
    return errs


# defaults must validate against their schema and must survive pruning


def validate_defaults(schema: dict, path: str) -> list[FieldError]:
    return _defaults(schema, path, inside_meta=False, embedded_root=True)


def _defaults(s: Any, path: str, inside_meta: bool, embedded_root: bool) -> list[FieldError]:
    if not isinstance(s, dict):
        return []
    errs: list[FieldError] = []
    if "default" in s and s["default"] is not None and not inside_meta:
        default = s["default"]
        if isinstance(default, (dict, list)) and crschema.prune_value(copy.deepcopy(default), s):
            errs.append(invalid(f"{path}.default", default, "must not have unknown fields"))
        errs += crschema.validate(default, s, prefix=f"{path}.default")
    if isinstance(s.get("items"), dict):
        errs += _defaults(s["items"], f"{path}.items", inside_meta, False)
    embedded = embedded_root or bool(s.get("x-kubernetes-embedded-resource"))
    for k, sub in _d(s.get("properties")).items():
        errs += _defaults(sub, f"{path}.properties[{k}]", inside_meta or (embedded and k in crschema.META_FIELDS),
                          False)
    return errs


# OpenAPI schema checks (upstream ValidateCustomResourceDefinitionOpenAPISchema)


def _validate_openapi(s: Any, path: str, is_root: bool, allow_defaults: bool, defaults_reason: str,
                      inside_meta: bool) -> list[FieldError]:
    if not isinstance(s, dict):
        return []
    errs: list[FieldError] = []
    stype = s.get("type")
    if stype and stype not in OPENAPI_TYPES:
        errs.append(not_supported(f"{path}.type", stype, list(OPENAPI_TYPES)))
    if "default" in s and s["default"] is not None and not allow_defaults:
        detail = "must not be set" + (" " + defaults_reason if defaults_reason else "")
        errs.append(forbidden(f"{path}.default", detail))
    for key, what in (("id", "id"), ("additionalItems", "additionalItems"), ("patternProperties", "patternProperties"),
                      ("definitions", "definitions"), ("dependencies", "dependencies"), ("$ref", "$ref")):
        if s.get(key) not in (None, "", {}):
            errs.append(forbidden(f"{path}.{key}", f"{what} is not supported"))
    if stype == "null":
        errs.append(forbidden(f"{path}.type", "type cannot be set to null, use nullable as an alternative"))
    if isinstance(s.get("items"), list) and s["items"]:
        errs.append(forbidden(f"{path}.items", "items must be a schema object and not an array"))
    if inside_meta and s.get("x-kubernetes-embedded-resource"):
        errs.append(forbidden(f"{path}.x-kubernetes-embedded-resource", "must not be used inside of resource meta"))
    if s.get("uniqueItems") is True:
        errs.append(forbidden(f"{path}.uniqueItems",
                              "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"))

    props = _d(s.get("properties"))
    additional = s.get("additionalProperties")
    if additional is not None:
        if props and (additional is False or isinstance(additional, dict)):
            errs.append(forbidden(f"{path}.additionalProperties", "additionalProperties and properties are mutual exclusive"))
        sub_allow, sub_reason = allow_defaults, defaults_reason
        if inside_meta:
            sub_allow, sub_reason = False, "inside additionalProperties applying to object metadata"
        errs += _validate_openapi(additional, f"{path}.additionalProperties", False, sub_allow, sub_reason, inside_meta)
    embedded = bool(s.get("x-kubernetes-embedded-resource"))
    for k, sub in props.items():
        sub_allow, sub_reason, sub_meta = allow_defaults, defaults_reason, inside_meta
        if (is_root or embedded) and k in crschema.META_FIELDS:
            sub_meta = True
            if is_root:
                sub_allow, sub_reason = False, f"in top-level {k}"
        errs += _validate_openapi(sub, f"{path}.properties[{k}]", False, sub_allow, sub_reason, sub_meta)
    if s.get("not") is not None:
        errs += _validate_openapi(s.get("not"), f"{path}.not", False, allow_defaults, defaults_reason, inside_meta)
    for key in ("allOf", "oneOf", "anyOf"):
        for i, sub in enumerate(_l(s.get(key))):
            errs += _validate_openapi(sub, f"{path}.{key}[{i}]", False, allow_defaults, defaults_reason, inside_meta)
    items = s.get("items")
    if isinstance(items, dict):
        errs += _validate_openapi(items, f"{path}.items", False, allow_defaults, defaults_reason, inside_meta)

    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        errs.append(invalid(f"{path}.x-kubernetes-preserve-unknown-fields", False, "must be true or undefined"))
    map_type = s.get("x-kubernetes-map-type")
    if map_type is not None:
        if stype != "object":
            detail = "must be object if x-kubernetes-map-type is specified"
            errs.append(required(f"{path}.type", detail) if not stype else invalid(f"{path}.type", stype, detail))
        if map_type not in ("atomic", "granular"):
            errs.append(not_supported(f"{path}.x-kubernetes-map-type", map_type, ["atomic", "granular"]))
    list_type = s.get("x-kubernetes-list-type")
    if list_type is not None and stype != "array":
        detail = "must be array if x-kubernetes-list-type is specified"
        errs.append(required(f"{path}.type", detail) if not stype else invalid(f"{path}.type", stype, detail))
    elif list_type == "set" and isinstance(items, dict):
        if items.get("type") == "array" and items.get("x-kubernetes-list-type") not in (None, "atomic"):
            errs.append(invalid(f"{path}.items.x-kubernetes-list-type", items.get("x-kubernetes-list-type"),
                                "must be atomic as item of a list with x-kubernetes-list-type=set"))
        if items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
            errs.append(invalid(f"{path}.items.x-kubernetes-map-type", items.get("x-kubernetes-map-type"),
                                "must be atomic as item of a list with x-kubernetes-list-type=set"))
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        errs.append(not_supported(f"{path}.x-kubernetes-list-type", list_type, ["atomic", "set", "map"]))
    keys = _l(s.get("x-kubernetes-list-map-keys"))
    if keys:
        if list_type is None:
            errs.append(required(f"{path}.x-kubernetes-list-type", "must be map if x-kubernetes-list-map-keys is non-empty"))
        elif list_type != "map":
            errs.append(invalid(f"{path}.x-kubernetes-list-type", list_type,
                                "must be map if x-kubernetes-list-map-keys is non-empty"))
    if list_type == "map":
        errs += _validate_list_map(s, keys, items, path)
    if list_type in ("set", "map") and isinstance(items, dict):
        errs += _validate_map_list_keys(s, keys, items, list_type, path)
    for i, rule in enumerate(_l(s.get("x-kubernetes-validations"))):
        errs += _validate_rule(_d(rule), f"{path}.x-kubernetes-validations[{i}]")
    return errs


def _validate_list_map(s: dict, keys: list, items: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not keys:
        errs.append(required(f"{path}.x-kubernetes-list-map-keys", "must not be empty if x-kubernetes-list-type is map"))
    if items is None:
        errs.append(required(f"{path}.items", "must have a schema if x-kubernetes-list-type is map"))
    elif not isinstance(items, dict):
        errs.append(invalid(f"{path}.items", items, "must only have a single schema if x-kubernetes-list-type is map"))
    elif items.get("type") != "object":
        errs.append(invalid(f"{path}.items.type", items.get("type", ""),
                            "must be object if parent array's x-kubernetes-list-type is map"))
    else:
        seen: set = set()
        item_props = _d(items.get("properties"))
        for k in keys:
            if k in item_props:
                if _d(item_props[k]).get("type") in ("array", "object"):
                    errs.append(invalid(f"{path}.items.properties[{k}].type", items.get("type"),
                                        "must be a scalar type if parent array's x-kubernetes-list-type is map"))
            else:
                errs.append(invalid(f"{path}.x-kubernetes-list-map-keys", keys,
                                    "entries must all be names of item properties"))
            if k in seen:
                errs.append(invalid(f"{path}.x-kubernetes-list-map-keys", keys, "must not contain duplicate entries"))
            seen.add(k)
    return errs


def _validate_map_list_keys(s: dict, keys: list, items: dict, list_type: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if items.get("nullable"):
        errs.append(forbidden(f"{path}.items.nullable", "cannot be nullable when x-kubernetes-list-type is " + list_type))
    if list_type == "map":
        req = set(_l(items.get("required")))
        item_props = _d(items.get("properties"))
        for k in keys:
            if k not in item_props:
                continue
            prop = _d(item_props[k])
            if k not in req and prop.get("default") is None:
                errs.append(required(f"{path}.items.properties[{k}].default",
                                     "this property is in x-kubernetes-list-map-keys, so it must have a default "
                                     "or be a required property"))
            if prop.get("nullable"):
                errs.append(forbidden(f"{path}.items.properties[{k}].nullable",
                                      "this property is in x-kubernetes-list-map-keys, so it cannot be nullable"))
    return errs


def _validate_rule(rule: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    text = _s(rule.get("rule")).strip()
    message = _s(rule.get("message"))
    if not text:
        errs.append(required(f"{path}.rule", "rule is not specified"))
    elif message and not message.strip():
        errs.append(invalid(f"{path}.message", message, "message must be non-empty if specified"))
    elif re.search(r"[\n\r]", message.strip()):
        errs.append(invalid(f"{path}.message", message, "message must not contain line breaks"))
    elif re.search(r"[\n\r]", text) and not message.strip():
        errs.append(required(f"{path}.message", "message must be specified if rule contains line breaks"))
    expr = _s(rule.get("messageExpression"))
    if expr and not expr.strip():
        errs.append(required(f"{path}.messageExpression", "messageExpression must be non-empty if specified"))
    reason = rule.get("reason")
    allowed = ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"]
    if reason is not None and reason not in allowed:
        errs.append(not_supported(f"{path}.reason", reason, allowed))
    return errs
