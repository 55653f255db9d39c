"""Object metadata helpers shared by every layer: timestamps, names, owner links."""

from __future__ import annotations

import datetime
import secrets
import uuid

# upstream's utilrand alphabet: no vowels (no words), no confusable 0/1/3
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATE_SUFFIX_LENGTH = 5
MAX_GENERATE_PREFIX = 63 - GENERATE_SUFFIX_LENGTH


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def rfc3339(t: datetime.datetime | None = None) -> str:
    """Kubernetes `Time`: RFC 3339 at second precision, UTC, with a Z."""
    t = t or now()
    return t.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(t: datetime.datetime | None = None) -> str:
    """Kubernetes `MicroTime` (Events, Leases)."""
    t = t or now()
    return t.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str) -> str:
    """`generateName` + 5 random characters, the prefix cut so the result stays a valid name."""
    if len(prefix) > MAX_GENERATE_PREFIX:
        prefix = prefix[:MAX_GENERATE_PREFIX]
    return prefix + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(GENERATE_SUFFIX_LENGTH))


def meta(obj: dict) -> dict:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


def controller_of(obj: dict) -> dict | None:
    for ref in meta(obj).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None
