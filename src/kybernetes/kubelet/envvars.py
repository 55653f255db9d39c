"""A container's environment as upstream's kubelet makes it (kubelet_pods.go makeEnvironmentVariables).

Order: the service variables are computed first (Services of the pod's namespace when
enableServiceLinks, and always the `kubernetes` Service of `default`); then `envFrom`
sources in order (a prefix prepended to each key, keys that are not valid variable names
skipped); then `env` in order, where a literal value is `$(VAR)`-expanded over what is
defined so far and the service variables, and `valueFrom` reads a ConfigMap or Secret key,
a field of the pod or a resource of a container; finally the service variables not
already defined are added. A missing non-optional source raises `EnvError` with upstream's
message (the container then waits with CreateContainerConfigError).
"""

from __future__ import annotations

import base64
import math
import re

from ..api.quantity import parse_quantity
from .objects import ObjectSource

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_VAR = re.compile(r"\$\$|\$\(([^)]*)\)")
MASTER_NAMESPACE, MASTER_SERVICES = "default", ("kubernetes",)


class EnvError(Exception):
    """A container's configuration cannot be made (reason CreateContainerConfigError)."""


def expand(text: str, *maps: dict[str, str]) -> str:
    """`$(VAR)` from the first map that has it; `$$` escapes; unknown references stay as written."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        for env in maps:
            if m.group(1) in env:
                return env[m.group(1)]
        return m.group(0)
    return _VAR.sub(sub, text)


# --- service links (pkg/kubelet/envvars) -----------------------------------------------------------

def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_env(services: list[dict]) -> dict[str, str]:
    """Docker-links-style variables of Services with a cluster IP."""
    env: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP") or ""
        if not ip or ip == "None":
            continue
        name = _env_name(svc["metadata"]["name"])
        ports = spec.get("ports") or []
        env[f"{name}_SERVICE_HOST"] = ip
        if ports:
            env[f"{name}_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                env[f"{name}_SERVICE_PORT_{_env_name(p['name'])}"] = str(p.get("port"))
        for i, p in enumerate(ports):
            proto, port = p.get("protocol") or "TCP", p.get("port")
            if i == 0:
                env[f"{name}_PORT"] = f"{proto.lower()}://{ip}:{port}"
            prefix = f"{name}_PORT_{port}_{proto.upper()}"
            env[prefix] = f"{proto.lower()}://{ip}:{port}"
            env[f"{prefix}_PROTO"] = proto.lower()
            env[f"{prefix}_PORT"] = str(port)
            env[f"{prefix}_ADDR"] = ip
    return env


def services_for_pod(services: list[dict], namespace: str, links: bool) -> list[dict]:
    chosen: dict[str, dict] = {}
    for svc in services:
        meta = svc["metadata"]
        ip = (svc.get("spec") or {}).get("clusterIP") or ""
        if not ip or ip == "None":
            continue
        if meta.get("namespace") == MASTER_NAMESPACE and meta["name"] in MASTER_SERVICES:
            chosen.setdefault(meta["name"], svc)
        elif meta.get("namespace") == namespace and links:
            chosen[meta["name"]] = svc
    return list(chosen.values())


# --- the downward API -------------------------------------------------------------------------------

def format_map(m: dict[str, str]) -> str:
    """`key="value"` lines in key order (fieldpath.FormatMap); values quoted as Go's %q."""
    import json

    return "\n".join(f"{k}={json.dumps(m[k], ensure_ascii=False)}" for k in sorted(m))


def field_value(pod: dict, path: str, pod_ips: list[str] | None = None, host_ips: list[str] | None = None) -> str:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    pod_ips, host_ips = pod_ips or [], host_ips or []
    simple = {"metadata.name": meta["name"], "metadata.namespace": meta.get("namespace", ""),
              "metadata.uid": meta.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
              "spec.serviceAccountName": spec.get("serviceAccountName", ""),
              "status.podIP": pod_ips[0] if pod_ips else "", "status.podIPs": ",".join(pod_ips),
              "status.hostIP": host_ips[0] if host_ips else "", "status.hostIPs": ",".join(host_ips)}
    if path in simple:
        return simple[path]
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(meta.get(path.split(".")[1]) or {})
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    raise EnvError(f"unsupported fieldPath: {path}")


