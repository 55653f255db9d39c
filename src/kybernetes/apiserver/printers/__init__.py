"""Server-side `meta.k8s.io/v1 Table` generation for `kubectl get` (built-in printers and CRD columns)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

from . import apps, core, other, pod
from .common import AGE_DESC, NAME_DESC, age, age_col, col, name_col, name_of, parse_time, since
from .jsonpath import JSONPathError, find

Printer = tuple[list[dict], Callable[[dict, datetime.datetime], Any]]

REGISTRY: dict[tuple[str, str], Printer] = {}
for _mod in (pod, core, apps, other):
    REGISTRY.update(_mod.PRINTERS)

DEFAULT_COLUMNS = [name_col(), age_col()]


def _default_row(obj: dict, now: datetime.datetime) -> list:
    return [name_of(obj), age(obj, now)]


def lookup(group: str, kind: str) -> Printer:
    return REGISTRY.get((group, kind), (DEFAULT_COLUMNS, _default_row))


def _row_object(obj: dict, include_object: str) -> Any:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


# ---- CRD additionalPrinterColumns -------------------------------------------------------------

_CRD_DEFAULT = [{"name": "Age", "type": "date", "description": AGE_DESC, "jsonPath": ".metadata.creationTimestamp"}]


def crd_column_defs(columns: list[dict]) -> list[dict]:
    defs = [{"name": "Name", "type": "string", "format": "name", "description": NAME_DESC, "priority": 0}]
    for c in columns:
        defs.append(
            col(
                c.get("name", ""),
                c.get("type") or "string",
                c.get("description") or "",
                int(c.get("priority") or 0),
                c.get("format") or "",
            )
        )
    return defs


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def crd_cell(ctype: str, value: Any, now: datetime.datetime) -> Any:
    """Mirror of the apiextensions table convertor's cellForJSONValue (string columns print text)."""
    if value is None:
        return None
    if ctype == "string":
        return _text(value)
    if ctype == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return int(value)
        return None
    if ctype == "number":
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return float(value)
        return None
    if ctype == "boolean":
        return value if isinstance(value, bool) else None
    if ctype == "date":
        if isinstance(value, str):
            if parse_time(value) is None:
                return "<invalid>"
            return since(value, now)
        return None
    return None


def crd_row(obj: dict, columns: list[dict], now: datetime.datetime) -> list:
    cells: list[Any] = [name_of(obj)]
    for c in columns:
        try:
            found = find(obj, c.get("jsonPath") or "")
        except JSONPathError:
            found = []
        if not found:
            cells.append(None)
            continue
        cells.append(crd_cell(c.get("type") or "string", found[0], now))
    return cells


# ---- entry point ------------------------------------------------------------------------------


def table_for(
    group: str,
    kind: str,
    objs: list[dict],
    now: datetime.datetime,
    crd_columns: list[dict] | None = None,
    include_object: str = "Metadata",
) -> dict:
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.UTC)
    if crd_columns is not None:
        columns = crd_columns or _CRD_DEFAULT
        definitions = crd_column_defs(columns)

        def printer(o: dict, t: datetime.datetime) -> list:
            return crd_row(o, columns, t)
    else:
        definitions, printer = lookup(group, kind)
    rows = []
    for obj in objs:
        result = printer(obj, now)
        conditions = None
        if isinstance(result, tuple):
            result, conditions = result
        row: dict[str, Any] = {"cells": list(result)}
        if conditions:
            row["conditions"] = [dict(c) for c in conditions]
        row["object"] = _row_object(obj, include_object)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": [dict(d) for d in definitions],
        "rows": rows,
    }


__all__ = ["REGISTRY", "crd_cell", "crd_row", "lookup", "table_for"]
