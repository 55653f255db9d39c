"""Shared helpers for table printers: time formatting, column definitions, label/selector formatting."""

from __future__ import annotations

import datetime
from typing import Any

NAME_DESC = (
    "Name must be unique within a namespace. Is required when creating resources, although some resources may "
    "allow a client to request the generation of an appropriate name automatically."
)
AGE_DESC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations."
)
CONTAINERS_DESC = "Names of each container in the template."
IMAGES_DESC = "Images referenced by each container in the template."

NONE = "<none>"
UNSET = "<unset>"
UNKNOWN = "<unknown>"


def col(name: str, type_: str = "string", description: str = "", priority: int = 0, format_: str = "") -> dict:
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


def name_col() -> dict:
    return col("Name", "string", NAME_DESC, format_="name")


def age_col() -> dict:
    return col("Age", "string", AGE_DESC)


def created_at_col() -> dict:
    return col("Created At", "date", AGE_DESC)


def get(obj: Any, *path: str | int, default: Any = None) -> Any:
    """Walk nested dicts/lists; return default when anything along the way is missing or null."""
    cur = obj
    for p in path:
        if isinstance(p, int):
            if not isinstance(cur, list) or p >= len(cur) or p < -len(cur):
                return default
            cur = cur[p]
        else:
            if not isinstance(cur, dict):
                return default
            cur = cur.get(p)
        if cur is None:
            return default
    return cur


def parse_time(value: Any) -> datetime.datetime | None:
    if not value or not isinstance(value, str):
        return None
    s = value.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    try:
        t = datetime.datetime.fromisoformat(s)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.UTC)
    return t


def human_duration(seconds_total: float) -> str:
    """Port of the rules of apimachinery's duration.HumanDuration (input in seconds)."""
    seconds = int(seconds_total)  # truncates toward zero, like Go
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def since(value: Any, now: datetime.datetime) -> str:
    """translateTimestampSince: human age of a timestamp, "<unknown>" when unset."""
    t = parse_time(value)
    if t is None:
        return UNKNOWN
    return human_duration((now - t).total_seconds())


def between(start: Any, end: Any) -> str:
    a, b = parse_time(start), parse_time(end)
    if a is None or b is None:
        return ""
    return human_duration((b - a).total_seconds())


def rfc3339(value: Any) -> str:
    t = parse_time(value)
    if t is None:
        return "0001-01-01T00:00:00Z"
    return t.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def age(obj: dict, now: datetime.datetime) -> str:
    return since(get(obj, "metadata", "creationTimestamp"), now)


def name_of(obj: dict) -> str:
    return get(obj, "metadata", "name", default="")


def format_labels(labels: dict | None) -> str:
    """labels.FormatLabels: sorted k=v pairs, "<none>" when empty."""
    if not labels:
        return NONE
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(sel: dict | None) -> str:
    """LabelSelectorAsSelector(sel).String(); empty string for nil/empty selectors."""
    if not sel:
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in (sel.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for expr in sel.get("matchExpressions") or []:
        key = expr.get("key", "")
        op = expr.get("operator", "")
        values = ",".join(sorted(expr.get("values") or []))
        if op == "In":
            reqs.append((key, f"{key} in ({values})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({values})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
        else:
            return "<error>"
    reqs.sort(key=lambda r: r[0])
    return ",".join(r[1] for r in reqs)


def format_label_selector(sel: dict | None) -> str:
    """metav1.FormatLabelSelector: like selector_string but "<none>" when empty."""
    s = selector_string(sel)
    return s or NONE


def container_cells(pod_spec: dict | None) -> tuple[str, str]:
    containers = get(pod_spec, "containers", default=[]) or []
    names = ",".join(c.get("name", "") for c in containers)
    images = ",".join(c.get("image", "") for c in containers)
    return names, images


def list_with_more(items: list[str], limit: int, total: int | None = None, empty: str = "") -> str:
    total = len(items) if total is None else total
    ret = ",".join(items[:limit])
    if total > limit:
        return f"{ret} + {total - limit} more..."
    return ret or empty


def bool_ptr(value: Any) -> str:
    if value is None:
        return UNSET
    return "true" if value else "false"


def quantity(value: Any) -> str:
    if value is None:
        return "0"
    return str(value)


def int_or_str(value: Any) -> str:
    return str(value)