def resource_value(pod: dict, container_name: str, resource: str, divisor, allocatable: dict) -> str:
    """A container's limit or request in units of `divisor` (rounded up); limits not set are the node's
    allocatable, as the kubelet defaults them for the downward API."""
    containers = (pod.get("spec") or {}).get("containers", []) + (pod.get("spec") or {}).get("initContainers", [])
    container = next((c for c in containers if c.get("name") == container_name), None)
    if container is None:
        raise EnvError(f"container {container_name} not found")
    kind, _, name = resource.partition(".")
    res = container.get("resources") or {}
    value = (res.get(kind) or {}).get(name)
    if value is None and kind == "limits":
        value = allocatable.get(name)
    qty = parse_quantity(value) if value is not None else 0
    div = parse_quantity(divisor) if divisor not in (None, "", "0") else 1
    if div == 0:
        div = 1
    if name == "cpu":
        return str(math.ceil(math.ceil(qty * 1000) / math.ceil(div * 1000)))
    return str(math.ceil(math.ceil(qty) / math.ceil(div)))


# --- the environment --------------------------------------------------------------------------------

def _decode(value: str) -> str:
    return base64.b64decode(value).decode(errors="replace")


async def container_env(pod: dict, container: dict, source: ObjectSource | None, pod_ips: list[str],
                        host_ips: list[str], allocatable: dict) -> list[tuple[str, str]]:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    ns = meta.get("namespace") or "default"
    links = spec.get("enableServiceLinks", True) is not False
    svc_env = service_env(services_for_pod(await source.services(ns), ns, links)) if source is not None else {}
    env: dict[str, str] = {}
    cache: dict[tuple[str, str], dict | None] = {}

    async def fetch(kind: str, name: str) -> dict | None:
        if (kind, name) not in cache:
            if source is None:
                cache[(kind, name)] = None
            else:
                cache[(kind, name)] = await (source.configmap if kind == "configmap" else source.secret)(ns, name)
        return cache[(kind, name)]

    for src in container.get("envFrom") or ():
        for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = src.get(key)
            if ref is None:
                continue
            obj = await fetch(kind, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'{kind} "{ref.get("name", "")}" not found')
            data = obj.get("data") or {}
            for k, v in data.items():
                name = (src.get("prefix") or "") + k
                if _ENV_NAME.match(name):
                    env[name] = _decode(v) if kind == "secret" else v
    for e in container.get("env") or ():
        name, vf = e["name"], e.get("valueFrom")
        if e.get("value") or not vf:
            env[name] = expand(e.get("value") or "", env, svc_env)
        elif vf.get("fieldRef"):
            env[name] = field_value(pod, vf["fieldRef"].get("fieldPath", ""), pod_ips, host_ips)
        elif vf.get("resourceFieldRef"):
            ref = vf["resourceFieldRef"]
            env[name] = resource_value(pod, ref.get("containerName") or container["name"], ref.get("resource", ""),
                                       ref.get("divisor"), allocatable)
        else:
            for kind, key, what in (("configmap", "configMapKeyRef", "ConfigMap"), ("secret", "secretKeyRef", "Secret")):
                ref = vf.get(key)
                if ref is None:
                    continue
                obj = await fetch(kind, ref.get("name", ""))
                if obj is None:
                    if ref.get("optional"):
                        break
                    raise EnvError(f'{kind} "{ref.get("name", "")}" not found')
                data = obj.get("data") or {}
                if ref.get("key") not in data:
                    if ref.get("optional"):
                        break
                    raise EnvError(f"couldn't find key {ref.get('key')} in {what} {ns}/{ref.get('name', '')}")
                env[name] = _decode(data[ref["key"]]) if kind == "secret" else data[ref["key"]]
    for k, v in svc_env.items():
        env.setdefault(k, v)
    return list(env.items())
