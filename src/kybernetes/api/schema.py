"""Schemas of built-in kinds, and `Node`, one view over any OpenAPI schema.

Strategic merge patch, server-side apply, field pruning and OpenAPI publishing all walk
a schema value by value. `Node` hides where the schema came from: the generated
definitions of built-in kinds (`schema_data.json`, made by `tools/gen_schema.py`) or a
CRD's structural schema. Definitions refer to each other with
`{"$ref": "#/definitions/<name>"}`; extension keys beside a `$ref` (patch strategy, merge
key, list type) belong to the field that holds the value.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
from collections.abc import Callable
from pathlib import Path

import orjson

DATA_FILE = Path(__file__).with_name("schema_data.json")
REF_PREFIX = "#/definitions/"


class Node:
    """One value's schema. Extension attributes describe the field holding the value."""

    __slots__ = ("raw", "ref", "_resolve", "_children", "_prune")

    def __init__(self, raw: dict, resolve: Callable[[str], dict | None] | None = None):
        self._resolve = resolve
        self._children: dict[str, Node | None] = {}
        self._prune: tuple | None = None
        self.ref = ""  # the definition this value's schema comes from (io.k8s.api.core.v1.PodSpec)
        ref = raw.get("$ref")
        if ref and resolve is not None:
            self.ref = ref[len(REF_PREFIX):] if ref.startswith(REF_PREFIX) else ref
            target = resolve(self.ref) or {}
            merged = dict(target)
            merged.update({k: v for k, v in raw.items() if k != "$ref"})
            raw = merged
        self.raw = raw

    def _node(self, raw) -> Node | None:
        if not isinstance(raw, dict):
            return None
        return Node(raw, self._resolve)

    # --- shape ------------------------------------------------------------------------------
    @property
    def type(self) -> str | None:
        t = self.raw.get("type")
        if t:
            return t
        if "properties" in self.raw or "additionalProperties" in self.raw:
            return "object"
        return None

    @property
    def properties(self) -> dict:
        return self.raw.get("properties") or {}

    def field(self, name: str) -> Node | None:
        """The schema of property `name`; a map's value schema; None when unknown."""
        try:
            return self._children[name]
        except KeyError:
            child = self._children[name] = self._field(name)
            return child

    def _field(self, name: str) -> Node | None:
        props = self.raw.get("properties")
        if props and name in props:
            return self._node(props[name])
        extra = self.raw.get("additionalProperties")
        if isinstance(extra, dict):
            return self._node(extra)
        if extra is True or self.preserve_unknown:
            return ANY
        return None

    def items(self) -> Node | None:
        try:
            return self._children["[]"]
        except KeyError:
            child = self._children["[]"] = self._node(self.raw.get("items"))
            return child

    def is_map(self) -> bool:
        return "additionalProperties" in self.raw and not self.raw.get("properties")

    def knows_fields(self) -> bool:
        """Whether fields outside `properties` are unknown (and pruned)."""
        return self.type == "object" and not self.preserve_unknown and "additionalProperties" not in self.raw

    # --- extensions ------------------------------------------------------------------------
    @property
    def preserve_unknown(self) -> bool:
        return bool(self.raw.get("x-kubernetes-preserve-unknown-fields"))

    @property
    def int_or_string(self) -> bool:
        return bool(self.raw.get("x-kubernetes-int-or-string"))

    @property
    def embedded_resource(self) -> bool:
        return bool(self.raw.get("x-kubernetes-embedded-resource"))

    @property
    def patch_strategy(self) -> str:
        """x-kubernetes-patch-strategy: "", "merge", "replace", "retainKeys" or "merge,retainKeys"."""
        return self.raw.get("x-kubernetes-patch-strategy", "")

    @property
    def patch_merge_key(self) -> str:
        return self.raw.get("x-kubernetes-patch-merge-key", "")

    @property
    def list_type(self) -> str:
        """x-kubernetes-list-type, or what the patch strategy implies: map, set or atomic."""
        lt = self.raw.get("x-kubernetes-list-type")
        if lt:
            return lt
        if "merge" in self.patch_strategy.split(","):
            return "map" if self.patch_merge_key else "set"
        return "atomic"

    @property
    def list_map_keys(self) -> list[str]:
        keys = self.raw.get("x-kubernetes-list-map-keys")
        if keys:
            return list(keys)
        return [self.patch_merge_key] if self.patch_merge_key else []

    @property
    def map_type(self) -> str:
        return self.raw.get("x-kubernetes-map-type", "granular")

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Node({self.type}, {sorted(self.properties)[:5]})"


ANY = Node({"x-kubernetes-preserve-unknown-fields": True})


@functools.cache
def _data() -> dict:
    if not DATA_FILE.exists():
        return {"definitions": {}, "gvk": {}}
    return json.loads(DATA_FILE.read_text())


