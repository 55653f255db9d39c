"""Field ownership (`metadata.managedFields`) and server-side apply, as pure functions.

A field path is a tuple of FieldsV1 path elements, each a string exactly as upstream
serializes it: `f:<name>` for a field or map key, `k:<json>` for an element of a list map
(compact JSON of its key fields, sorted by name), `v:<json>` for an element of a set.
A field set is a Python `set` of such tuples; `to_fields_v1`/`from_fields_v1` convert to and
from the nested-dict wire form where `.` marks a member that also has members below it.

`update_managed_fields` records ownership for writes that are not apply (create, update,
non-apply patch); `apply` implements server-side apply: merge, conflict detection, ownership
transfer and removal of fields a manager stopped applying.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
from datetime import UTC, datetime
from typing import Any

import orjson

from kybernetes.api.errors import StatusError, bad_request

Path = tuple[str, ...]

FIELDS_TYPE = "FieldsV1"
APPLY = "Apply"
UPDATE = "Update"

# Fields nobody owns (upstream strips them from every manager's set).
_IGNORED_META = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                 "managedFields", "selfLink", "deletionTimestamp")
_IGNORED_META_SET = frozenset(_IGNORED_META)
_ELEMENT_ORDER = {"f": 0, "k": 1, "v": 2, "i": 3}


# --- path elements -------------------------------------------------------------------------------
_SIMPLE = (str, int, bool, type(None))
_MISSING = object()


def _compact(value: Any) -> str:
    """Compact JSON with sorted keys. Strings, ints, booleans, null and flat objects of them (list keys,
    container names) go through orjson, whose output for them is byte for byte json.dumps'."""
    if type(value) in _SIMPLE or (type(value) is dict and all(
            type(k) is str and type(v) in _SIMPLE for k, v in value.items())):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONEncodeError:  # an int beyond 64 bits
            pass
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _same(a: Any, b: Any) -> bool:
    return _compact(a) == _compact(b)


def _item_element(item: Any, node) -> str:
    """The path element of one element of a `map` or `set` list."""
    if node is not None and node.list_type == "map" and isinstance(item, dict):
        keys = {k: item[k] for k in node.list_map_keys if k in item}
        if keys:
            return "k:" + _compact(keys)
    return "v:" + _compact(item)


def _element_matches(element: str, item: Any) -> bool:
    if element.startswith("k:"):
        keys = json.loads(element[2:])
        return isinstance(item, dict) and all(k in item and _same(item[k], v) for k, v in keys.items())
    if element.startswith("v:"):
        return _same(item, json.loads(element[2:]))
    return False


def path_string(path: Path) -> str:
    """A path as upstream prints it in conflicts: `.spec.containers[name="nginx"].image`."""
    out = []
    for element in path:
        kind, rest = element[:1], element[2:]
        if kind == "f":
            out.append("." + rest)
        elif kind == "k":
            keys = json.loads(rest)
            out.append("[" + ",".join(f"{k}={_compact(keys[k])}" for k in sorted(keys)) + "]")
        elif kind == "v":
            out.append("[=" + rest + "]")
        else:
            out.append("[" + rest + "]")
    return "".join(out)


# --- field sets ----------------------------------------------------------------------------------
def _declared(node, key: str) -> bool:
    return node is not None and key in node.properties


def _walk(value: Any, node, path: Path, out: dict[Path, Any], maps: bool = False) -> None:
    """Collect member paths of `value` (found at `path`) into `out`, mapped to their values.

    With `maps`, a map field (labels, annotations, ...) is itself a member too: upstream's
    Update operations record such a map as `.` when the write created it.
    """
    if isinstance(value, dict):
        if node is not None and node.map_type == "atomic" and path:
            out[path] = value
            return
        for key, child in value.items():
            child_node = node.field(key) if node is not None else None
            child_path = path + ("f:" + key,)
            _walk(child, child_node, child_path, out, maps)
            if child is None or child == {} or not _declared(node, key):
                out[child_path] = child
            elif maps and isinstance(child, dict) and child_node is not None and child_node.is_map():
                out[child_path] = child
    elif isinstance(value, list):
        list_type = node.list_type if node is not None else "atomic"
        if list_type not in ("map", "set"):
            out[path] = value
            return
        item_node = node.items()
        for item in value:
            item_path = path + (_item_element(item, node),)
            if isinstance(item, dict) and item_path[-1].startswith("k:"):
                _walk(item, item_node, item_path, out, maps)
            out[item_path] = item
    elif path:
        out[path] = value


