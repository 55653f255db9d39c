"""Custom resources against their version's structural schema (openAPIV3Schema).

What the apiextensions-apiserver does to a custom object, in the same order and with
the same words:

* `prune` drops fields the schema does not specify, except under
  `x-kubernetes-preserve-unknown-fields`; `apiVersion`, `kind` and `metadata` are never
  pruned at the root or in an `x-kubernetes-embedded-resource` (upstream `pruning`).
  It returns the dropped paths (`spec.foo`, `spec.items[0].bar`), which is what
  fieldValidation=Strict reports as `unknown field "spec.foo"`.
* `apply_defaults` removes non-nullable nulls that have no default, then fills absent
  fields from the `default` keyword, recursively through properties, array items and
  additionalProperties (upstream `defaulting`).
* `validate` is OpenAPI v3 validation as kube-openapi reports it, turned into field
  errors the way `kubeOpenAPIResultToFieldErrors` does
  (`spec.replicas: Invalid value: "string": spec.replicas in body must be of type
  integer: "string"`), plus the uniqueness of `x-kubernetes-list-type` set/map lists.

`x-kubernetes-validations` (CEL rules) are evaluated apart, by `celrules`. The
numeric `format`s (int32, int64, float, double) are not range-checked, which matches
kube-openapi's schema validator (it never range-checks schema numbers). String formats
are checked for the common ones (date-time, date, uuid, ipv4, ipv6, cidr, mac, hostname,
email, byte, duration); unknown formats are accepted, as upstream ignores them.
"""

from __future__ import annotations

import base64
import copy
import datetime
import ipaddress
import json
import re
from typing import Any

from .errors import FieldError, invalid, not_supported, required, too_long

META_FIELDS = ("apiVersion", "kind", "metadata")
_IN = "body"

# ---------------------------------------------------------------------------------------
# small helpers


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def _go_quote(value: str) -> str:
    """Go's %q for a string (close enough: JSON escaping, printable unicode kept)."""
    return json.dumps(value, ensure_ascii=False)


def _fmt_num(n: Any) -> str:
    """Go's %v of a float64/int64 bound."""
    if isinstance(n, bool):
        return "true" if n else "false"
    if isinstance(n, int):
        return str(n)
    if isinstance(n, float):
        if n.is_integer() and abs(n) < 1e21:
            return str(int(n))
        text = repr(n)
        if "e" in text:
            mant, exp = text.split("e")
            sign = "-" if exp.startswith("-") else "+"
            exp = exp.lstrip("+-").rjust(2, "0")
            return f"{mant}e{sign}{exp}"
        return text
    return str(n)