def definitions() -> dict[str, dict]:
    """Every built-in definition by name (io.k8s.api.core.v1.Pod, ...)."""
    return _data()["definitions"]


def definition_name(group: str, version: str, kind: str) -> str | None:
    return _data()["gvk"].get(f"{group}/{version}/{kind}")


@functools.lru_cache(maxsize=512)
def for_kind(group: str, version: str, kind: str) -> Node | None:
    """The schema of a built-in kind, or None when it has none."""
    name = definition_name(group, version, kind)
    if name is None:
        return None
    return Node({"$ref": REF_PREFIX + name}, definitions().get)


def for_openapi(raw: dict, defs: dict[str, dict] | None = None) -> Node:
    """Wrap a schema dict (a CRD's structural schema, or a test's) as a Node."""
    return Node(raw, (defs or definitions()).get)


# --- strict decoding: duplicate and unknown fields ----------------------------------------------
# Paths are spelled the way upstream's strict JSON decoder (sigs.k8s.io/json) names them:
# object keys joined with ".", list positions as "[i]", no leading dot: `spec.containers[0].image`.


class _Pairs(list):
    """An object's (key, value) pairs in document order, duplicates kept."""


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def find_duplicate_fields(raw: bytes | str, decoded=None) -> list[str]:
    """Paths of keys repeated within one JSON object, in document order.

    `decoded` is `raw` already decoded by a JSON decoder, when the caller has it. Returns []
    when `raw` is not valid JSON (YAML bodies, malformed input): parse errors are reported
    elsewhere."""
    if not _has_duplicates(raw, decoded):
        return []
    try:
        doc = json.loads(raw, object_pairs_hook=_Pairs)
    except (ValueError, TypeError, RecursionError):
        return []
    out: list[str] = []
    stack: list[tuple[str, object]] = [("", doc)]
    # explicit stack (reversed pushes) keeps document order without deep recursion
    while stack:
        path, value = stack.pop()
        if isinstance(value, _Pairs):
            seen: set[str] = set()
            todo = []
            for key, child in value:
                child_path = _join(path, key)
                if key in seen:
                    todo.append((child_path, _DUP))
                seen.add(key)
                todo.append((child_path, child))
            stack.extend(reversed(todo))
        elif value is _DUP:
            out.append(path)
        elif isinstance(value, list):
            stack.extend(reversed([(f"{path}[{i}]", item) for i, item in enumerate(value)]))
    return out


_DUP = object()


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"(\s*:)?')


