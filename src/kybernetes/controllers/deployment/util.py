"""Deployment helpers (upstream `pkg/controller/deployment/util`): hashes, revisions,
replica arithmetic, annotations and conditions. Pure functions over dicts."""

from __future__ import annotations

import copy
import math
import struct

import orjson

from ...api.meta import parse_time, rfc3339

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
SKIP_COPY = {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}
MAX_REV_HISTORY_CHARS = 2000

# condition reasons (upstream deploymentutil)
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
FAILED_RS_CREATE = "ReplicaSetCreateError"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data: bytes, h: int = 0x811C9DC5) -> int:
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def compute_hash(template: dict, collision_count: int | None) -> str:
    """Upstream `ComputeHash`: FNV-32a of the template (+ collisionCount as 8 LE bytes),
    its decimal digits mapped through the safe-encoding alphabet."""
    h = fnv32a(orjson.dumps(template, option=orjson.OPT_SORT_KEYS))
    if collision_count is not None:
        h = fnv32a(struct.pack("<I", collision_count & 0xFFFFFFFF) + b"\0\0\0\0", h)
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in str(h))


# --- replica arithmetic ---------------------------------------------------------------------------
def replicas(obj: dict | None) -> int:
    if obj is None:
        return 0
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def status_of(obj: dict | None, field: str) -> int:
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def scaled_value(value, total: int, round_up: bool) -> int:
    """Upstream `GetScaledValueFromIntOrPercent`."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        pct = int(text[:-1])
        exact = pct * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def is_rolling(d: dict) -> bool:
    return ((d["spec"].get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def resolve_fenceposts(d: dict) -> tuple[int, int]:
    ru = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    desired = replicas(d)
    surge = scaled_value(ru.get("maxSurge", "25%"), desired, True)
    unavailable = scaled_value(ru.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # validation forbids both zero; never block a rollout
    return surge, unavailable


def max_surge(d: dict) -> int:
    return resolve_fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: dict) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(resolve_fenceposts(d)[1], replicas(d))


def total_replicas(rss: list[dict]) -> int:
    return sum(replicas(rs) for rs in rss if rs is not None)


def total_status(rss: list[dict], field: str) -> int:
    return sum(status_of(rs, field) for rs in rss if rs is not None)


def settled_available(rss: list[dict]) -> int:
    """Available pods that will stay: a ReplicaSet just scaled down may still report the pods it is
    about to delete, so none counts for more than its spec asks (else a second scale-down in a row,
    from a stale status, drops below maxUnavailable)."""
    return sum(min(status_of(rs, "availableReplicas"), replicas(rs)) for rs in rss if rs is not None)


def active(rss: list[dict]) -> list[dict]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def new_rs_new_replicas(d: dict, all_rss: list[dict], new_rs: dict) -> int:
    """How big the new RS may be now (upstream `NewRSNewReplicas`)."""
    if not is_rolling(d):
        return replicas(d)
    current = total_replicas(all_rss)
    max_total = replicas(d) + max_surge(d)
    if current >= max_total:
        return replicas(new_rs)
    return replicas(new_rs) + min(max_total - current, replicas(d) - replicas(new_rs))


def is_saturated(d: dict, rs: dict | None) -> bool:
    if rs is None:
        return False
    desired = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS)
    return (desired == str(replicas(d)) and replicas(rs) == replicas(d)
            and status_of(rs, "availableReplicas") == replicas(d))


def deployment_complete(d: dict, status: dict) -> bool:
    want = replicas(d)
    return (int(status.get("updatedReplicas") or 0) == want and int(status.get("replicas") or 0) == want
            and int(status.get("availableReplicas") or 0) == want
            and int(status.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 0))


def deployment_progressing(d: dict, new: dict) -> bool:
    old = d.get("status") or {}

    def g(s, f):
        return int(s.get(f) or 0)
    return (g(new, "updatedReplicas") > g(old, "updatedReplicas")
            or g(old, "replicas") - g(old, "updatedReplicas") > g(new, "replicas") - g(new, "updatedReplicas")
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas"))


# --- templates and revisions ----------------------------------------------------------------------
def equal_ignore_hash(a: dict, b: dict) -> bool:
    a, b = copy.deepcopy(a or {}), copy.deepcopy(b or {})
    for t in (a, b):
        labels = (t.get("metadata") or {}).get("labels")
        if labels is not None:
            labels.pop(HASH_LABEL, None)
            if not labels:
                t["metadata"].pop("labels")
        if t.get("metadata") == {}:
            t.pop("metadata")
    return a == b


def revision(obj: dict | None) -> int:
    try:
        return int(((obj or {}).get("metadata", {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def created(obj: dict) -> tuple:
    return (obj["metadata"].get("creationTimestamp") or "", obj["metadata"].get("name", ""))


def find_new_rs(d: dict, rss: list[dict]) -> dict | None:
    for rs in sorted(rss, key=created):
        if equal_ignore_hash(rs["spec"].get("template"), d["spec"].get("template")):
            return rs
    return None


def replicas_annotations_need_update(rs: dict, desired: int, max_replicas: int) -> bool:
    ann = rs["metadata"].get("annotations") or {}
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def set_replicas_annotations(rs: dict, desired: int, max_replicas: int) -> bool:
    ann = rs["metadata"].setdefault("annotations", {})
    changed = replicas_annotations_need_update(rs, desired, max_replicas)
    ann[DESIRED_REPLICAS], ann[MAX_REPLICAS] = str(desired), str(max_replicas)
    return changed


def set_new_rs_annotations(d: dict, rs: dict, new_revision: str, exists: bool) -> bool:
    """Upstream `SetNewReplicaSetAnnotations`: copy the deployment's annotations, bump the
    revision (keeping the ones it had in revision-history), add replica annotations."""
    changed = False
    ann = rs["metadata"].setdefault("annotations", {})
    for k, v in (d["metadata"].get("annotations") or {}).items():
        if k in SKIP_COPY or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    old = ann.get(REVISION)
    try:
        old_int = int(old) if old else 0
    except ValueError:
        return changed
    if old_int < int(new_revision):
        ann[REVISION] = new_revision
        changed = True
        if old:
            history = [r for r in ann.get(REVISION_HISTORY, "").split(",") if r]
            while history and len(",".join([*history, old])) > MAX_REV_HISTORY_CHARS:
                history.pop(0)
            ann[REVISION_HISTORY] = ",".join([*history, old])
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


# --- conditions -----------------------------------------------------------------------------------
def get_condition(status: dict, type_: str) -> dict | None:
    return next((c for c in status.get("conditions") or () if c.get("type") == type_), None)


def new_condition(type_: str, status: str, reason: str, message: str) -> dict:
    stamp = rfc3339()
    return {"type": type_, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def set_condition(status: dict, cond: dict) -> None:
    current = get_condition(status, cond["type"])
    if current and current["status"] == cond["status"] and current.get("reason") == cond["reason"]:
        return
    if current and current["status"] == cond["status"]:
        cond["lastTransitionTime"] = current.get("lastTransitionTime")
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: dict, type_: str) -> None:
    conds = [c for c in status.get("conditions") or () if c.get("type") != type_]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


def has_progress_deadline(d: dict) -> bool:
    value = d["spec"].get("progressDeadlineSeconds")
    return value is not None and int(value) != 2**31 - 1


def timed_out(d: dict, status: dict, now) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and (now - since).total_seconds() > int(d["spec"]["progressDeadlineSeconds"])
