"""API discovery: legacy (/api, /apis, /api/v1, /apis/G/V) and aggregated v2.

Documents are rebuilt only when the set of served resources changes (a CRD comes or
goes) and are served as shared bytes with an ETag.
"""

from __future__ import annotations

import hashlib

import orjson

from ..api.resources import ResourceIndex, ResourceType

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str | None) -> str | None:
    """The aggregated content type the client accepts, if any (v2 preferred)."""
    if not accept:
        return None
    for part in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList":
            return params.get("v")
    return None


def _verbs(rt: ResourceType) -> list[str]:
    return sorted(rt.verbs)


def _legacy_resources(types: list[ResourceType]) -> list[dict]:
    out = []
    for rt in types:
        entry = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": _verbs(rt),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        entry["storageVersionHash"] = hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).hexdigest()[:11]
        out.append(entry)
        for sub in rt.subresources:
            sub_entry = {
                "name": f"{rt.plural}/{sub.name}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": sub.kind or rt.kind,
                "verbs": sorted(sub.verbs),
            }
            if sub.group is not None and (sub.group != rt.group or sub.version != rt.version):
                sub_entry["group"] = sub.group
                sub_entry["version"] = sub.version
            out.append(sub_entry)
    return out


def _group_versions(group: str, versions: list[str]) -> dict:
    return {
        "name": group,
        "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
        "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
    }


def _aggregated_resource(rt: ResourceType) -> dict:
    entry = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": _verbs(rt),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subs = []
    for sub in rt.subresources:
        subs.append({
            "subresource": sub.name,
            "responseKind": {
                "group": sub.group if sub.group is not None else rt.group,
                "version": sub.version or rt.version,
                "kind": sub.kind or rt.kind,
            },
            "verbs": sorted(sub.verbs),
        })
    if subs:
        entry["subresources"] = subs
    return entry


class Discovery:
    """Cached discovery documents for a ResourceIndex; call `invalidate()` on change."""

    def __init__(self, index: ResourceIndex):
        self.index = index
        self._cache: dict[str, tuple[bytes, str]] = {}

    def invalidate(self) -> None:
        self._cache.clear()

    def _cached(self, key: str, build) -> tuple[bytes, str]:
        hit = self._cache.get(key)
        if hit is None:
            body = orjson.dumps(build())
            hit = self._cache[key] = (body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        return hit

    def api_versions(self, server_address: str) -> tuple[bytes, str]:
        return self._cached("api", lambda: {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        })

    def api_group_list(self) -> tuple[bytes, str]:
        def build():
            groups = [_group_versions(g, vs) for g, vs in self.index.groups().items() if g]
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

        return self._cached("apis", build)

    def api_group(self, group: str) -> tuple[bytes, str] | None:
        versions = self.index.groups().get(group)
        if not versions or not group:
            return None
        return self._cached(f"group/{group}", lambda: {"kind": "APIGroup", "apiVersion": "v1",
                                                       **_group_versions(group, versions)})

    def resource_list(self, group: str, version: str) -> tuple[bytes, str] | None:
        types = self.index.in_group_version(group, version)
        if not types:
            return None
        gv = f"{group}/{version}" if group else version
        return self._cached(f"rl/{gv}", lambda: {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": _legacy_resources(types),
        })

    def aggregated(self, legacy_core: bool, version: str = "v2") -> tuple[bytes, str]:
        """The APIGroupDiscoveryList for /api (core only) or /apis (every named group)."""

        def build():
            items = []
            for group, versions in self.index.groups().items():
                if bool(group) == legacy_core:
                    continue
                items.append({
                    "metadata": {"name": group, "creationTimestamp": None},
                    "versions": [
                        {
                            "version": v,
                            "resources": [_aggregated_resource(rt) for rt in self.index.in_group_version(group, v)],
                            "freshness": "Current",
                        }
                        for v in versions
                    ],
                })
            return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
                    "metadata": {}, "items": items}

        return self._cached(f"agg/{legacy_core}/{version}", build)