def _json_equal(a: Any, b: Any) -> bool:
    """Deep equality of JSON values: booleans are not numbers, 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _child(name: str, key: str) -> str:
    return f"{name}.{key}" if name else key


def _sub_schema(value: Any) -> dict | None:
    return value if isinstance(value, dict) else None


def _props(schema: dict | None) -> dict:
    props = schema.get("properties") if isinstance(schema, dict) else None
    return props if isinstance(props, dict) else {}


def _property_schema(schema: dict | None, key: str) -> tuple[bool, dict | None]:
    """(known, schema) for key of an object: a property, else additionalProperties."""
    if schema is None:
        return False, None
    props = _props(schema)
    if key in props:
        return True, _sub_schema(props[key])
    additional = schema.get("additionalProperties")
    if additional is not None and additional is not False:
        return True, _sub_schema(additional)
    return False, None


# ---------------------------------------------------------------------------------------
# pruning


def prune(obj: dict, schema: dict | None) -> list[str]:
    """Drop unknown fields from a custom object in place; return their paths, sorted."""
    pruned: list[str] = []
    root = dict(schema or {})
    root["x-kubernetes-embedded-resource"] = True
    _prune(obj, root, "", pruned)
    return sorted(pruned)


def prune_value(value: Any, schema: dict | None) -> list[str]:
    """Prune any value (not a whole object: no root exception) in place; return the paths."""
    pruned: list[str] = []
    _prune(value, schema, "", pruned)
    return sorted(pruned)


def unknown_fields(obj: dict, schema: dict | None) -> list[str]:
    """Paths of the fields `prune` would drop (`spec.foo`), without touching obj."""
    return prune(copy.deepcopy(obj), schema)


def _prune(x: Any, s: dict | None, path: str, pruned: list[str]) -> None:
    if s is not None and s.get("x-kubernetes-preserve-unknown-fields"):
        _skip_prune(x, s, path, pruned)
        return
    if isinstance(x, dict):
        if s is None:
            for k in list(x):
                pruned.append(_child(path, k))
                del x[k]
            return
        embedded = bool(s.get("x-kubernetes-embedded-resource"))
        for k in list(x):
            if embedded and k in META_FIELDS:
                continue
            known, sub = _property_schema(s, k)
            if known:
                _prune(x[k], sub, _child(path, k), pruned)
            else:
                pruned.append(_child(path, k))
                del x[k]
    elif isinstance(x, list):
        items = _sub_schema(s.get("items")) if s is not None else None
        for i, v in enumerate(x):
            _prune(v, items, f"{path}[{i}]", pruned)


def _skip_prune(x: Any, s: dict | None, path: str, pruned: list[str]) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        embedded = bool(s.get("x-kubernetes-embedded-resource"))
        for k, v in x.items():
            if embedded and k in META_FIELDS:
                continue
            known, sub = _property_schema(s, k)
            if known:
                _prune(v, sub, _child(path, k), pruned)
    elif isinstance(x, list):
        items = _sub_schema(s.get("items"))
        for i, v in enumerate(x):
            _skip_prune(v, items, f"{path}[{i}]", pruned)


# ---------------------------------------------------------------------------------------
# defaulting


def apply_defaults(obj: Any, schema: dict | None) -> None:
    """Apply `default` values to absent fields in place, as upstream does on read and write."""
    if schema is None:
        return
    prune_nulls(obj, schema)
    _default(obj, schema)


def prune_nulls(x: Any, s: dict | None) -> None:
    """Remove null values of non-nullable fields that have no default."""
    if isinstance(x, dict):
        for k in list(x):
            _, sub = _property_schema(s, k)
            v = x[k]
            if v is None and sub is not None and not sub.get("nullable") and "default" not in sub:
                del x[k]
            else:
                prune_nulls(v, sub)
    elif isinstance(x, list):
        items = _sub_schema(s.get("items")) if s is not None else None
        for v in x:
            prune_nulls(v, items)


def _non_nullable_null(value: Any, s: dict | None) -> bool:
    return value is None and s is not None and not s.get("nullable")


def _default(x: Any, s: dict | None) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        props = _props(s)
        for k, prop in props.items():
            if not isinstance(prop, dict) or "default" not in prop or prop["default"] is None:
                continue
            if k not in x or _non_nullable_null(x[k], prop):
                x[k] = copy.deepcopy(prop["default"])
        additional = _sub_schema(s.get("additionalProperties"))
        for k in list(x):
            if k in props:
                _default(x[k], _sub_schema(props[k]))
            elif additional is not None:
                if _non_nullable_null(x[k], additional) and additional.get("default") is not None:
                    x[k] = copy.deepcopy(additional["default"])
                _default(x[k], additional)
    elif isinstance(x, list):
        items = _sub_schema(s.get("items"))
        for i in range(len(x)):
            if items is not None and _non_nullable_null(x[i], items) and items.get("default") is not None:
                x[i] = copy.deepcopy(items["default"])
            _default(x[i], items)


# ---------------------------------------------------------------------------------------
# validation


class _Validator:
    """One kube-openapi schema validation pass; `prefix` is the field path it reports under."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix

    def field(self, name: str) -> str:
        name = name[1:] if name.startswith(".") else name
        if not name:
            return self.prefix
        if not self.prefix:
            return name
        return self.prefix + ("" if name.startswith("[") else ".") + name

    def type_error(self, name: str, value: Any, type_name: str, data: str) -> FieldError:
        return invalid(self.field(name), data, f"{name} in {_IN} must be of type {type_name}: {_go_quote(data)}")

    def composite(self, message: str) -> FieldError:
        return invalid(self.prefix, "", message)

    # -- the schema validator: type, schema props, string, format, number, slice, enum, object

    def validate(self, value: Any, s: dict, name: str) -> list[FieldError]:
        errs: list[FieldError] = []
        types = self._types(s)
        if value is None:
            if types and not s.get("nullable"):
                errs.append(self.type_error(name, value, ",".join(types), "null"))
            errs += self._enum(value, s, name)
            return errs
        errs += self._type(value, s, types, name)
        errs += self._schema_props(value, s, name)
        kind = _json_type(value)
        if kind == "string":
            errs += self._string(value, s, name)
            errs += self._format(value, s, name)
        if kind in ("integer", "number"):
            errs += self._number(value, s, name)
        if kind == "array":
            errs += self._slice(value, s, name)
        errs += self._enum(value, s, name)
        if kind == "object":
            errs += self._object(value, s, name)
        return errs

    @staticmethod
    def _types(s: dict) -> list[str]:
        if s.get("x-kubernetes-int-or-string"):
            return ["integer", "string"]
        t = s.get("type")
        if isinstance(t, list):
            return [str(x) for x in t]
        return [t] if isinstance(t, str) and t else []

    def _type(self, value: Any, s: dict, types: list[str], name: str) -> list[FieldError]:
        if not types:
            return []
        actual = _json_type(value)
        fmt = s.get("format") or ""
        is_float_int = actual == "number" and float(value).is_integer() and "integer" in types
        is_int_float = actual == "integer" and "number" in types
        if fmt and actual not in ("string", "array") and not (actual in types or is_float_int or is_int_float):
            actual_format = {"integer": "int64", "number": "float64"}.get(actual, "")
            if fmt != actual_format:
                return [self.type_error(name, value, fmt, actual_format)]
        if fmt and "number" not in types and "integer" not in types and actual in ("string", "array"):
            return []
        if not (actual in types or is_float_int or is_int_float):
            return [self.type_error(name, value, ",".join(types), actual)]
        return []

    def _schema_props(self, value: Any, s: dict, name: str) -> list[FieldError]:
        errs: list[FieldError] = []
        label = _go_quote(name)
        any_of = [x for x in _as_list(s.get("anyOf")) if isinstance(x, dict)]
        if any_of:
            results = [self.validate(value, sub, name) for sub in any_of]
            if not any(not r for r in results):
                errs.append(self.composite(f"{label} must validate at least one schema (anyOf)"))
                errs += min(results, key=len)
        one_of = [x for x in _as_list(s.get("oneOf")) if isinstance(x, dict)]
        if one_of:
            results = [self.validate(value, sub, name) for sub in one_of]
            valid = sum(1 for r in results if not r)
            if valid != 1:
                extra = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
                errs.append(self.composite(f"{label} must validate one and only one schema (oneOf). {extra}"))
                if valid == 0:
                    errs += min(results, key=len)
        all_of = [x for x in _as_list(s.get("allOf")) if isinstance(x, dict)]
        if all_of:
            results = [self.validate(value, sub, name) for sub in all_of]
            valid = sum(1 for r in results if not r)
            for r in results:
                errs += r
            if valid != len(all_of):
                extra = ". None validated" if valid == 0 else ""
                errs.append(self.composite(f"{label} must validate all the schemas (allOf){extra}"))
        not_schema = s.get("not")
        if isinstance(not_schema, dict) and not self.validate(value, not_schema, name):
            errs.append(self.composite(f"{label} must not validate the schema (not)"))
        return errs

    def _string(self, value: str, s: dict, name: str) -> list[FieldError]:
        errs: list[FieldError] = []
        max_length = s.get("maxLength")
        min_length = s.get("minLength")
        if isinstance(max_length, int) and len(value) > max_length:
            errs.append(too_long(self.field(name), value, max_length))
        if isinstance(min_length, int) and len(value) < min_length:
            errs.append(invalid(self.field(name), value, f"{name} in {_IN} should be at least {min_length} chars long"))
        pattern = s.get("pattern")
        if isinstance(pattern, str) and pattern:
            try:
                matched = re.search(pattern, value) is not None
            except re.error:
                matched = True
            if not matched:
                errs.append(invalid(self.field(name), value, f"{name} in {_IN} should match '{pattern}'"))
        return errs

    def _format(self, value: str, s: dict, name: str) -> list[FieldError]:
        fmt = s.get("format")
        check = _FORMATS.get(fmt) if isinstance(fmt, str) else None
        if check is None or check(value):
            return []
        return [invalid(self.field(name), value, f"{name} in {_IN} must be of type {fmt}: {_go_quote(value)}")]

    def _number(self, value: int | float, s: dict, name: str) -> list[FieldError]:
        errs: list[FieldError] = []
        field = self.field(name)
        multiple = s.get("multipleOf")
        if isinstance(multiple, (int, float)) and not isinstance(multiple, bool) and multiple > 0:
            if isinstance(value, int) and float(multiple).is_integer():
                ok = value % int(multiple) == 0
            else:
                q = value / multiple
                ok = abs(q - round(q)) < 1e-9
            if not ok:
                errs.append(invalid(field, value, f"{name} in {_IN} should be a multiple of {_fmt_num(multiple)}"))
        maximum = s.get("maximum")
        if isinstance(maximum, (int, float)) and not isinstance(maximum, bool):
            exclusive = bool(s.get("exclusiveMaximum"))
            if value > maximum or (exclusive and value == maximum):
                words = "less than" if exclusive else "less than or equal to"
                errs.append(invalid(field, value, f"{name} in {_IN} should be {words} {_fmt_num(maximum)}"))
        minimum = s.get("minimum")
        if isinstance(minimum, (int, float)) and not isinstance(minimum, bool):
            exclusive = bool(s.get("exclusiveMinimum"))
            if value < minimum or (exclusive and value == minimum):
                words = "greater than" if exclusive else "greater than or equal to"
                errs.append(invalid(field, value, f"{name} in {_IN} should be {words} {_fmt_num(minimum)}"))
        return errs

    def _slice(self, value: list, s: dict, name: str) -> list[FieldError]:
        errs: list[FieldError] = []
        items = s.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                errs += self.validate(item, items, f"{name}[{i}]")
        field = self.field(name)
        min_items = s.get("minItems")
        max_items = s.get("maxItems")
        if isinstance(min_items, int) and len(value) < min_items:
            errs.append(invalid(field, len(value), f"{name} in {_IN} should have at least {min_items} items"))
        if isinstance(max_items, int) and len(value) > max_items:
            errs.append(_too_many(field, len(value), max_items))
        if s.get("uniqueItems"):
            seen: set[str] = set()
            for item in value:
                key = _canonical(item)
                if key in seen:
                    errs.append(invalid(field, "", f"{name} in {_IN} shouldn't contain duplicates"))
                    break
                seen.add(key)
        return errs

    def _enum(self, value: Any, s: dict, name: str) -> list[FieldError]:
        enum = s.get("enum")
        if not isinstance(enum, list) or not enum:
            return []
        if any(_json_equal(value, e) for e in enum):
            return []
        values = [e if isinstance(e, str) else json.dumps(e, separators=(",", ":")) for e in enum]
        return [not_supported(self.field(name), value, values)]

    def _object(self, value: dict, s: dict, name: str) -> list[FieldError]:
        field = self.field(name)
        min_props = s.get("minProperties")
        max_props = s.get("maxProperties")
        if isinstance(min_props, int) and len(value) < min_props:
            return [invalid(field, len(value), f"{name} in {_IN} should have at least {min_props} properties")]
        if isinstance(max_props, int) and len(value) > max_props:
            return [_too_many(field, len(value), max_props)]
        errs: list[FieldError] = []
        props = _props(s)
        additional = s.get("additionalProperties")
        if additional is False:
            for k in value:
                if k not in props:
                    errs.append(invalid(field, k, f"{name}.{k} in {_IN} is a forbidden property"))
        elif isinstance(additional, dict):
            for k, v in value.items():
                if k not in props:
                    errs += self.validate(v, additional, f"{name}.{k}")
        for k, sub in props.items():
            if k in value and isinstance(sub, dict):
                errs += self.validate(value[k], sub, _child(name, k))
        reqs = s.get("required")
        for k in reqs if isinstance(reqs, list) else ():
            if isinstance(k, str) and k not in value:
                errs.append(required(self.field(f"{name}.{k}")))
        return errs


