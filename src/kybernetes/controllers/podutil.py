"""Pod helpers shared by the workload controllers (upstream `controller_utils.go`, `pod_util`).

Controller references, pod readiness and availability, the ranking that decides which
pods a scale-down removes first, and slow-start batches.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import math

from ..api.meta import now, parse_time

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
BURST_REPLICAS = 500  # upstream's cap on creations or deletions in one sync
SLOW_START_INITIAL_BATCH = 1


def controller_ref(obj: dict) -> dict | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def new_controller_ref(owner: dict, api_version: str, kind: str) -> dict:
    meta = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def namespace_index(obj: dict) -> list[str]:
    return [(obj.get("metadata") or {}).get("namespace", "")]


CONTROLLER_INDEX = "controller"


def controller_index(obj: dict) -> list[str]:
    """Objects by their controller's uid; those without a controller under `orphan/NAMESPACE`.

    An owner's sync then reads only its own pods and the orphans it may adopt, not every
    pod of the namespace (which made each sync cost O(pods in the namespace))."""
    ref = controller_ref(obj)
    if ref is not None:
        return [ref.get("uid") or ""]
    return ["orphan/" + (obj.get("metadata") or {}).get("namespace", "")]


def controlled_by(informer, owner: dict) -> list[dict]:
    """The objects of `informer` whose controller is `owner` (an informer with `controller_index`)."""
    meta = owner["metadata"]
    ns = meta.get("namespace", "")
    return [o for o in informer.by_index(CONTROLLER_INDEX, meta["uid"]) if o["metadata"].get("namespace", "") == ns]


def claim_candidates(informer, owner: dict) -> list[dict]:
    """What a claim by `owner` can act on: what it controls and its namespace's orphans
    (objects of other controllers are skipped by the claim anyway)."""
    ns = owner["metadata"].get("namespace", "")
    return controlled_by(informer, owner) + informer.by_index(CONTROLLER_INDEX, "orphan/" + ns)


def is_pod_active(pod: dict) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def _ready_condition(pod: dict) -> dict | None:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return cond
    return None


def is_pod_ready(pod: dict) -> bool:
    cond = _ready_condition(pod)
    return bool(cond and cond.get("status") == "True")


def is_pod_available(pod: dict, min_ready_seconds: int, at: datetime.datetime | None = None) -> bool:
    """Ready for at least minReadySeconds (upstream `podutil.IsPodAvailable`)."""
    if not is_pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = parse_time(_ready_condition(pod).get("lastTransitionTime"))
    if since is None:
        return False
    return since + datetime.timedelta(seconds=min_ready_seconds) <= (at or now())


def seconds_until_available(pod: dict, min_ready_seconds: int) -> float | None:
    """For a ready but not yet available pod, how long until it is (to requeue then)."""
    if not min_ready_seconds or not is_pod_ready(pod):
        return None
    since = parse_time(_ready_condition(pod).get("lastTransitionTime"))
    if since is None:
        return None
    left = (since + datetime.timedelta(seconds=min_ready_seconds) - now()).total_seconds()
    return left if left > 0 else None


def pod_from_template(template: dict, owner: dict, ref: dict) -> dict:
    """A pod for `owner` from its pod template (upstream `GetPodFromTemplate`)."""
    tmeta = template.get("metadata") or {}
    meta = {"generateName": owner["metadata"]["name"] + "-", "namespace": owner["metadata"]["namespace"],
            "labels": dict(tmeta.get("labels") or {}), "ownerReferences": [ref]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}


# --- which pods go first --------------------------------------------------------------------------
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


def _log2_bucket(seconds: float) -> int:
    return int(math.floor(math.log2(seconds))) if seconds >= 1 else 0


def _deletion_cost(pod: dict) -> int:
    try:
        return int(((pod["metadata"].get("annotations") or {}).get(DELETION_COST)) or 0)
    except ValueError:
        return 0


def _restarts(pod: dict) -> int:
    return max((int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or ()),
               default=0)


def deletion_order(pods: list[dict], related: list[dict]) -> list[dict]:
    """Pods sorted so the ones to delete first come first (upstream `ActivePodsWithRanks`).

    Unscheduled before scheduled; Pending before Unknown before Running; not ready before
    ready; lower pod-deletion-cost first; pods sharing a node with more related pods
    first; ready for less time first (log2 buckets); more restarts first; newer first
    (log2 buckets of age).
    """
    on_node: dict[str, int] = {}
    for p in related:
        node = (p.get("spec") or {}).get("nodeName")
        if node and is_pod_active(p):
            on_node[node] = on_node.get(node, 0) + 1
    current = now()

    def age(value: str | None) -> float:
        t = parse_time(value)
        return (current - t).total_seconds() if t else 0.0

    def key(pod: dict):
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        node = spec.get("nodeName") or ""
        ready = is_pod_ready(pod)
        ready_for = age((_ready_condition(pod) or {}).get("lastTransitionTime")) if ready else 0.0
        created = pod["metadata"].get("creationTimestamp")
        return (bool(node), _PHASE_ORDER.get(status.get("phase", "Pending"), 0), ready, _deletion_cost(pod),
                -on_node.get(node, 0) if node else 0, _log2_bucket(ready_for) if ready else 0,
                -_restarts(pod), _log2_bucket(age(created)) if created else -1)

    return sorted(pods, key=key)


async def slow_start_batch(count: int, fn, initial: int = SLOW_START_INITIAL_BATCH) -> tuple[int, list[Exception]]:
    """Call `fn()` count times in batches of 1, 2, 4, ...; stop after the first batch with errors.

    Returns (successes, errors). Upstream's `slowStartBatch`: a quota or admission
    failure costs one call, not hundreds.
    """
    done, size = 0, min(count, initial)
    while size > 0:
        results = await asyncio.gather(*(fn() for _ in range(size)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        done += size - len(errors)
        if errors:
            return done, errors
        remaining = count - done
        size = min(2 * size, remaining)
    return done, []
