"""What a request is about, read from its path and method (upstream's RequestInfoFactory)."""

from __future__ import annotations

from dataclasses import dataclass

TRUE_VALUES = ("1", "t", "T", "TRUE", "true", "True")


def parse_bool(value: str | None) -> bool:
    """Go's strconv.ParseBool truths: the Python client sends `True`, kubectl `true`."""
    return value in TRUE_VALUES


# subresources a namespace itself has, so /api/v1/namespaces/x/status is not "resource status in x"
NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclass
class RequestInfo:
    is_resource: bool
    path: str
    verb: str = ""
    api_prefix: str = ""  # "api" or "apis"
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    name: str = ""
    subresource: str = ""
    parts: tuple = ()


def parse(method: str, path: str, query) -> RequestInfo:
    segments = [s for s in path.split("/") if s]
    info = RequestInfo(is_resource=False, path=path, verb=method.lower())
    if not segments or segments[0] not in ("api", "apis"):
        return info
    info.api_prefix = segments[0]
    rest = segments[1:]
    if info.api_prefix == "api":
        if not rest:
            return info
        info.version = rest[0]
        rest = rest[1:]
    else:
        if len(rest) < 2:
            if rest:
                info.group = rest[0]
            return info
        info.group, info.version = rest[0], rest[1]
        rest = rest[2:]
    if not rest:
        return info
    info.is_resource = True
    watch_prefix = False
    if rest[0] == "watch":  # deprecated /watch/ path prefix
        watch_prefix = True
        rest = rest[1:]
    if rest and rest[0] == "namespaces":
        if len(rest) >= 3 and not (len(rest) == 3 and rest[2] in NAMESPACE_SUBRESOURCES):
            info.namespace = rest[1]
            rest = rest[2:]
        elif len(rest) >= 2:
            info.namespace = rest[1]
    info.parts = tuple(rest)
    if rest:
        info.resource = rest[0]
    if len(rest) >= 2:
        info.name = rest[1]
    if len(rest) >= 3:
        info.subresource = rest[2]
    if len(rest) > 3:
        info.subresource = "/".join(rest[2:])
    method = method.upper()
    if watch_prefix:
        info.verb = "watch"
    elif method == "GET":
        if info.name:
            info.verb = "get"
        else:
            info.verb = "watch" if parse_bool(query.get("watch")) else "list"
    elif method == "POST":
        info.verb = "create"
    elif method == "PUT":
        info.verb = "update"
    elif method == "PATCH":
        info.verb = "patch"
    elif method == "DELETE":
        info.verb = "delete" if info.name else "deletecollection"
    return info
