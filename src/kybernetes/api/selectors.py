"""Label and field selectors: the query strings, `LabelSelector` objects, and matching.

Label selectors follow upstream's grammar (`a=b`, `a==b`, `a!=b`, `a in (x,y)`,
`a notin (x)`, `a`, `!a`, `a>1`, `a<1`); field selectors are `f=v`, `f==v`, `f!=v`
with `\\,` `\\=` escapes, over the fields each kind supports (see `FIELDS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from . import errors

Matcher = Callable[[dict], bool]


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if not present:
            return False
        try:
            number, bound = int(value), int(self.values[0])
        except ValueError:
            return False
        return number > bound if self.op == "gt" else number < bound


_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_OP_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*(?:(==|=|!=|>|<)\s*(\S*?)\s*)?$")


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _bad_label(selector: str, why: str) -> errors.StatusError:
    return errors.bad_request(f'unable to parse requirement: {why} (label selector "{selector}")')


def parse_label_selector(selector: str) -> list[Requirement]:
    reqs: list[Requirement] = []
    if not selector.strip():
        return reqs
    for part in _split_top(selector):
        if not part.strip():
            raise _bad_label(selector, "found '', expected: identifier")
        m = _SET_RE.match(part)
        if m:
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            for v in values:
                if not re.fullmatch(_VALUE, v) or len(v) > 63:
                    raise _bad_label(selector, f"invalid label value: {v!r}")
            if not values and m.group(2) == "in":
                raise _bad_label(selector, "for 'in', 'notin' operators, values set can't be empty")
            reqs.append(Requirement(m.group(1), m.group(2), values))
            continue
        m = _OP_RE.match(part)
        if not m:
            raise _bad_label(selector, f"invalid requirement {part.strip()!r}")
        neg, key, op, value = m.group(1), m.group(2), m.group(3), m.group(4)
        if neg:
            if op:
                raise _bad_label(selector, f"invalid requirement {part.strip()!r}")
            reqs.append(Requirement(key, "!"))
        elif not op:
            reqs.append(Requirement(key, "exists"))
        else:
            value = value or ""
            if op in (">", "<"):
                if not value.lstrip("-").isdigit():
                    raise _bad_label(selector, f"for 'Gt', 'Lt' operators, the value must be an integer: {value!r}")
                reqs.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
                continue
            if not re.fullmatch(_VALUE, value) or len(value) > 63:
                raise _bad_label(selector, f"invalid label value: {value!r}")
            reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
    return reqs


def labels_match(reqs: list[Requirement], labels: dict | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in reqs)


def label_selector_matcher(selector: str) -> Matcher:
    reqs = parse_label_selector(selector)
    return lambda obj: labels_match(reqs, (obj.get("metadata") or {}).get("labels"))


def requirements_from_label_selector(sel: dict | None) -> list[Requirement] | None:
    """A metav1.LabelSelector as requirements; None for a null selector (matches nothing)."""
    if sel is None:
        return None
    reqs = [Requirement(k, "=", (str(v),)) for k, v in sorted((sel.get("matchLabels") or {}).items())]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in sel.get("matchExpressions") or ():
        op = ops.get(expr.get("operator"))
        if op is None:
            raise ValueError(f"invalid label selector operator {expr.get('operator')!r}")
        reqs.append(Requirement(expr.get("key", ""), op, tuple(expr.get("values") or ())))
    return reqs


def selector_matcher(sel: dict | None) -> Callable[[dict | None], bool]:
    """`selector_matches` with the selector parsed once, for matching many objects' labels."""
    reqs = requirements_from_label_selector(sel)
    if reqs is None:
        return lambda labels: False
    return lambda labels: labels_match(reqs, labels)


def selector_matches(sel: dict | None, labels: dict | None) -> bool:
    """Whether a LabelSelector object selects these labels (an empty selector selects all)."""
    reqs = requirements_from_label_selector(sel)
    return reqs is not None and labels_match(reqs, labels)