def _too_many(field: str, actual: int, maximum: int) -> FieldError:
    noun = "item" if maximum == 1 else "items"
    return FieldError("too_many", field, f"must have at most {maximum} {noun}", actual)


def validate(obj: Any, schema: dict | None, prefix: str = "") -> list[FieldError]:
    """Validate a custom object (or any value) against a structural schema.

    `prefix` is prepended to every field path (used when validating CRD defaults, whose
    errors are reported under `...default`). CEL `x-kubernetes-validations` are `celrules`'.
    """
    if not isinstance(schema, dict):
        return []
    errs = _Validator(prefix).validate(obj, schema, "")
    if isinstance(obj, dict):
        errs += validate_list_sets_and_maps(obj, schema, prefix)
    return errs


# -- x-kubernetes-list-type set / map


def validate_list_sets_and_maps(obj: dict, s: dict | None, path: str = "") -> list[FieldError]:
    """Uniqueness of whole items (set) and of key tuples (map), as upstream's listtype."""
    if s is None or not isinstance(obj, dict):
        return []
    errs: list[FieldError] = []
    additional = _sub_schema(s.get("additionalProperties"))
    if additional is not None:
        for k, v in obj.items():
            errs += _list_sets_and_maps(f"{path}[{k}]", additional, v)
    props = s.get("properties")
    if isinstance(props, dict):
        for k, v in obj.items():
            sub = _sub_schema(props.get(k))
            if sub is not None:
                errs += _list_sets_and_maps(f"{path}.{k}" if path else k, sub, v)
    return errs