def _values_of(obj: dict | None, schema, subresource: str = "", maps: bool = False) -> dict[Path, Any]:
    """Member paths of `obj` that a writer owns , filtered before walking."""
    out: dict[Path, Any] = {}
    if not obj:
        return out
    _walk(_owned_part(obj, subresource), schema, (), out, maps)
    out.pop(("f:metadata",), None)
    return out


def _record(value: Any, node, key: str, path: Path, out: dict[Path, Any], maps: bool) -> None:
    """What `_walk` records for the member `key` of a dict (after walking into it)."""
    if value is None or value == {} or not _declared(node, key):
        out[path] = value
    elif maps and isinstance(value, dict):
        child_node = node.field(key) if node is not None else None
        if child_node is not None and child_node.is_map():
            out[path] = value


def _identical(a: Any, b: Any) -> bool:
    """Equal as JSON: Python's == also holds for 1, 1.0 and True, and for 0.0 and -0.0."""
    if a != b:
        return False
    try:
        return orjson.dumps(a) == orjson.dumps(b)
    except orjson.JSONEncodeError:  # an int beyond 64 bits: let the walk compare it
        return False


def _walk_changed(old: dict, new: dict, node, path: Path, old_out: dict[Path, Any], new_out: dict[Path, Any],
                  maps: bool, entered: list[Path]) -> None:
    """`_walk` of two versions of one dict, skipping the members that are equal in both: their
    paths and values would be the same on both sides and change nothing in `_compare`."""
    for key, new_child in new.items():
        old_child = old.get(key, _MISSING)
        if old_child is _MISSING:
            child_node = node.field(key) if node is not None else None
            child_path = path + ("f:" + key,)
            _walk(new_child, child_node, child_path, new_out, maps)
            _record(new_child, node, key, child_path, new_out, maps)
            continue
        if _identical(old_child, new_child):
            continue
        child_node = node.field(key) if node is not None else None
        child_path = path + ("f:" + key,)
        if (isinstance(old_child, dict) and isinstance(new_child, dict)
                and not (child_node is not None and child_node.map_type == "atomic")):
            entered.append(child_path)
            _walk_changed(old_child, new_child, child_node, child_path, old_out, new_out, maps, entered)
        else:
            _walk(old_child, child_node, child_path, old_out, maps)
            _walk(new_child, child_node, child_path, new_out, maps)
        _record(old_child, node, key, child_path, old_out, maps)
        _record(new_child, node, key, child_path, new_out, maps)
    for key, old_child in old.items():
        if key not in new:
            child_node = node.field(key) if node is not None else None
            child_path = path + ("f:" + key,)
            _walk(old_child, child_node, child_path, old_out, maps)
            _record(old_child, node, key, child_path, old_out, maps)


def _owned_part(obj: dict, subresource: str) -> dict:
    """The part of `obj` whose fields a writer owns (`_values_of` walks this)."""
    on_status = subresource == "status"
    kept = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind") and (k == "status") == on_status}
    meta = kept.get("metadata")
    if isinstance(meta, dict):
        kept["metadata"] = {k: v for k, v in meta.items() if k not in _IGNORED_META_SET}
    return kept


def _node_at(schema, path: Path):
    node = schema
    for element in path:
        if node is None:
            return None
        node = node.field(element[2:]) if element.startswith("f:") else node.items()
    return node


def _changes(old: dict | None, new: dict, schema, subresource: str) -> tuple[set[Path], set[Path], set[Path]]:
    """`_compare(_values_of(old), _values_of(new))` with maps, walking only what differs.

    A status write changes a few fields of a large object; walking both objects whole was
    most of the cost of recording its ownership."""
    if not old:
        values = _values_of(new, schema, subresource, maps=True)
        # An empty top-level struct (`spec: {}` in kubectl's Namespace) is in the empty object a
        # typed create is compared with: nobody comes to own it.
        return {p for p, v in values.items() if len(p) > 1 or v != {}}, set(), set()
    old_out: dict[Path, Any] = {}
    new_out: dict[Path, Any] = {}
    entered: list[Path] = []
    _walk_changed(_owned_part(old, subresource), _owned_part(new, subresource), schema, (), old_out, new_out,
                  True, entered)
    old_out.pop(("f:metadata",), None)
    new_out.pop(("f:metadata",), None)
    added, removed, modified = _compare(old_out, new_out)
    # A dict entered above is a parent in the whole walk if anything at all lies below it, equal
    # members included; here only its changed members were walked, so decide those cases again.
    for path in entered:
        if path in modified:
            below: dict[Path, Any] = {}
            node = _node_at(schema, path)
            _walk(old_out[path], node, path, below, True)
            _walk(new_out[path], node, path, below, True)
            if any(len(p) > len(path) for p in below):
                modified.discard(path)
    return added, removed, modified


