"""Legacy discovery from the client side: which resources the server serves, and how."""

from __future__ import annotations

from dataclasses import dataclass

from .rest import RESTClient


@dataclass(frozen=True)
class APIResource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


async def server_resources(client: RESTClient, preferred_only: bool = True) -> list[APIResource]:
    """Every top-level resource (no subresources), preferred versions only by default."""
    versions = [("", v) for v in (await client.request("GET", "/api")).get("versions", [])]
    for g in (await client.request("GET", "/apis")).get("groups", []):
        chosen = [g["preferredVersion"]] if preferred_only and g.get("preferredVersion") else g.get("versions", [])
        versions += [(g["name"], v["version"]) for v in chosen]
    out = []
    for group, version in versions:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        doc = await client.request("GET", path)
        for r in doc.get("resources", []):
            if "/" in r["name"]:
                continue
            out.append(APIResource(group, version, r["name"], r["kind"], r["namespaced"], tuple(r.get("verbs", ()))))
    return out