def _list_sets_and_maps(path: str, s: dict, value: Any) -> list[FieldError]:
    if isinstance(value, list):
        return _list_array(path, s, value)
    if isinstance(value, dict):
        return validate_list_sets_and_maps(value, s, path)
    return []


def _non_unique(values: list) -> list[int]:
    counts: dict[str, int] = {}
    out: list[int] = []
    for i, v in enumerate(values):
        key = _canonical(v) if not isinstance(v, _Unspecified) else "\x00unspecified"
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 2:
            out.append(i)
    return out


class _Unspecified:
    pass


def _list_array(path: str, s: dict, value: list) -> list[FieldError]:
    errs: list[FieldError] = []
    list_type = s.get("x-kubernetes-list-type")
    if list_type == "set":
        for i in _non_unique(value):
            errs.append(FieldError("duplicate", f"{path}[{i}]", "", value[i]))
    elif list_type == "map":
        errs += _list_map(path, s, value)
    items = _sub_schema(s.get("items"))
    if items is not None:
        for i, v in enumerate(value):
            errs += _list_sets_and_maps(f"{path}[{i}]", items, v)
    return errs


def _list_map(path: str, s: dict, value: list) -> list[FieldError]:
    for i, x in enumerate(value):
        if x is not None and not isinstance(x, dict):
            return [invalid(f"{path}[{i}]", x, "must be an object for an array of list-type map")]
    if len(value) <= 1:
        return []
    key_fields = [k for k in _as_list(s.get("x-kubernetes-list-map-keys")) if isinstance(k, str)]
    keys: list[Any] = []
    for x in value:
        if len(key_fields) == 1:
            if x is None or key_fields[0] not in x:
                keys.append(_Unspecified())
            else:
                keys.append(x[key_fields[0]])
        else:
            keys.append({k: x[k] for k in key_fields if x is not None and k in x})
    errs = []
    for i in _non_unique(keys):
        if len(key_fields) == 1:
            shown = {} if isinstance(keys[i], _Unspecified) else {key_fields[0]: keys[i]}
        else:
            shown = keys[i]
        errs.append(FieldError("duplicate", f"{path}[{i}]", "", shown))
    return errs