def fields_of(obj: dict, schema, subresource: str = "") -> set[Path]:
    """The field set of `obj`: every path a writer of `obj` would own."""
    return set(_values_of(obj, schema, subresource))


def _sort_key(element: str) -> tuple[int, str]:
    return (_ELEMENT_ORDER.get(element[:1], 9), element)


def _path_key(path: Path) -> tuple:
    return tuple(_sort_key(e) for e in path)


def to_fields_v1(paths) -> dict:
    """Serialize a field set to the nested FieldsV1 form (shared result: treat as read-only)."""
    return _to_fields_v1(frozenset(paths))


@functools.lru_cache(maxsize=1024)
def _to_fields_v1(members: frozenset) -> dict:
    """Objects of one shape (a controller's pods) share their field sets: render each once."""
    tree: dict = {}
    for path in members:
        node = tree
        for element in path:
            node = node.setdefault(element, {})

    def render(node: dict, prefix: Path) -> dict:
        out: dict = {}
        for element in sorted(node, key=_sort_key):
            child_path = prefix + (element,)
            rendered = render(node[element], child_path)
            if rendered and child_path in members:
                rendered = {".": {}, **rendered}
            out[element] = rendered
        return out

    return render(tree, ())


def from_fields_v1(fields: dict | None) -> set[Path]:
    """Parse the nested FieldsV1 form into a field set."""
    out: set[Path] = set()

    def visit(node: dict, prefix: Path) -> None:
        for element, child in node.items():
            if element == ".":
                if prefix:
                    out.add(prefix)
                continue
            path = prefix + (element,)
            if not child:
                out.add(path)
            elif isinstance(child, dict):
                visit(child, path)

    if isinstance(fields, dict):
        visit(fields, ())
    return out


# --- managedFields entries -----------------------------------------------------------------------
def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Manager:
    __slots__ = ("manager", "operation", "api_version", "time", "subresource", "fields", "_entry")

    def __init__(self, manager: str, operation: str, api_version: str, time: str | None,
                 subresource: str, fields: set[Path], entry: dict | None = None):
        self.manager = manager
        self.operation = operation
        self.api_version = api_version
        self.time = time
        self.subresource = subresource
        self.fields = fields
        # the decoded entry and what it said, reused while nothing about this manager changes
        self._entry = (entry, frozenset(fields), time, api_version) if entry is not None else None

    @property
    def identity(self) -> tuple:
        # Appliers keep one entry whatever version they apply with (upstream BuildManagerIdentifier).
        version = "" if self.operation == APPLY else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def describe(self) -> str:
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text

    def entry(self) -> dict:
        if self._entry is not None:
            entry, fields, time, api_version = self._entry
            if self.fields == fields and self.time == time and self.api_version == api_version:
                return entry
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = FIELDS_TYPE
        out["fieldsV1"] = to_fields_v1(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def _valid_entries(entries: Any) -> bool:
    if not isinstance(entries, list):
        return False
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("manager", ""), str):
            return False
        if e.get("operation") not in (APPLY, UPDATE):
            return False
        if e.get("fieldsType", FIELDS_TYPE) != FIELDS_TYPE or not isinstance(e.get("fieldsV1", {}), dict):
            return False
    return True


def _decode(entries: Any) -> list[_Manager]:
    if not _valid_entries(entries):
        return []
    out: list[_Manager] = []
    for e in entries:
        m = _Manager(e.get("manager", ""), e["operation"], e.get("apiVersion", ""), e.get("time"),
                     e.get("subresource", ""), from_fields_v1(e.get("fieldsV1")), e)
        if not m.fields:
            continue
        same = next((o for o in out if o.identity == m.identity), None)
        if same is not None:
            same.fields |= m.fields
        else:
            out.append(m)
    return out


