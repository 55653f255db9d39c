"""Strategic merge patch, as upstream's apimachinery `strategicpatch` applies it.

Maps merge recursively and null deletes a key. A list whose field has patch strategy
`merge` merges: by its merge key for lists of objects, as an ordered union for lists of
scalars; other lists are replaced. Directives steer the merge and never reach the result:

- `$patch: replace|delete` in a map (replace the map / delete it) or in a list element
  (`replace` replaces the whole list, `delete` removes the element with that merge key);
- `$retainKeys: [...]` drops keys of the original map not listed;
- `$setElementOrder/<field>: [...]` fixes the order of the merged list;
- `$deleteFromPrimitiveList/<field>: [...]` removes values from a merged scalar list.

Ordering follows upstream: patch items keep the patch's order and items only on the
server are slotted in by their live position (so an item new to the list that leads the
patch ends up before the server-only items). Without a schema (or below a field with no
schema) objects still merge and lists are replaced, as in a JSON merge patch.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .. import errors
from ..schema import Node

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER_PREFIX = "$setElementOrder/"
DELETE_PRIMITIVE_PREFIX = "$deleteFromPrimitiveList/"

_DELETED = object()
_MISSING = object()


def _show(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):  # pragma: no cover - decoded JSON always dumps
        return repr(value)


def _strategies(node: Node | None) -> list[str]:
    return [s for s in (node.patch_strategy if node is not None else "").split(",") if s]


def _child(node: Node | None, name: str) -> Node | None:
    return node.field(name) if node is not None else None


def _items(node: Node | None) -> Node | None:
    return node.items() if node is not None else None


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def apply_strategic_merge_patch(doc: dict, patch: Any, schema: Node | None) -> dict:
    """Apply a strategic merge patch to a deep copy of `doc` and return it."""
    if not isinstance(patch, dict):
        raise errors.bad_request("the patch must be a JSON object")
    original = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    result = _merge_map(original, copy.deepcopy(patch), schema, "")
    return {} if result is _DELETED else result


def _merge_map(original: Any, patch: dict, node: Node | None, path: str) -> Any:
    """Merge `patch` into `original` (both owned, mutated); `_DELETED` for `$patch: delete`."""
    if DIRECTIVE in patch:
        directive = patch.pop(DIRECTIVE)
        if directive == "replace":
            return _merge_map({}, patch, node, path)
        if directive == "delete":
            return _DELETED
        raise errors.bad_request(f"unknown patch type: {_show(directive)} in map: {_show(patch)}")
    if not isinstance(original, dict):
        original = {}
    if RETAIN_KEYS in patch:
        _retain_keys(original, patch, path)
    for key in [k for k in patch if k.startswith(SET_ORDER_PREFIX)]:
        _set_element_order(original, patch, key, node, path)
    deletions = []
    for key, value in patch.items():
        if key.startswith(DELETE_PRIMITIVE_PREFIX):
            deletions.append((key[len(DELETE_PRIMITIVE_PREFIX):], value))
            continue
        if value is None:
            original.pop(key, None)
            continue
        child = _child(node, key)
        sub_path = f"{path}.{key}" if path else key
        current = original.get(key, _MISSING)
        if isinstance(value, dict):
            base = current if isinstance(current, dict) and "replace" not in _strategies(child) else {}
            merged = _merge_map(base, value, child, sub_path)
            if merged is _DELETED:
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, list):
            original[key] = _merge_list(current if isinstance(current, list) else [], value, child, sub_path)
        else:
            original[key] = value
    for key, values in deletions:
        if not isinstance(values, list):
            raise errors.bad_request(f"{DELETE_PRIMITIVE_PREFIX}{key} must be a list, got {_show(values)}")
        current = original.get(key)
        if isinstance(current, list):
            original[key] = [v for v in current if not any(_same(v, d) for d in values)]
    return original


def _retain_keys(original: dict, patch: dict, path: str) -> None:
    keep = patch.pop(RETAIN_KEYS)
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise errors.bad_request(f"{RETAIN_KEYS} in {path or 'the patch'} must be a list of strings")
    for key in list(original):
        if key not in keep:
            del original[key]
    for key, value in patch.items():
        if value is None or key.startswith("$"):
            continue
        if key not in keep:
            raise errors.bad_request(
                f"{path or 'the patch'} contains key {key} which is not in {RETAIN_KEYS} {_show(keep)}"
            )


def _set_element_order(original: dict, patch: dict, key: str, node: Node | None, path: str) -> None:
    order = patch.pop(key)
    if not isinstance(order, list):
        raise errors.bad_request(f"{key} must be a list, got {_show(order)}")
    field = key[len(SET_ORDER_PREFIX):]
    child = _child(node, field)
    merge_key = child.patch_merge_key if child is not None else ""
    current = original.get(field, _MISSING)
    patch_list = patch.pop(field, _MISSING)
    if patch_list is not _MISSING and patch_list is not None and not isinstance(patch_list, list):
        raise errors.bad_request(f"{path + '.' if path else ''}{field} must be a list next to {key}")
    if patch_list is None:
        original.pop(field, None)
        return
    has_current = isinstance(current, list)
    if not has_current and patch_list is _MISSING:
        return
    sub_path = f"{path}.{field}" if path else field
    if merge_key:
        for item in order:
            if not isinstance(item, dict) or merge_key not in item:
                raise errors.bad_request(f"{key}: element {_show(item)} does not contain merge key {merge_key}")
        if patch_list is not _MISSING:
            ordered_keys = [item[merge_key] for item in order]
            for item in patch_list:
                if isinstance(item, dict) and item.get(DIRECTIVE) is None and merge_key in item:
                    if not any(_same(item[merge_key], k) for k in ordered_keys):
                        raise errors.bad_request(
                            f"{key}: element with {merge_key} {_show(item[merge_key])} of {field} is not in the order"
                        )
    live = current if has_current else []
    if patch_list is _MISSING:
        merged = list(live)
    else:
        merged = _merge_list(list(live), patch_list, child, sub_path)
    in_order = [item for item in merged if _index(order, item, merge_key) >= 0]
    server_only = [item for item in merged if _index(order, item, merge_key) < 0]
    original[field] = _normalize(in_order, server_only, order, live, merge_key)


def _merge_key_value(item: Any, merge_key: str) -> Any:
    if merge_key:
        return item.get(merge_key, _MISSING) if isinstance(item, dict) else _MISSING
    return item


def _index(items: list, value: Any, merge_key: str) -> int:
    wanted = _merge_key_value(value, merge_key)
    if wanted is _MISSING:
        return -1
    for i, item in enumerate(items):
        if _same(_merge_key_value(item, merge_key), wanted):
            return i
    return -1


def _normalize(patch_items: list, server_only: list, patch_order: list, server_order: list, merge_key: str) -> list:
    """Upstream's normalizeElementOrder: sort each part, then slot server-only items in."""
    patch_items = sorted(patch_items, key=lambda item: _index(patch_order, item, merge_key))
    server_only = sorted(server_only, key=lambda item: _index(server_order, item, merge_key))
    result = []
    i = j = 0
    while i < len(server_only) or j < len(patch_items):
        if j >= len(patch_items):
            result.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            result.append(patch_items[j])
            j += 1
        else:
            li = _index(server_order, server_only[i], merge_key)
            ri = _index(server_order, patch_items[j], merge_key)
            if li >= 0 and ri >= 0 and li < ri:
                result.append(server_only[i])
                i += 1
            else:
                result.append(patch_items[j])
                j += 1
    return result