# -- string formats (the common subset of kube-openapi's strfmt registry)

_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$"
)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^([0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}$")
_HOSTNAME = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*\.?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_DURATION = re.compile(r"^(-?\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w)\s*)+$|^0$")
_HEXCOLOR = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_BSON = re.compile(r"^[0-9a-fA-F]{24}$")


def _is_date_time(v: str) -> bool:
    if not _DATE_TIME.match(v):
        return False
    try:
        datetime.datetime.fromisoformat(v.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
    except ValueError:
        return False
    return True


def _is_date(v: str) -> bool:
    try:
        datetime.date.fromisoformat(v)
    except ValueError:
        return False
    return len(v) == 10


def _is_ip(v: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(v).version == version
    except ValueError:
        return False


def _is_cidr(v: str) -> bool:
    if "/" not in v:
        return False
    try:
        ipaddress.ip_network(v, strict=False)
    except ValueError:
        return False
    return True


def _is_byte(v: str) -> bool:
    try:
        base64.b64decode(v, validate=True)
    except ValueError:
        return False
    return True


_FORMATS = {
    "date-time": _is_date_time,
    "datetime": _is_date_time,
    "date": _is_date,
    "uuid": lambda v: bool(_UUID.match(v)),
    "uuid3": lambda v: bool(_UUID.match(v)),
    "uuid4": lambda v: bool(_UUID.match(v)),
    "uuid5": lambda v: bool(_UUID.match(v)),
    "ipv4": lambda v: _is_ip(v, 4),
    "ipv6": lambda v: _is_ip(v, 6),
    "cidr": _is_cidr,
    "mac": lambda v: bool(_MAC.match(v)),
    "hostname": lambda v: len(v) <= 255 and bool(_HOSTNAME.match(v)),
    "email": lambda v: bool(_EMAIL.match(v)),
    "byte": _is_byte,
    "duration": lambda v: bool(_DURATION.match(v)),
    "hexcolor": lambda v: bool(_HEXCOLOR.match(v)),
    "bsonobjectid": lambda v: bool(_BSON.match(v)),
}


def _as_list(x: Any) -> list:
    return x if isinstance(x, list) else []
