"""CustomResourceDefinitions (apiextensions.k8s.io/v1): defaults, validation, status, serving.

Validation follows upstream's `apiextensions/validation` on the internal form of the
CRD: like upstream's v1 conversion, a per-version schema, subresources or printer
columns that are identical in every version are checked as the top-level field, so a
one-version CRD reports `spec.validation.openAPIV3Schema...`,
`spec.subresources.scale...` and `spec.additionalPrinterColumns[0]...` exactly as a
real API server does. Schemas must be structural (upstream `schema/validation.go` and
`complete.go`) and defaults must validate against them.

CEL rules in `x-kubernetes-validations` must compile (`celrules`); the caBundle of
conversion webhooks is not checked.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from .crdschema import as_dict, as_list, as_str, json_equal, validate_selectable_fields, validate_validation
from .errors import FieldError, forbidden, invalid, not_supported, required
from .resources import ALL_VERBS, ResourceType, Subresource
from .validation.meta import is_dns1035_label, is_dns1123_subdomain

GROUP = "apiextensions.k8s.io"
STATUS_SUBRESOURCE = Subresource("status")
SCALE_SUBRESOURCE = Subresource("scale", ("get", "patch", "update"), "autoscaling", "v1", "Scale")

PRINTER_COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
PRINTER_COLUMN_FORMATS = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")
ACCEPTED_CONVERSION_REVIEW_VERSIONS = ("v1", "v1beta1")
API_APPROVAL_ANNOTATION = "api-approved.kubernetes.io"

# ---------------------------------------------------------------------------------------
# lookups


def versions(crd: dict) -> list[dict]:
    return [v for v in as_list(as_dict(crd.get("spec")).get("versions")) if isinstance(v, dict)]


def version_of(crd: dict, version: str) -> dict | None:
    for v in versions(crd):
        if v.get("name") == version:
            return v
    return None


def storage_version(crd: dict) -> str | None:
    for v in versions(crd):
        if v.get("storage"):
            return as_str(v.get("name")) or None
    return None


def served_versions(crd: dict) -> list[str]:
    return [as_str(v.get("name")) for v in versions(crd) if v.get("served") and v.get("name")]


def condition(crd: dict, type_: str) -> dict | None:
    for c in as_list(as_dict(crd.get("status")).get("conditions")):
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
    schema = as_dict(v.get("schema")).get("openAPIV3Schema")
    return schema if isinstance(schema, dict) else None


def printer_columns(crd: dict, version: str) -> list[dict]:
    """The additionalPrinterColumns declared for a version (a copy; empty when none).

    Upstream prints `Name` first and, when a version declares no columns, an `Age`
    column from `.metadata.creationTimestamp`; that is the table printer's business.
    """
    v = version_of(crd, version)
    if v is None:
        return []
    return [dict(c) for c in as_list(v.get("additionalPrinterColumns")) if isinstance(c, dict)]


def resource_types_for(crd: dict) -> list[ResourceType]:
    """One ResourceType per served version, in spec order."""
    spec = as_dict(crd.get("spec"))
    names = as_dict(spec.get("names"))
    out = []
    for v in versions(crd):
        if not v.get("served") or not v.get("name"):
            continue
        subs = as_dict(v.get("subresources"))
        subresources = []
        if "scale" in subs and subs["scale"] is not None:
            subresources.append(SCALE_SUBRESOURCE)
        if "status" in subs and subs["status"] is not None:
            subresources.append(STATUS_SUBRESOURCE)
        out.append(ResourceType(
            group=as_str(spec.get("group")),
            version=v["name"],
            kind=as_str(names.get("kind")),
            plural=as_str(names.get("plural")),
            namespaced=spec.get("scope") == "Namespaced",
            short_names=tuple(as_str(x) for x in as_list(names.get("shortNames"))),
            categories=tuple(as_str(x) for x in as_list(names.get("categories"))),
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
        kind = as_str(names.get("kind"))
        if not names.get("singular") and kind:
            names["singular"] = kind.lower()
        if not names.get("listKind") and kind:
            names["listKind"] = kind + "List"
    conversion = spec.get("conversion")
    if conversion is None:
        spec["conversion"] = {"strategy": "None"}
    elif isinstance(conversion, dict):
        service = as_dict(as_dict(conversion.get("webhook")).get("clientConfig")).get("service")
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
    spec = as_dict(obj.get("spec"))
    group = spec.get("group")
    requested = as_dict(spec.get("names"))
    name = as_dict(obj.get("metadata")).get("name")
    resources: set[str] = set()
    kinds: set[str] = set()
    for other in existing_crds:
        if not isinstance(other, dict) or as_dict(other.get("spec")).get("group") != group:
            continue
        if name and as_dict(other.get("metadata")).get("name") == name:
            continue
        acc = as_dict(as_dict(other.get("status")).get("acceptedNames"))
        resources.update(x for x in (acc.get("plural"), acc.get("singular")) if isinstance(x, str) and x)
        resources.update(x for x in as_list(acc.get("shortNames")) if isinstance(x, str))
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
    short = [x for x in as_list(requested.get("shortNames")) if isinstance(x, str)]
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
        accepted["categories"] = list(as_list(requested.get("categories")))

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
        self.versions = [v if isinstance(v, dict) else {} for v in as_list(spec.get("versions"))]
        vs = self.versions

        def identical(key: str, empty: Any) -> bool:
            if not vs:
                return False
            first = vs[0].get(key, empty) or empty
            return all(json_equal(v.get(key, empty) or empty, first) for v in vs)

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
            self.top_columns = as_list(vs[0].get("additionalPrinterColumns"))
            self.per_version_columns = False

    def subresources_for(self, v: dict) -> dict | None:
        subs = v.get("subresources") if self.per_version_subresources else self.top_subresources
        return subs if isinstance(subs, dict) else None

    def any_status(self) -> bool:
        if _status_enabled(self.top_subresources):
            return True
        return any(_status_enabled(v.get("subresources")) for v in self.versions)


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
    return validate_names(as_dict(as_dict(new.get("status")).get("acceptedNames")), "status.acceptedNames")


def _validate(obj: dict, old: dict | None) -> list[FieldError]:
    errs: list[FieldError] = []
    meta = as_dict(obj.get("metadata"))
    spec = as_dict(obj.get("spec"))
    names = as_dict(spec.get("names"))
    name = as_str(meta.get("name"))
    if name:
        msgs = is_dns1123_subdomain(name)
        if name != f"{as_str(names.get('plural'))}.{as_str(spec.get('group'))}":
            msgs.append('must be spec.names.plural+"."+spec.group')
        errs += [invalid("metadata.name", name, m) for m in msgs]
    old_spec = as_dict(old.get("spec")) if old is not None else None
    errs += _validate_spec(spec, old_spec, old)
    if old is not None:
        errs += _validate_update(spec, old_spec or {}, old)
    status = as_dict(obj.get("status"))
    errs += validate_names(as_dict(status.get("acceptedNames")), "status.acceptedNames")
    errs += _validate_stored_versions(status.get("storedVersions"), spec)
    errs += _validate_api_approval(obj, old)
    errs += _validate_preserve_unknown_fields(obj, old)
    return errs


def _validate_update(spec: dict, old_spec: dict, old: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    old_names = as_dict(old_spec.get("names"))
    names = as_dict(spec.get("names"))
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
    stored = [x for x in as_list(stored)]
    if not stored:
        return [invalid(path, stored, "must have at least one stored version")]
    errs: list[FieldError] = []
    index = {v: i for i, v in enumerate(stored)}
    for v in as_list(spec.get("versions")):
        v = as_dict(v)
        if v.get("storage") and v.get("name") not in index:
            errs.append(invalid(path, stored, "must have the storage version " + as_str(v.get("name"))))
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
    group = as_str(as_dict(obj.get("spec")).get("group"))
    if not _protected_group(group):
        return []
    annotations = as_dict(as_dict(obj.get("metadata")).get("annotations"))
    if API_APPROVAL_ANNOTATION in annotations:
        return []
    return [required(
        f"metadata.annotations[{API_APPROVAL_ANNOTATION}]",
        f'protected groups must have approval annotation "{API_APPROVAL_ANNOTATION}", see '
        "https://github.com/kubernetes/enhancements/pull/1111")]


def _validate_preserve_unknown_fields(obj: dict, old: dict | None) -> list[FieldError]:
    if old is not None and as_dict(old.get("spec")).get("preserveUnknownFields") is True:
        return []
    if as_dict(obj.get("spec")).get("preserveUnknownFields") is True:
        return [invalid("spec.preserveUnknownFields", True,
                        "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in "
                        "spec.versions[*].schema instead")]
    return []


def _validate_spec(spec: dict, old_spec: dict | None, old: dict | None) -> list[FieldError]:
    errs: list[FieldError] = []
    group = as_str(spec.get("group"))
    if not group:
        errs.append(required("spec.group"))
    elif msgs := is_dns1123_subdomain(group):
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
    top_has_schema = isinstance(as_dict(internal.top_schema).get("openAPIV3Schema"), dict)
    if not top_has_schema:
        for i, v in enumerate(vs):
            has = isinstance(as_dict(v.get("schema")).get("openAPIV3Schema"), dict)
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
        if msgs := is_dns1035_label(as_str(vname)):
            errs.append(invalid(f"spec.versions[{i}].name", vname, ",".join(msgs)))
        errs += _validate_version(internal, v, f"spec.versions[{i}]")

    if not unique:
        errs.append(invalid("spec.versions", vs, "must contain unique version names"))
    if storage != 1:
        errs.append(invalid("spec.versions", vs, "must have exactly one version marked as storage version"))

    names = as_dict(spec.get("names"))
    for field in ("plural", "singular", "kind", "listKind"):
        if not names.get(field):
            errs.append(required(f"spec.names.{field}"))
    errs += validate_names(names, "spec.names")

    if internal.top_schema is not None:
        errs += validate_validation(internal.top_schema, internal.any_status(), "spec.validation")
    errs += _validate_subresources(internal.top_subresources, "spec.subresources")
    for i, col in enumerate(internal.top_columns):
        errs += _validate_column(as_dict(col), f"spec.additionalPrinterColumns[{i}]")
    errs += _validate_conversion(spec.get("conversion"), old_spec)
    return errs


def _all_versions_have_schema(spec: dict) -> bool:
    return all(isinstance(as_dict(as_dict(v).get("schema")).get("openAPIV3Schema"), dict) for v in as_list(spec.get("versions")))


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
        errs += validate_validation(v.get("schema"), _status_enabled(internal.subresources_for(v)),
                                     f"{path}.schema")
    if internal.per_version_subresources:
        errs += _validate_subresources(v.get("subresources"), f"{path}.subresources")
    if internal.per_version_columns:
        for i, col in enumerate(as_list(v.get("additionalPrinterColumns"))):
            errs += _validate_column(as_dict(col), f"{path}.additionalPrinterColumns[{i}]")
    selectable = as_list(v.get("selectableFields"))
    if selectable:
        schema = schema_for({"spec": {"versions": [v]}}, as_str(v.get("name"))) if v.get("name") else None
        if schema is None and internal.top_schema is not None:
            schema = as_dict(internal.top_schema).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            errs.append(invalid(f"{path}.selectableFields", "",
                                "selectableFields may only be set when version.schema.openAPIV3Schema is not included"))
        else:
            errs += validate_selectable_fields(selectable, schema, f"{path}.selectableFields")
    return errs


def validate_names(names: dict, path: str) -> list[FieldError]:
    """Upstream's ValidateCustomResourceDefinitionNames (spec.names and status.acceptedNames)."""
    errs: list[FieldError] = []
    for field in ("plural", "singular"):
        value = as_str(names.get(field))
        if value and (msgs := is_dns1035_label(value)):
            errs.append(invalid(f"{path}.{field}", value, ",".join(msgs)))
    for field in ("kind", "listKind"):
        value = as_str(names.get(field))
        if value and (msgs := is_dns1035_label(value.lower())):
            errs.append(invalid(f"{path}.{field}", value, "may have mixed case, but should otherwise match: "
                                + ",".join(msgs)))
    for i, short in enumerate(as_list(names.get("shortNames"))):
        if msgs := is_dns1035_label(as_str(short)):
            errs.append(invalid(f"{path}.shortNames[{i}]", short, ",".join(msgs)))
    kind = names.get("kind")
    if kind and kind == names.get("listKind"):
        errs.append(invalid(f"{path}.listKind", names.get("listKind"), "kind and listKind may not be the same"))
    for i, category in enumerate(as_list(names.get("categories"))):
        if msgs := is_dns1035_label(as_str(category)):
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
        errs += _validate_simple_json_path(as_str(json_path), f"{path}.JSONPath")
    return errs