def _encode(managers: list[_Manager]) -> list[dict]:
    kept = [m for m in managers if m.fields]
    kept.sort(key=lambda m: (m.operation, m.time or "", m.manager, m.api_version, m.subresource))
    return [m.entry() for m in kept]


def _is_reset(entries: Any) -> bool:
    return isinstance(entries, list) and (entries == [] or entries == [{}])


def _managed_of(obj: dict | None) -> Any:
    return ((obj or {}).get("metadata") or {}).get("managedFields")


# --- comparing objects ---------------------------------------------------------------------------
def _prefixes(paths) -> set[Path]:
    out: set[Path] = set()
    for p in paths:
        for i in range(1, len(p)):
            out.add(p[:i])
    return out


def _compare(old: dict[Path, Any], new: dict[Path, Any]) -> tuple[set[Path], set[Path], set[Path]]:
    """(added, removed, modified) between two path->value maps."""
    if not old:
        return set(new), set(), set()
    added = set(new) - set(old)
    removed = set(old) - set(new)
    # A path that is a proper prefix of another path is a parent; in sorted order the path right after a
    # parent extends it (anything between a path and one that extends it extends it too), so one pass over
    # the sorted paths finds the parents among them without building every prefix of every path.
    ordered = sorted(old.keys() | new.keys())
    parents = {a for a, b in itertools.pairwise(ordered) if len(b) > len(a) and b[:len(a)] == a}
    modified = {p for p in old.keys() & new.keys() if p not in parents and not _same_value(old[p], new[p])}
    return added, removed, modified


def _same_value(a: Any, b: Any) -> bool:
    """_same, without encoding when both are strings, ints, booleans or null of one type (floats differ in
    JSON where == does not: 0.0 and -0.0)."""
    if type(a) is type(b) and type(a) in _SIMPLE:
        return a == b
    return _same(a, b)


def _strip_managed(obj: dict) -> dict:
    """`obj` without managedFields; shares everything else (the walk only reads)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    out = dict(obj)
    out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out


# --- update --------------------------------------------------------------------------------------
def update_managed_fields(old: dict | None, new: dict, manager: str, api_version: str, operation: str, schema,
                          subresource: str = "", now: str | None = None) -> None:
    """Record in `new["metadata"]["managedFields"]` the fields this non-apply write set."""
    meta = new.setdefault("metadata", {})
    old_entries = _managed_of(old)
    if subresource or "managedFields" not in meta or meta.get("managedFields") is None:
        managers = _decode(old_entries)
    elif meta["managedFields"] == old_entries:
        managers = _decode(old_entries)
    elif _is_reset(meta["managedFields"]):
        managers = []
    elif _valid_entries(meta["managedFields"]):
        managers = _decode(meta["managedFields"])
    else:
        managers = _decode(old_entries)

    added, removed, modified = _changes(_strip_managed(old) if old else None, _strip_managed(new), schema,
                                        subresource)
    taken = added | modified

    me = _Manager(manager, operation, api_version, None, subresource, set())
    mine = next((m for m in managers if m.identity == me.identity), None)
    for m in managers:
        if m is not mine:
            m.fields -= taken
        m.fields -= removed
    if taken:
        if mine is None:
            mine = me
            managers.append(mine)
        mine.fields |= taken
        mine.time = now or now_rfc3339()
        mine.api_version = api_version
    meta["managedFields"] = _encode(managers)
    if not meta["managedFields"]:
        del meta["managedFields"]


# --- apply ---------------------------------------------------------------------------------------
def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def _merge(live: Any, cfg: Any, node) -> Any:
    if isinstance(live, dict) and isinstance(cfg, dict) and not (node is not None and node.map_type == "atomic"):
        out = dict(live)
        for key, value in cfg.items():
            child = node.field(key) if node is not None else None
            out[key] = _merge(live[key], value, child) if key in live else copy.deepcopy(value)
        return out
    list_type = node.list_type if node is not None else "atomic"
    if isinstance(live, list) and isinstance(cfg, list) and list_type in ("map", "set"):
        item_node = node.items()
        out = list(live)
        index = {_item_element(item, node): i for i, item in enumerate(live)}
        for item in cfg:
            element = _item_element(item, node)
            if element in index:
                i = index[element]
                if list_type == "map":
                    out[i] = _merge(out[i], item, item_node)
            else:
                index[element] = len(out)
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(cfg)


def _remove(obj: Any, path: Path) -> None:
    """Remove the value at `path` from `obj` in place (no-op when absent)."""
    parent = obj
    for element in path[:-1]:
        parent = _child(parent, element)
        if parent is None:
            return
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif isinstance(parent, list):
        parent[:] = [item for item in parent if not _element_matches(last, item)]


def _child(value: Any, element: str) -> Any:
    if element.startswith("f:"):
        return value.get(element[2:]) if isinstance(value, dict) else None
    if isinstance(value, list):
        return next((item for item in value if _element_matches(element, item)), None)
    return None


def _restrict(cfg: dict, subresource: str) -> dict:
    if subresource == "status":
        meta = cfg.get("metadata") or {}
        kept = {k: meta[k] for k in ("name", "namespace") if k in meta}
        return {k: v for k, v in (("apiVersion", cfg.get("apiVersion")), ("kind", cfg.get("kind")),
                                  ("metadata", kept), ("status", cfg.get("status"))) if v is not None}
    cfg.pop("status", None)
    return cfg


def conflict_error(conflicts: list[tuple[_Manager, Path]]) -> StatusError:
    """409 Conflict worded like upstream's apply conflict error."""
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {m.describe()}", "field": path_string(p)}
              for m, p in conflicts]
    if len(conflicts) == 1:
        m, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {m.describe()}: {path_string(p)}"
    else:
        by_manager: dict[tuple, list] = {}
        for m, p in conflicts:
            by_manager.setdefault((m.manager, m.operation, m.api_version, m.subresource), [m]).append(p)
        lines = []
        for key in sorted(by_manager):
            m, *paths = by_manager[key]
            lines.append(f"conflicts with {m.describe()}:")
            lines.extend(f"- {path_string(p)}" for p in paths)
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, {"causes": causes})


