"""The files of configMap, secret, downwardAPI and projected volumes (upstream pkg/volume/{configmap,secret,
downwardapi,projected} MakePayload), and the kubelet's service account token manager.

Each builder returns `{path: FileProjection}` for the AtomicWriter, or raises `VolumeError`
with upstream's message when a non-optional source is missing.
"""

from __future__ import annotations

import base64
import calendar
import random
import time

from .atomic_writer import FileProjection
from .envvars import EnvError, field_value, resource_value
from .objects import ObjectSource

DEFAULT_MODE = 0o644
TOKEN_MAX_TTL = 24 * 3600
TOKEN_JITTER = 10.0


class VolumeError(Exception):
    pass


def _items_payload(data: dict[str, bytes], items: list[dict] | None, mode: int, what: str) -> dict:
    if not items:
        return {k: FileProjection(v, mode) for k, v in data.items()}
    out = {}
    for item in items:
        if item.get("key") not in data:
            raise VolumeError(f"{what} references non-existent {what.split()[0]} key: {item.get('key')}")
        out[item["path"]] = FileProjection(data[item["key"]], item.get("mode", mode) if item.get("mode") is not None
                                           else mode)
    return out


def configmap_data(cm: dict) -> dict[str, bytes]:
    data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return data


def secret_data(secret: dict) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


async def configmap_payload(source: ObjectSource, ns: str, ref: dict, mode: int) -> dict:
    cm = await source.configmap(ns, ref.get("name", ""))
    if cm is None:
        if ref.get("optional"):
            return {}
        raise VolumeError(f'configmap "{ref.get("name", "")}" not found')
    return _items_payload(configmap_data(cm), ref.get("items"), mode, "configmap")


async def secret_payload(source: ObjectSource, ns: str, ref: dict, mode: int, name_key: str = "name") -> dict:
    name = ref.get(name_key, "")
    secret = await source.secret(ns, name)
    if secret is None:
        if ref.get("optional"):
            return {}
        raise VolumeError(f'secret "{name}" not found')
    return _items_payload(secret_data(secret), ref.get("items"), mode, "secret")


def downward_payload(pod: dict, items: list[dict], mode: int, allocatable: dict) -> dict:
    out = {}
    for item in items or ():
        try:
            if item.get("fieldRef"):
                value = field_value(pod, item["fieldRef"].get("fieldPath", ""))
            elif item.get("resourceFieldRef"):
                ref = item["resourceFieldRef"]
                value = resource_value(pod, ref.get("containerName", ""), ref.get("resource", ""), ref.get("divisor"),
                                       allocatable)
            else:
                continue
        except EnvError as e:
            raise VolumeError(str(e)) from None
        out[item["path"]] = FileProjection(value.encode(), item["mode"] if item.get("mode") is not None else mode)
    return out


class TokenManager:
    """Bound service account tokens by (namespace, account, audience, expiration, pod), refreshed once 80% of
    their life has passed (or after 24 hours), as upstream's token manager."""

    def __init__(self, source: ObjectSource, clock=time.time):
        self.source, self.clock = source, clock
        self.tokens: dict[tuple, tuple[str, float, int]] = {}  # key -> (token, expires at, ttl)

    def _stale(self, expires: float, ttl: int) -> bool:
        now, jitter = self.clock(), random.random() * TOKEN_JITTER
        issued = expires - ttl
        return now > issued + TOKEN_MAX_TTL - jitter or now > expires - ttl * 20 // 100 - jitter

    async def get(self, pod: dict, audience: str, expiration: int) -> str:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        ns, account = meta.get("namespace", ""), spec.get("serviceAccountName") or "default"
        key = (ns, account, audience, expiration, meta.get("uid"))
        held = self.tokens.get(key)
        if held is not None and not self._stale(held[1], held[2]):
            return held[0]
        spec_body = {"expirationSeconds": expiration,
                     "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": meta["uid"]}}
        if audience:
            spec_body["audiences"] = [audience]
        try:
            status = await self.source.token(ns, account, spec_body)
        except Exception as e:  # noqa: BLE001 - any API failure fails the mount, retried later
            raise VolumeError(f'failed to fetch token: {e}') from None
        expires = calendar.timegm(time.strptime(status["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ"))
        ttl = max(1, int(expires - self.clock()))
        self.tokens[key] = (status["token"], float(expires), ttl)
        return status["token"]

    def forget(self, pod_uid: str) -> None:
        for key in [k for k in self.tokens if k[4] == pod_uid]:
            del self.tokens[key]


async def projected_payload(source: ObjectSource, tokens: TokenManager, pod: dict, vol: dict,
                            allocatable: dict) -> dict:
    ns = pod["metadata"].get("namespace", "")
    mode = vol.get("defaultMode", DEFAULT_MODE) if vol.get("defaultMode") is not None else DEFAULT_MODE
    out: dict = {}
    for src in vol.get("sources") or ():
        if src.get("configMap") is not None:
            out.update(await configmap_payload(source, ns, src["configMap"], mode))
        elif src.get("secret") is not None:
            out.update(await secret_payload(source, ns, src["secret"], mode))
        elif src.get("downwardAPI") is not None:
            out.update(downward_payload(pod, src["downwardAPI"].get("items") or [], mode, allocatable))
        elif src.get("serviceAccountToken") is not None:
            sat = src["serviceAccountToken"]
            token = await tokens.get(pod, sat.get("audience") or "", int(sat.get("expirationSeconds") or 3600))
            out[sat.get("path") or "token"] = FileProjection(token.encode(), mode)
    return out


async def volume_payload(source: ObjectSource, tokens: TokenManager, pod: dict, vol: dict,
                         allocatable: dict) -> dict | None:
    """The payload of an AtomicWriter-backed volume; None for other volume types."""
    ns = pod["metadata"].get("namespace", "")
    for kind in ("configMap", "secret", "downwardAPI", "projected"):
        src = vol.get(kind)
        if src is None:
            continue
        mode = src.get("defaultMode") if src.get("defaultMode") is not None else DEFAULT_MODE
        if kind == "configMap":
            return await configmap_payload(source, ns, src, mode)
        if kind == "secret":
            return await secret_payload(source, ns, src, mode, "secretName")
        if kind == "downwardAPI":
            return downward_payload(pod, src.get("items") or [], mode, allocatable)
        return await projected_payload(source, tokens, pod, src, allocatable)
    return None