def _clean(value: Any, node: Node | None, path: str) -> Any:
    """A patch value taken whole: directives resolved, nulls in maps dropped."""
    if isinstance(value, dict):
        merged = _merge_map({}, value, node, path)
        return {} if merged is _DELETED else merged
    if isinstance(value, list):
        return _merge_list([], value, node, path)
    return value


def _merge_list(original: list, patch: list, node: Node | None, path: str) -> list:
    items = _items(node)
    if "merge" not in _strategies(node):
        return [copy.deepcopy(v) if not isinstance(v, dict) else _clean(v, items, path) for v in patch]
    if not original and not patch:
        return []
    merge_key = node.patch_merge_key if node is not None else ""
    kinds = {dict if isinstance(v, dict) else list if isinstance(v, list) else object for v in original + patch}
    if len(kinds) > 1:
        raise errors.bad_request(f"{path}: list elements must all be of the same kind (objects or values)")
    if dict not in kinds:
        merged = []
        for value in original + patch:
            if not any(_same(value, seen) for seen in merged):
                merged.append(value)
        in_patch = [v for v in merged if _index(patch, v, "") >= 0]
        server_only = [v for v in merged if _index(patch, v, "") < 0]
        return _normalize(in_patch, server_only, patch, original, "")
    if not merge_key:
        raise errors.bad_request(f"cannot merge lists without merge key for {path}")
    plain = []
    replace = False
    for element in patch:
        if DIRECTIVE not in element:
            if merge_key not in element:
                raise errors.bad_request(f"map: {_show(element)} does not contain declared merge key: {merge_key}")
            plain.append(element)
            continue
        directive = element[DIRECTIVE]
        if directive == "delete":
            if merge_key not in element:
                raise errors.bad_request(f"map: {_show(element)} does not contain declared merge key: {merge_key}")
            original = [o for o in original if not _same(_merge_key_value(o, merge_key), element[merge_key])]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise errors.bad_request("merging lists cannot yet be specified in the patch")
        else:
            raise errors.bad_request(f"unknown patch type: {_show(directive)} in map: {_show(element)}")
    if replace:
        return [_clean(element, items, path) for element in plain]
    merged = list(original)
    for element in plain:
        at = _index(merged, element, merge_key)
        if at >= 0:
            result = _merge_map(merged[at], element, items, path)
            merged[at] = {} if result is _DELETED else result
        else:
            merged.append(_clean(element, items, path))
    in_patch = [v for v in merged if _index(plain, v, merge_key) >= 0]
    server_only = [v for v in merged if _index(plain, v, merge_key) < 0]
    return _normalize(in_patch, server_only, plain, original, merge_key)