def _count_keys(doc) -> int:
    count, stack = 0, [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            count += len(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return count


_SPACE_BEFORE_COLON = re.compile(rb'"\s+:')


def _has_duplicates(raw: bytes | str, doc=None) -> bool:
    """A fast first pass: keys as written (every string followed by ':') against keys kept by a decoder."""
    data = raw.encode() if isinstance(raw, str) else raw
    if doc is None:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return False
    kept = _count_keys(doc)
    if b"\\\\" not in data and not _SPACE_BEFORE_COLON.search(data):
        # Counting bytes instead of tokenizing (a tenth of the time): every key is a closing quote
        # followed by ':'; the other '":' are an escaped quote inside a string (subtracted: with no
        # escaped backslash, '\\":' is always one) or a string value that starts with ':' (counted
        # too many). So this count is at least the keys written, and equal to the keys kept proves
        # that none was repeated; otherwise the exact pass below decides.
        if data.count(b'":') - data.count(b'\\":') == kept:
            return False
    written = sum(1 for colon in _JSON_STRING.findall(data) if colon)  # findall: no Match objects
    return written != kept


_ALWAYS_KNOWN = ("apiVersion", "kind", "metadata")


def prune_unknown(group: str, version: str, kind: str, obj: dict) -> list[str]:
    """Drop, in place, the fields the built-in kind's schema does not know; return their paths.

    Maps, int-or-string values, preserve-unknown-fields and untyped (`{}`) schemas accept
    anything. A kind without a built-in schema is left untouched and yields []."""
    return decode_check(group, version, kind, obj)[0]


def decode_check(group: str, version: str, kind: str, obj: dict) -> tuple[list[str], str]:
    """`prune_unknown`, and the first value whose JSON type the kind's Go type cannot take, worded
    as Go's decoder reports it (`json: cannot unmarshal number into Go struct field
    Container.spec.containers.image of type string`), or "" when every value fits."""
    root = for_kind(group, version, kind)
    if root is None or not isinstance(obj, dict) or not root.raw:
        return [], ""
    walk = _Walk()
    walk.object(root, obj, "", "", root.ref.rsplit(".", 1)[-1], top=True)
    return walk.unknown, walk.mistyped


def prune_with_schema(node: Node, value, path: str = "") -> list[str]:
    """`prune_unknown` for any schema Node (e.g. an embedded object or a test schema)."""
    walk = _Walk()
    walk.value(node, value, path, path, "")
    return walk.unknown


def _prune_facts(node: Node) -> tuple:
    """(accepts anything, type, prunes unknown fields, properties, Python types a value may have), read
    once per schema node: every write of a built-in kind is pruned, so this walk is on the hot path."""
    facts = node._prune
    if facts is None:
        anything = node.preserve_unknown or node.int_or_string
        facts = node._prune = (anything, node.type, node.knows_fields(), node.properties,
                               None if anything else _PYTHON_TYPES.get(node.type))
    return facts


# a YAML timestamp (PyYAML's date or datetime) is a string to upstream's YAML-to-JSON step
_PYTHON_TYPES = {"string": (str, datetime.date), "integer": (int, float), "number": (int, float), "boolean": bool, "object": dict,
                 "array": list}
_JSON_KINDS = {str: "string", int: "number", float: "number", bool: "bool", dict: "object", list: "array"}
_INT_RANGE = {"int32": (-(1 << 31), (1 << 31) - 1), "int64": (-(1 << 63), (1 << 63) - 1)}


def go_type(node: Node) -> str:
    """The Go type upstream decodes a value of schema `node` into, as Go prints it."""
    if node.ref and node.type == "object" and not node.is_map():
        package, _, name = node.ref.rpartition(".")
        return f"{package.rpartition('.')[2]}.{name}"
    kind, fmt = node.type, node.raw.get("format")
    if kind == "array":
        items = node.items()
        return "[]" + (go_type(items) if items is not None else "interface {}")
    if kind == "object":
        value = node.field("")
        return "map[string]" + (go_type(value) if value is not None else "interface {}")
    if kind == "integer":
        return fmt if fmt in _INT_RANGE else "int"
    return {"string": "string", "boolean": "bool", "number": "float64"}.get(kind or "", "interface {}")


class _Walk:
    """One walk of a decoded object against its kind's schema: unknown fields are dropped and
    listed, the first value of a wrong JSON type is described."""

    __slots__ = ("unknown", "mistyped")

    def __init__(self):
        self.unknown: list[str] = []
        self.mistyped = ""

    def value(self, node: Node | None, value, path: str, field: str, struct: str) -> None:
        """`path` names the value for strict decoding (`spec.containers[0]`), `field` for Go's type
        errors (`spec.containers`), `struct` is the Go struct holding it."""
        if node is None or value is None:
            return
        anything, kind, _, _, types = _prune_facts(node)
        if anything:
            return
        if types is not None and (not isinstance(value, types) or (type(value) is bool and kind != "boolean")):
            if not self.mistyped and struct:
                self._mistyped(node, value, field, struct)
            return
        if kind == "integer":
            self._integer(node, value, field, struct)
        elif isinstance(value, dict):
            if kind == "object":
                if node.is_map():
                    self._map(node, value, path, field, struct)
                else:
                    self.object(node, value, path, field, node.ref.rsplit(".", 1)[-1] or struct)
        elif isinstance(value, list) and kind == "array":
            items = node.items()
            if items is not None:
                for i, item in enumerate(value):
                    self.value(items, item, f"{path}[{i}]", field, struct)

    def object(self, node: Node, obj: dict, path: str, field: str, struct: str, top: bool = False) -> None:
        _, _, strict, props, _ = _prune_facts(node)
        unknown = []
        for key, value in obj.items():  # paths are reported in document order
            if strict and key not in props and not (top and key in _ALWAYS_KNOWN):
                unknown.append(key)
                self.unknown.append(_join(path, key))
            elif value is not None:
                self.value(node.field(key), value, _join(path, key), _join(field, key), struct)
        for key in unknown:
            del obj[key]

    def _map(self, node: Node, obj: dict, path: str, field: str, struct: str) -> None:
        child = node.field("")
        if child is None:
            return
        for key, value in obj.items():  # Go names the map field, not the key, in its errors
            if value is not None:
                self.value(child, value, _join(path, key), field, struct)

    def _integer(self, node: Node, value, field: str, struct: str) -> None:
        if isinstance(value, float):
            if not value.is_integer():
                if not self.mistyped:
                    self.mistyped = (f"json: cannot unmarshal number {value!r} into Go struct field {struct}.{field} "
                                     f"of type {go_type(node)}")
                return
            # 3.0 for 3: Go refuses it; the Python clients that send it are let through (the value is exact)
        low, high = _INT_RANGE.get(node.raw.get("format"), _INT_RANGE["int64"])
        if not low <= value <= high and not self.mistyped:
            self.mistyped = (f"json: cannot unmarshal number {int(value)} into Go struct field {struct}.{field} "
                             f"of type {go_type(node)}")

    def _mistyped(self, node: Node, value, field: str, struct: str) -> None:
        self.mistyped = (f"json: cannot unmarshal {_JSON_KINDS.get(type(value), 'value')} into Go struct field "
                         f"{struct}.{field} of type {go_type(node)}")