def label_selector_string(sel: dict | None) -> str:
    """A LabelSelector object in query-string form, as upstream formats it."""
    if not sel:
        return ""
    parts = []
    for r in sorted(requirements_from_label_selector(sel), key=lambda r: r.key):
        if r.op == "=":
            parts.append(f"{r.key}={r.values[0]}")
        elif r.op in ("in", "notin"):
            parts.append(f"{r.key} {r.op} ({','.join(sorted(r.values))})")
        elif r.op == "exists":
            parts.append(r.key)
        elif r.op == "!":
            parts.append(f"!{r.key}")
    return ",".join(parts)


# --- field selectors -----------------------------------------------------------------------------
COMMON = ("metadata.name", "metadata.namespace")
EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
                "reason", "reportingComponent", "source", "type")
# fields each kind accepts beyond metadata.name and metadata.namespace (upstream field label conversions)
FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                  "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName"),
    ("", "Event"): EVENT_FIELDS,
    ("events.k8s.io", "Event"): EVENT_FIELDS,
    ("", "Secret"): ("type",),
    ("", "Namespace"): ("status.phase",),
    ("", "Node"): ("spec.unschedulable",),
    ("", "ReplicationController"): ("status.replicas",),
    ("apps", "ReplicaSet"): ("status.replicas",),
    ("batch", "Job"): ("status.successful",),
    ("", "PersistentVolume"): ("name",),
    ("certificates.k8s.io", "CertificateSigningRequest"): ("spec.signerName",),
}


def _event_value(obj: dict, field: str):
    if field == "source":
        src = obj.get("source") or {}
        return src.get("component") or obj.get("reportingController") or ""
    if field == "reportingComponent":
        return obj.get("reportingComponent") or obj.get("reportingController") or ""
    if field.startswith("involvedObject.") and "involvedObject" not in obj and "regarding" in obj:
        return (obj.get("regarding") or {}).get(field.split(".", 1)[1], "")
    return None


def field_value(obj: dict, field: str) -> str:
    """The string a field selector compares for `field` (missing fields are "")."""
    if field == "status.podIPs":
        ips = (obj.get("status") or {}).get("podIPs") or []
        return ips[0].get("ip", "") if ips else ""
    value = _event_value(obj, field) if field in EVENT_FIELDS else None
    if value is None:
        value = obj
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
            if value is None:
                break
    if value is None:
        return "false" if field in ("spec.hostNetwork", "spec.unschedulable") else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_ESCAPES = {"\\,": ",", "\\=": "=", "\\\\": "\\"}


def parse_field_selector(selector: str) -> list[tuple[str, str, str]]:
    """`(field, op, value)` terms; op is "=" or "!="."""
    terms = []
    if not selector.strip():
        return terms
    for part in re.split(r"(?<!\\),", selector):
        m = re.match(r"^\s*([^=!\s]+)\s*(==|=|!=)(.*)$", part)
        if not m:
            raise errors.bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        value = re.sub(r"\\[,=\\]", lambda e: _ESCAPES[e.group(0)], m.group(3))
        terms.append((m.group(1), "!=" if m.group(2) == "!=" else "=", value))
    return terms


def field_selector_matcher(rt, selector: str, extra_fields=()) -> Matcher:
    """A predicate for `selector` on objects of `rt`; 400 for fields the kind does not support."""
    terms = parse_field_selector(selector)
    allowed = set(COMMON) | set(FIELDS.get((rt.group, rt.kind), ())) | set(extra_fields)
    for name, _, _ in terms:
        if name not in allowed:
            raise errors.bad_request(
                f'Unable to find "{rt.group}/{rt.version}, Resource={rt.plural}" that match label selector "", '
                f'field selector "{selector}": field label not supported: {name}')

    def match(obj: dict) -> bool:
        for name, op, value in terms:
            if name == "name" and rt.kind == "PersistentVolume":
                name = "metadata.name"
            if (field_value(obj, name) == value) != (op == "="):
                return False
        return True

    return match
