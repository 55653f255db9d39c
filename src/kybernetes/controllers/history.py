"""ControllerRevisions: the stored history of a StatefulSet's or DaemonSet's pod template.

As upstream's `pkg/controller/history`: a revision holds a patch that replaces the
owner's template, is named `<owner>-<hash>` where the hash covers the patch and the
owner's collision count, and carries a revision number that grows with every change.
"""

from __future__ import annotations

import copy

import orjson

from ..client.rest import ApiError, RESTClient

HASH_LABEL = "controller.kubernetes.io/hash"
REVISION_HASH_LABEL = "controller-revision-hash"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # upstream's SafeEncodeString alphabet: no vowels, no look-alikes
GVR = ("apps", "v1", "controllerrevisions")


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in text)


def revision_data(template: dict) -> dict:
    """The patch a revision stores: the whole pod template, replacing the owner's."""
    tpl = copy.deepcopy(template or {})
    tpl["$patch"] = "replace"
    return {"spec": {"template": tpl}}


def template_of(revision: dict) -> dict:
    tpl = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    tpl.pop("$patch", None)
    return tpl


def hash_revision(data: dict, collision_count: int | None) -> str:
    raw = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        raw += str(collision_count).encode()
    return safe_encode(str(_fnv32a(raw)))


def revision_number(revision: dict) -> int:
    return int(revision.get("revision") or 0)


def sort_revisions(revisions: list[dict]) -> list[dict]:
    return sorted(revisions, key=lambda r: (revision_number(r), r["metadata"].get("creationTimestamp") or "",
                                            r["metadata"]["name"]))


def next_revision(revisions: list[dict]) -> int:
    return max((revision_number(r) for r in revisions), default=0) + 1


def owned_revisions(cache: list[dict], owner: dict) -> list[dict]:
    uid = owner["metadata"]["uid"]
    return [r for r in cache if any(ref.get("uid") == uid and ref.get("controller")
                                    for ref in r["metadata"].get("ownerReferences") or ())]


def new_revision(owner: dict, api_version: str, kind: str, template: dict, number: int,
                 collision_count: int | None) -> dict:
    data = revision_data(template)
    h = hash_revision(data, collision_count)
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels[HASH_LABEL] = h
    meta = owner["metadata"]
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": f"{meta['name']}-{h}", "namespace": meta["namespace"], "labels": labels,
                         "ownerReferences": [{"apiVersion": api_version, "kind": kind, "name": meta["name"],
                                              "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
            "data": data, "revision": number}


class RevisionHistory:
    """Find, create and prune one owner's revisions through the API."""

    def __init__(self, client: RESTClient, api_version: str, kind: str):
        self.client = client
        self.api_version = api_version
        self.kind = kind

    async def ensure(self, owner: dict, revisions: list[dict]) -> tuple[dict, int]:
        """The revision for the owner's current template and the (maybe bumped) collision count.

        An equal older revision is reused and renumbered to be the newest, as upstream does
        on a rollback; a name clash with different data bumps the collision count.
        """
        spec = owner.get("spec") or {}
        template = spec.get("template") or {}
        data = revision_data(template)
        collision = int((owner.get("status") or {}).get("collisionCount") or 0)
        ordered = sort_revisions(revisions)
        number = next_revision(ordered)
        equal = [r for r in ordered if r.get("data") == data]
        if equal:
            found = equal[-1]
            if ordered and found is not ordered[-1]:
                body = {**found, "revision": number}
                found = await self.client.update(*GVR, body, found["metadata"]["namespace"])
            return found, collision
        ns = owner["metadata"]["namespace"]
        for _ in range(10):
            rev = new_revision(owner, self.api_version, self.kind, template, number, collision)
            try:
                return await self.client.create(*GVR, rev, ns), collision
            except ApiError as e:
                if e.code != 409:
                    raise
                existing = await self.client.get(*GVR, rev["metadata"]["name"], ns)
                if existing.get("data") == data and any(
                        ref.get("uid") == owner["metadata"]["uid"]
                        for ref in existing["metadata"].get("ownerReferences") or ()):
                    return existing, collision
                collision += 1
        raise RuntimeError(f"could not name a revision for {owner['metadata']['name']}")

    async def truncate(self, owner: dict, revisions: list[dict], keep_names: set[str]) -> None:
        """Delete the oldest revisions not in use beyond spec.revisionHistoryLimit."""
        limit = int((owner.get("spec") or {}).get("revisionHistoryLimit", 10) or 0)
        unused = [r for r in sort_revisions(revisions) if r["metadata"]["name"] not in keep_names]
        for rev in unused[:max(0, len(unused) - limit)]:
            try:
                await self.client.delete(*GVR, rev["metadata"]["name"], rev["metadata"]["namespace"])
            except ApiError as e:
                if e.code != 404:
                    raise