def apply(live: dict | None, applied: dict, manager: str, api_version: str, schema, force: bool,
          now: str | None = None, subresource: str = "") -> dict:
    """Server-side apply `applied` by `manager` onto `live` (None to create); returns the new object."""
    if not isinstance(applied, dict):
        raise bad_request("apply configuration must be an object")
    if not applied.get("apiVersion"):
        raise bad_request("apiVersion must be set in the apply configuration")
    if not applied.get("kind"):
        raise bad_request("kind must be set in the apply configuration")
    if (applied.get("metadata") or {}).get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")

    cfg = _restrict(_strip_none(copy.deepcopy(applied)), subresource)
    applied_values = _values_of(cfg, schema, subresource)
    applied_set = set(applied_values)
    stamp = now or now_rfc3339()
    me = _Manager(manager, APPLY, api_version, stamp, subresource, applied_set)

    if live is None:
        result = cfg
        entries = _encode([me])
        if entries:
            result.setdefault("metadata", {})["managedFields"] = entries
        return result

    managers = _decode(_managed_of(live))
    base = copy.deepcopy(_strip_managed(live))
    merged = _merge(base, cfg, schema)
    live_values = _values_of(base, schema, subresource)
    added, _removed, modified = _compare(live_values, _values_of(merged, schema, subresource))
    changed = added | modified

    previous = next((m for m in managers if m.identity == me.identity), None)
    conflicts: list[tuple[_Manager, Path]] = []
    for m in managers:
        if m is previous:
            continue
        for p in sorted(m.fields & changed, key=_path_key):
            conflicts.append((m, p))
    if conflicts and not force:
        raise conflict_error(conflicts)
    for m in managers:
        if m is not previous:
            m.fields -= changed

    last_set = previous.fields if previous is not None else set()
    if previous is not None:
        managers.remove(previous)
    managers.append(me)

    owned: set[Path] = set()
    for m in managers:
        owned |= m.fields
    owned_parents = _prefixes(owned)
    for p in sorted(last_set - applied_set, key=len):
        if p not in owned and p not in owned_parents:
            _remove(merged, p)

    if previous is not None and not changed and previous.fields == applied_set and _same(merged, base):
        return copy.deepcopy(live)  # no-op: leave the object and its timestamps alone

    entries = _encode(managers)
    meta = merged.setdefault("metadata", {})
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)
    return merged
