"""A small JSONPath subset for CRD additionalPrinterColumns.

Supported: `.a.b`, `['a.b']`, `[0]`, `[-1]`, `[*]`, `.*`, `[?(@.x.y=="v")]` (==, !=, <, >, <=, >=, or a bare
existence test `[?(@.x)]`), optionally wrapped in `{...}`.
"""

from __future__ import annotations

import json
import re
from typing import Any

_MISSING = object()


class JSONPathError(ValueError):
    pass


def _split_filter(expr: str) -> tuple[list, str | None, Any]:
    m = re.fullmatch(r"\s*@((?:\.[^.=!<>\s]+)*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*", expr)
    if not m:
        raise JSONPathError(f"unsupported filter: {expr}")
    path = [p for p in m.group(1).split(".") if p]
    op = m.group(2)
    value: Any = None
    if op:
        raw = m.group(3)
        if raw[:1] in ("'", '"') and raw[-1:] == raw[:1]:
            value = raw[1:-1]
        else:
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
    return [("field", p) for p in path], op, value


def parse(path: str) -> list[tuple]:
    s = path.strip()
    if s.startswith("{") and s.endswith("}"):
        s = s[1:-1].strip()
    if s.startswith("$"):
        s = s[1:]
    steps: list[tuple] = []
    i = 0
    n = len(s)
    while i < n:
        ch = s[i]
        if ch == ".":
            i += 1
            if i < n and s[i] == "*":
                steps.append(("wild",))
                i += 1
                continue
            start = i
            while i < n and s[i] not in ".[":
                if s[i] == "\\" and i + 1 < n:
                    i += 1
                i += 1
            name = s[start:i].replace("\\.", ".")
            if name:
                steps.append(("field", name))
        elif ch == "[":
            depth, j = 0, i
            while j < n:
                if s[j] == "[":
                    depth += 1
                elif s[j] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= n:
                raise JSONPathError(f"unterminated bracket in {path}")
            inner = s[i + 1 : j].strip()
            i = j + 1
            if inner == "*":
                steps.append(("wild",))
            elif inner.startswith("?(") and inner.endswith(")"):
                fpath, op, value = _split_filter(inner[2:-1])
                steps.append(("filter", fpath, op, value))
            elif inner[:1] in ("'", '"'):
                steps.append(("field", inner[1:-1]))
            elif re.fullmatch(r"-?\d+", inner):
                steps.append(("index", int(inner)))
            elif re.fullmatch(r"-?\d*:-?\d*", inner):
                a, b = inner.split(":")
                steps.append(("slice", int(a) if a else None, int(b) if b else None))
            else:
                raise JSONPathError(f"unsupported bracket expression [{inner}]")
        else:
            start = i
            while i < n and s[i] not in ".[":
                i += 1
            steps.append(("field", s[start:i]))
    return steps


def _walk(value: Any, steps: list[tuple]) -> list[Any]:
    current = [value]
    for step in steps:
        nxt: list[Any] = []
        kind = step[0]
        for v in current:
            if kind == "field":
                if isinstance(v, dict) and step[1] in v:
                    nxt.append(v[step[1]])
            elif kind == "index":
                if isinstance(v, list) and -len(v) <= step[1] < len(v):
                    nxt.append(v[step[1]])
            elif kind == "slice":
                if isinstance(v, list):
                    nxt.extend(v[step[1] : step[2]])
            elif kind == "wild":
                if isinstance(v, list):
                    nxt.extend(v)
                elif isinstance(v, dict):
                    nxt.extend(v.values())
            elif kind == "filter":
                items = v if isinstance(v, list) else list(v.values()) if isinstance(v, dict) else []
                nxt.extend(item for item in items if _matches(item, step[1], step[2], step[3]))
        current = nxt
    return current


def _matches(item: Any, path: list[tuple], op: str | None, value: Any) -> bool:
    found = _walk(item, path)
    if op is None:
        return bool(found)
    if not found:
        return False
    got = found[0]
    try:
        if op == "==":
            return got == value or (not isinstance(got, str) and str(got) == str(value))
        if op == "!=":
            return got != value
        if op == "<":
            return got < value
        if op == ">":
            return got > value
        if op == "<=":
            return got <= value
        if op == ">=":
            return got >= value
    except TypeError:
        return False
    return False


def find(obj: Any, path: str) -> list[Any]:
    """All values the path selects in obj (empty when nothing matches)."""
    return _walk(obj, parse(path))


def first(obj: Any, path: str, default: Any = _MISSING) -> Any:
    found = find(obj, path)
    if found:
        return found[0]
    return None if default is _MISSING else default
