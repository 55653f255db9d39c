"""ResourceQuota accounting shared by the quota controller and the API server's quota admission.

What one object uses of each quota resource, as upstream's evaluators (`pkg/quota/v1/evaluator/core`)
count it: object counts (`pods`, `count/pods`, `count/deployments.apps`, ...), pod compute requests
and limits (terminal pods count nothing), claim storage (also per StorageClass), Service node ports
and load balancers. Also scope matching for pods and quantity formatting for status and messages.
"""

from __future__ import annotations

import datetime
from fractions import Fraction

from .quantity import parse_quantity

# the short names kept for compatibility, each an alias of `count/<resource>`
LEGACY_COUNTS = {("", "pods"): "pods", ("", "services"): "services", ("", "configmaps"): "configmaps",
                 ("", "secrets"): "secrets", ("", "persistentvolumeclaims"): "persistentvolumeclaims",
                 ("", "replicationcontrollers"): "replicationcontrollers", ("", "resourcequotas"): "resourcequotas"}
COMPUTE = ("cpu", "memory", "ephemeral-storage")
# resources whose quota makes every container state a value (upstream's backward-compatibility rule)
MUST_SPECIFY = ("cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
CLASS_SUFFIX = ".storageclass.storage.k8s.io/"


def count_name(group: str, plural: str) -> str:
    return f"count/{plural}.{group}" if group else f"count/{plural}"


def _q(value) -> Fraction:
    try:
        return parse_quantity(value)
    except ValueError:
        return Fraction(0)


def _parse_time(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def pod_counts(pod: dict, now: datetime.datetime | None = None) -> bool:
    """Whether a pod still uses quota: not terminal, not past its deletion grace period."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    meta = pod.get("metadata") or {}
    deleted = _parse_time(meta.get("deletionTimestamp") or "")
    if deleted is not None:
        now = now or datetime.datetime.now(datetime.UTC)
        if now > deleted + datetime.timedelta(seconds=meta.get("deletionGracePeriodSeconds") or 0):
            return False
    return True


def pod_resources(pod: dict, kind: str) -> dict[str, Fraction]:
    """Effective requests or limits: max(sum of containers, each init container) plus overhead."""
    spec = pod.get("spec") or {}
    total: dict[str, Fraction] = {}
    for c in spec.get("containers") or ():
        for name, value in (((c.get("resources") or {}).get(kind)) or {}).items():
            total[name] = total.get(name, Fraction(0)) + _q(value)
    for c in spec.get("initContainers") or ():
        for name, value in (((c.get("resources") or {}).get(kind)) or {}).items():
            total[name] = max(total.get(name, Fraction(0)), _q(value))
    for name, value in (spec.get("overhead") or {}).items():
        if name in total:
            total[name] += _q(value)
    return total


def _pod_usage(pod: dict) -> dict[str, Fraction]:
    if not pod_counts(pod):
        return {}
    out = {"pods": Fraction(1), count_name("", "pods"): Fraction(1)}
    requests, limits = pod_resources(pod, "requests"), pod_resources(pod, "limits")
    for name, value in requests.items():
        out[f"requests.{name}"] = value
        if name in COMPUTE:
            out[name] = value
    for name, value in limits.items():
        out[f"limits.{name}"] = value
    return out


def _service_usage(svc: dict) -> dict[str, Fraction]:
    spec = svc.get("spec") or {}
    out = {"services": Fraction(1), count_name("", "services"): Fraction(1)}
    stype = spec.get("type") or "ClusterIP"
    ports = sum(1 for p in spec.get("ports") or () if p.get("nodePort"))
    if stype == "LoadBalancer":
        out["services.loadbalancers"] = Fraction(1)
    if stype in ("NodePort", "LoadBalancer"):
        out["services.nodeports"] = Fraction(ports or len(spec.get("ports") or ()))
    return out


def _claim_usage(pvc: dict) -> dict[str, Fraction]:
    spec = pvc.get("spec") or {}
    storage = _q(((spec.get("resources") or {}).get("requests") or {}).get("storage") or 0)
    out = {"persistentvolumeclaims": Fraction(1), count_name("", "persistentvolumeclaims"): Fraction(1),
           "requests.storage": storage}
    cls = spec.get("storageClassName") or ((pvc.get("metadata") or {}).get("annotations") or {}).get(
        "volume.beta.kubernetes.io/storage-class")
    if cls:
        out[f"{cls}{CLASS_SUFFIX}requests.storage"] = storage
        out[f"{cls}{CLASS_SUFFIX}persistentvolumeclaims"] = Fraction(1)
    return out


def usage(group: str, plural: str, obj: dict) -> dict[str, Fraction]:
    """The quota resources one object uses."""
    if (group, plural) == ("", "pods"):
        return _pod_usage(obj)
    if (group, plural) == ("", "services"):
        return _service_usage(obj)
    if (group, plural) == ("", "persistentvolumeclaims"):
        return _claim_usage(obj)
    out = {count_name(group, plural): Fraction(1)}
    legacy = LEGACY_COUNTS.get((group, plural))
    if legacy:
        out[legacy] = Fraction(1)
    return out


def tracked_kind(resource: str) -> tuple[str, str] | None:
    """The (group, plural) whose objects a quota resource counts, when it counts objects."""
    for key, legacy in LEGACY_COUNTS.items():
        if resource == legacy:
            return key
    if resource.startswith("count/"):
        plural, _, group = resource[len("count/"):].partition(".")
        return group, plural
    if resource in MUST_SPECIFY or resource.startswith(("requests.", "limits.")) and resource != "requests.storage":
        return "", "pods"
    if resource.startswith("services."):
        return "", "services"
    if resource == "requests.storage" or CLASS_SUFFIX in resource:
        return "", "persistentvolumeclaims"
    return None


def _best_effort(pod: dict) -> bool:
    for c in list((pod.get("spec") or {}).get("containers") or ()) + list(
            (pod.get("spec") or {}).get("initContainers") or ()):
        res = c.get("resources") or {}
        if res.get("requests") or res.get("limits"):
            return False
    return True


def scopes_match(quota: dict, group: str, plural: str, obj: dict) -> bool:
    """Whether the quota's scopes select the object (scopes only ever select pods)."""
    spec = quota.get("spec") or {}
    scopes = list(spec.get("scopes") or ())
    scopes += [s.get("scopeName") for s in (spec.get("scopeSelector") or {}).get("matchExpressions") or ()
               if s.get("operator") in ("Exists", None)]
    if not scopes:
        return True
    if (group, plural) != ("", "pods"):
        return False
    pspec = obj.get("spec") or {}
    for scope in scopes:
        terminating = pspec.get("activeDeadlineSeconds") is not None
        if scope == "Terminating" and not terminating or scope == "NotTerminating" and terminating:
            return False
        if scope == "BestEffort" and not _best_effort(obj) or scope == "NotBestEffort" and _best_effort(obj):
            return False
    return True


def missing_values(pod: dict, hard: dict) -> str:
    """Upstream's "must specify ..." text when a compute quota needs values the pod lacks ("" if none)."""
    required = [r for r in MUST_SPECIFY if r in hard]
    missing: dict[str, list[str]] = {}
    for c in (pod.get("spec") or {}).get("containers") or ():
        res = c.get("resources") or {}
        for r in required:
            kind, _, name = r.rpartition(".")
            values = res.get(kind or "requests") or {}
            if name not in values:
                missing.setdefault(r, []).append(c.get("name", ""))
    if not missing:
        return ""
    return "must specify " + "; ".join(f"{r} for: {','.join(sorted(names))}" for r, names in sorted(missing.items()))


def format_quantity(value: Fraction, like: str = "") -> str:
    """A quantity as Kubernetes prints it; binary suffixes when `like` (e.g. the hard limit) uses them."""
    if value.denominator != 1:
        milli = value * 1000
        return f"{-((-milli.numerator) // milli.denominator)}m"
    n = int(value)
    binary = any(str(like).endswith(s) for s in ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))
    if binary and n:
        for suffix, power in (("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)):
            if n % (1 << power) == 0:
                return f"{n >> power}{suffix}"
    return str(n)


def total_usage(objects: list[dict], group: str, plural: str, quota: dict) -> dict[str, Fraction]:
    out: dict[str, Fraction] = {}
    for obj in objects:
        if not scopes_match(quota, group, plural, obj):
            continue
        for name, value in usage(group, plural, obj).items():
            out[name] = out.get(name, Fraction(0)) + value
    return out
