"""JSON patch (RFC 6902) over decoded JSON values.

A malformed patch (not a list, unknown op, missing member, bad pointer) is a 400; an
operation that cannot apply to this object (missing path, failed `test`) is a 422
Invalid, as upstream wraps json-patch application errors.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .. import errors

MAX_OPERATIONS = 10000
OPS = ("add", "remove", "replace", "move", "copy", "test")
_MISSING = object()


class _ApplyError(Exception):
    pass


def _unprocessable(message: str) -> errors.StatusError:
    return errors.StatusError(422, "Invalid", message)


def _too_many(count: int) -> errors.StatusError:
    return errors.StatusError(
        413, "RequestEntityTooLarge",
        f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {count}",
    )


def parse_pointer(pointer: Any) -> list[str]:
    """Split an RFC 6901 pointer into unescaped reference tokens."""
    if not isinstance(pointer, str):
        raise errors.bad_request(f"invalid JSON pointer {json.dumps(pointer)}: must be a string")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise errors.bad_request(f'invalid JSON pointer "{pointer}": must start with "/"')
    tokens = []
    for raw in pointer[1:].split("/"):
        i = raw.find("~")
        while i != -1:
            if i + 1 >= len(raw) or raw[i + 1] not in "01":
                raise errors.bad_request(f'invalid JSON pointer "{pointer}": bad escape "~" sequence')
            i = raw.find("~", i + 2)
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _index(token: str, length: int, allow_end: bool, path: str) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        raise _ApplyError(f"invalid array index {json.dumps(token)} in path {path}")
    idx = int(token)
    if idx > length or (idx == length and not allow_end):
        raise _ApplyError(f"array index {idx} out of bounds in path {path}")
    return idx


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise _ApplyError(f"doc is missing path: {path}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, len(node), False, path)]
        else:
            raise _ApplyError(f"doc is missing path: {path}")
    if not isinstance(node, (dict, list)):
        raise _ApplyError(f"doc is missing path: {path}")
    return node


def _get(doc: Any, tokens: list[str], path: str) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _ApplyError(f"doc is missing path: {path}")
        return parent[last]
    return parent[_index(last, len(parent), False, path)]


def _add(doc: Any, tokens: list[str], value: Any, path: str) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    else:
        parent.insert(_index(last, len(parent), True, path), value)
    return doc


def _remove(doc: Any, tokens: list[str], path: str) -> Any:
    if not tokens:
        raise _ApplyError("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _ApplyError(f"doc is missing path: {path}")
        return parent.pop(last)
    return parent.pop(_index(last, len(parent), False, path))


def _validate(ops: Any) -> list[dict]:
    if not isinstance(ops, list):
        raise errors.bad_request("json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp")
    if len(ops) > MAX_OPERATIONS:
        raise _too_many(len(ops))
    for n, op in enumerate(ops):
        if not isinstance(op, dict):
            raise errors.bad_request(f"invalid JSON patch: operation {n} is not an object")
        kind = op.get("op")
        if kind not in OPS:
            if kind is None:
                raise errors.bad_request(f'invalid JSON patch: operation {n} is missing "op"')
            raise errors.bad_request(f"invalid JSON patch: unexpected operation {json.dumps(kind)}")
        if "path" not in op:
            raise errors.bad_request(f'invalid JSON patch: {kind} operation is missing "path"')
        parse_pointer(op["path"])
        if kind in ("move", "copy"):
            if "from" not in op:
                raise errors.bad_request(f'invalid JSON patch: {kind} operation is missing "from"')
            parse_pointer(op["from"])
        if kind in ("add", "replace", "test") and "value" not in op:
            raise errors.bad_request(f'invalid JSON patch: {kind} operation is missing "value"')
    return ops


def apply_json_patch(doc: Any, ops: Any) -> Any:
    """Apply RFC 6902 operations to a deep copy of `doc` and return it."""
    ops = _validate(ops)
    result = copy.deepcopy(doc)
    for op in ops:
        kind, path = op["op"], op["path"]
        tokens = parse_pointer(path)
        try:
            if kind == "add":
                result = _add(result, tokens, copy.deepcopy(op["value"]), path)
            elif kind == "remove":
                _remove(result, tokens, path)
            elif kind == "replace":
                if tokens:
                    _get(result, tokens, path)
                    _remove(result, tokens, path)
                result = _add(result, tokens, copy.deepcopy(op["value"]), path)
            elif kind == "move":
                source = op["from"]
                from_tokens = parse_pointer(source)
                if tokens[: len(from_tokens)] == from_tokens and len(tokens) > len(from_tokens):
                    raise _ApplyError(f"cannot move {source} into its own child {path}")
                if from_tokens == tokens:
                    _get(result, tokens, path)
                    continue
                value = _get(result, from_tokens, source)
                if from_tokens:
                    _remove(result, from_tokens, source)
                result = _add(result, tokens, value, path)
            elif kind == "copy":
                value = copy.deepcopy(_get(result, parse_pointer(op["from"]), op["from"]))
                result = _add(result, tokens, value, path)
            else:  # test
                try:
                    actual = _get(result, tokens, path)
                except _ApplyError:
                    actual = _MISSING
                expected = op["value"]
                if actual is _MISSING or not _json_equal(actual, expected):
                    shown = "null" if actual is _MISSING else json.dumps(actual)
                    raise _ApplyError(
                        f"testing value {path} failed: test operation does not apply: "
                        f"is: {shown}, expected: {json.dumps(expected)}"
                    )
        except _ApplyError as exc:
            message = str(exc)
            if kind != "test":
                message = f"{kind} operation does not apply: {message}"
            raise _unprocessable(message) from None
    return result