def _validate_simple_json_path(s: str, path: str) -> list[FieldError]:
    if not s:
        return [invalid(path, s, "must not be empty")]
    if s[0] != ".":
        return [invalid(path, s, "must be a simple json path starting with .")]
    return []


def _validate_subresources(subs: Any, path: str) -> list[FieldError]:
    scale = as_dict(subs).get("scale")
    if not isinstance(scale, dict):
        return []
    errs: list[FieldError] = []
    for field, prefix, under in (("specReplicasPath", ".spec.", ".spec"),
                                 ("statusReplicasPath", ".status.", ".status")):
        value = as_str(scale.get(field))
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
        webhook = as_dict(webhook)
        config = webhook.get("clientConfig")
        if not isinstance(config, dict):
            errs.append(required(f"{path}.webhook.clientConfig", "required when strategy is set to Webhook"))
        elif (config.get("url") is None) == (config.get("service") is None):
            errs.append(required(f"{path}.webhook.clientConfig", "exactly one of url or service is required"))
        elif isinstance(config.get("url"), str) and not config["url"].startswith("https://"):
            errs.append(invalid(f"{path}.webhook.clientConfig.url", config["url"], "'https' is the only allowed URL scheme"))
        review = as_list(webhook.get("conversionReviewVersions"))
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
                for msg in is_dns1035_label(as_str(rv)):
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
    review = as_list(as_dict(as_dict(old_spec.get("conversion")).get("webhook")).get("conversionReviewVersions"))
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
        children += as_list(s.get(key))
    children.append(s.get("not"))
    children += list(as_dict(s.get("properties")).values())
    children.append(s.get("additionalProperties"))
    return any(_walk(c, pred) for c in children)


def _spec_has(internal: _Spec, pred) -> bool:
    schemas = [as_dict(internal.top_schema).get("openAPIV3Schema")]
    schemas += [as_dict(v.get("schema")).get("openAPIV3Schema") for v in internal.versions]
    return any(_walk(s, pred) for s in schemas)
