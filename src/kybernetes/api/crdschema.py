"""Structural schemas of CRDs: the checks upstream's `schema/validation.go` and `complete.go` make.

A CRD's openAPIV3Schema must be structural (types everywhere, no value validations in
places that would make pruning ambiguous), complete, and its defaults must validate.
`validate_validation` is what `crd.py` calls for each version's schema.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from . import celrules, crschema
from .errors import FieldError, duplicate, forbidden, invalid, not_supported, required

OPENAPI_TYPES = ("array", "boolean", "integer", "number", "object", "string")
MAX_SELECTABLE_FIELDS = 8
# fields the root schema may carry when the status subresource is enabled (upstream's
# allowedFieldsAtRootSchema, by JSON name; the message shows the Go names)
ROOT_ALLOWED = {
    "description": "Description", "type": "Type", "format": "Format", "title": "Title",
    "maximum": "Maximum", "exclusiveMaximum": "ExclusiveMaximum", "minimum": "Minimum",
    "exclusiveMinimum": "ExclusiveMinimum", "maxLength": "MaxLength", "minLength": "MinLength",
    "pattern": "Pattern", "maxItems": "MaxItems", "minItems": "MinItems", "uniqueItems": "UniqueItems",
    "multipleOf": "MultipleOf", "required": "Required", "items": "Items", "properties": "Properties",
    "externalDocs": "ExternalDocs", "example": "Example",
    "x-kubernetes-preserve-unknown-fields": "XPreserveUnknownFields",
    "x-kubernetes-validations": "XValidations",
}
ROOT_ALLOWED_MESSAGE = (
    "only [" + " ".join(ROOT_ALLOWED.values()) + "] fields are allowed at the root of the schema "
    "if the status subresource is enabled"
)


def as_dict(x: Any) -> dict:
    return x if isinstance(x, dict) else {}


def as_list(x: Any) -> list:
    return x if isinstance(x, list) else []


def as_str(x: Any) -> str:
    return x if isinstance(x, str) else ""


def json_equal(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def validate_validation(validation: Any, status_enabled: bool, path: str) -> list[FieldError]:
    schema = as_dict(validation).get("openAPIV3Schema")
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
            if key not in ROOT_ALLOWED:
                errs.append(invalid(spath, schema, ROOT_ALLOWED_MESSAGE))
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
    return json_equal(s.get("anyOf"), _INT_OR_STRING_ANY_OF)


def _is_int_or_string_all_of(s: dict) -> bool:
    all_of = as_list(s.get("allOf"))
    return bool(all_of) and json_equal(as_dict(all_of[0]).get("anyOf"), _INT_OR_STRING_ANY_OF)


def _structural(s: Any, lvl: str, path: str) -> list[FieldError]:
    if not isinstance(s, dict):
        return []
    errs: list[FieldError] = []
    stype = s.get("type") or ""
    if stype == "array" and s.get("items") is None:
        errs.append(required(f"{path}.items", "must be specified"))
    if isinstance(s.get("items"), dict):
        errs += _structural(s["items"], _ITEM, f"{path}.items")
    for k, v in as_dict(s.get("properties")).items():
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

    props = as_dict(s.get("properties"))
    for key in ("kind", "apiVersion"):
        if key in props and check_meta and as_dict(props[key]).get("type") != "string":
            errs.append(invalid(f"{path}.properties[{key}].type", as_dict(props[key]).get("type", ""), "must be string"))
    if "metadata" in props:
        errs += _structural_metadata(as_dict(props["metadata"]), check_meta, lvl, f"{path}.properties[metadata]")
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
        props = as_dict(rest.get("properties"))
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
        for i, sub in enumerate(as_list(s.get("anyOf"))):
            errs += _nested(sub, False, lvl, f"{path}.anyOf[{i}]")
    for i, sub in enumerate(as_list(s.get("allOf"))):
        errs += _nested(sub, skip_first_all_of_any_of and i == 0, lvl, f"{path}.allOf[{i}]")
    for i, sub in enumerate(as_list(s.get("oneOf"))):
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
    for k, sub in as_dict(v.get("properties")).items():
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
    if "metadata" in as_dict(v.get("properties")):
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
        for i, sub in enumerate(as_list(v.get(key))):
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
    s_props = as_dict(s.get("properties"))
    for k, sub in as_dict(v.get("properties")).items():
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
    for k, sub in as_dict(s.get("properties")).items():
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

    props = as_dict(s.get("properties"))
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
        for i, sub in enumerate(as_list(s.get(key))):
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
    keys = as_list(s.get("x-kubernetes-list-map-keys"))
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
    for i, rule in enumerate(as_list(s.get("x-kubernetes-validations"))):
        errs += _validate_rule(as_dict(rule), f"{path}.x-kubernetes-validations[{i}]")
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
        item_props = as_dict(items.get("properties"))
        for k in keys:
            if k in item_props:
                if as_dict(item_props[k]).get("type") in ("array", "object"):
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
        req = set(as_list(items.get("required")))
        item_props = as_dict(items.get("properties"))
        for k in keys:
            if k not in item_props:
                continue
            prop = as_dict(item_props[k])
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
    text = as_str(rule.get("rule")).strip()
    message = as_str(rule.get("message"))
    if not text:
        errs.append(required(f"{path}.rule", "rule is not specified"))
    elif message and not message.strip():
        errs.append(invalid(f"{path}.message", message, "message must be non-empty if specified"))
    elif re.search(r"[\n\r]", message.strip()):
        errs.append(invalid(f"{path}.message", message, "message must not contain line breaks"))
    elif re.search(r"[\n\r]", text) and not message.strip():
        errs.append(required(f"{path}.message", "message must be specified if rule contains line breaks"))
    expr = as_str(rule.get("messageExpression"))
    if expr and not expr.strip():
        errs.append(required(f"{path}.messageExpression", "messageExpression must be non-empty if specified"))
    reason = rule.get("reason")
    allowed = ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"]
    if reason is not None and reason not in allowed:
        errs.append(not_supported(f"{path}.reason", reason, allowed))
    if text and not errs:  # what would fail on every object is refused with the CRD, as upstream
        for field, source in (("rule", text), ("messageExpression", expr.strip())):
            problem = celrules.compile_error(source) if source else ""
            if problem:
                errs.append(invalid(f"{path}.{field}", source, f"compilation failed: {problem}"))
    return errs


def validate_selectable_fields(fields: list, schema: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, f in enumerate(fields):
        p = f"{path}[{i}].jsonPath"
        json_path = as_str(as_dict(f).get("jsonPath"))
        if not json_path:
            errs.append(required(p))
            continue
        parts = json_path.split(".")
        if parts[0] != "" or any(not x for x in parts[1:]) or len(parts) < 2:
            errs.append(invalid(p, json_path, f"is an invalid path: invalid path {json.dumps(json_path)}"))
            continue
        node: dict | None = schema
        for part in parts[1:]:
            node = as_dict(as_dict(node).get("properties")).get(part) if node is not None else None
        if parts[1] == "metadata":
            errs.append(invalid(p, json_path, "must not point to fields in metadata"))
        if node is None:
            errs.append(invalid(p, json_path, f"is an invalid path: does not refer to a valid field: {json_path}"))
            continue
        if as_dict(node).get("type") not in ("string", "boolean", "integer"):
            errs.append(invalid(p, json_path, "must point to a field of type string, boolean or integer. "
                                              "Enum string fields and strings with formats are allowed."))
        if json_path in seen:
            errs.append(duplicate(p, json_path))
        seen.add(json_path)
    if len(seen) > MAX_SELECTABLE_FIELDS:
        errs.append(FieldError("too_many", path, f"must have at most {MAX_SELECTABLE_FIELDS} items", len(seen)))
    return errs
