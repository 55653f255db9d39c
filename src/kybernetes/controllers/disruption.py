"""The disruption controller (upstream `pkg/controller/disruption`, `trySync`).

Keeps each PodDisruptionBudget's status: the pods its selector picks (an empty selector picks
every pod of the namespace), how many there should be (`expectedPods`: the pods themselves for
an integer minAvailable, otherwise the summed scale of their controllers, found through the
owner chain ReplicaSet -> Deployment, StatefulSet, ReplicationController), how many must stay
healthy, how many are Ready and not being evicted (`currentHealthy`), and so
`disruptionsAllowed` with the DisruptionAllowed condition. Pods the eviction API recorded in
`disruptedPods` count as unhealthy until they are deleted or two minutes pass.
"""

from __future__ import annotations

import datetime
import logging
import math

from ..api.meta import rfc3339
from ..api.selectors import selector_matches
from ..client.events import WARNING, EventRecorder
from ..client.informer import meta_key
from ..client.rest import ApiError
from .base import Controller, Requeue
from .podutil import controller_ref, is_pod_ready, namespace_index

log = logging.getLogger("kybernetes.disruption")

DELETION_TIMEOUT = 120.0  # seconds a recorded eviction keeps its pod out of currentHealthy
CONDITION = "DisruptionAllowed"


class SyncFailed(Exception):
    pass


def pdb_selects(pdb: dict, pod: dict) -> bool:
    """policy/v1: an empty selector selects every pod, a missing one none."""
    selector = (pdb.get("spec") or {}).get("selector")
    if selector is None:
        return False
    return selector_matches(selector, pod["metadata"].get("labels") or {})


def scaled_value(value, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        try:
            return int(text)
        except ValueError:
            raise SyncFailed(f"invalid value for IntOrString: invalid value {text!r}") from None
    percent = int(text[:-1])
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def _parse(ts: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


class DisruptionController(Controller):
    name = "disruption"
    workers = 2

    def __init__(self, ctx):
        super().__init__(ctx)
        self.recorder = EventRecorder(self.client, "controllermanager")
        self.pdbs = self.watch("policy", "v1", "poddisruptionbudgets")
        self.pdbs.add_indexer("namespace", namespace_index)
        self.pods = self.watch("", "v1", "pods", self._pdbs_of_pod)
        self.pods.add_indexer("namespace", namespace_index)
        self.owners = {}
        for group, plural in (("apps", "replicasets"), ("apps", "deployments"), ("apps", "statefulsets"),
                              ("", "replicationcontrollers")):
            self.owners[plural] = self.watch(group, "v1", plural, self._pdbs_in_namespace)

    # --- events to keys ---------------------------------------------------------------------------
    def _pdbs_of_pod(self, pod: dict) -> list[str]:
        return [meta_key(p) for p in self.pdbs.by_index("namespace", pod["metadata"].get("namespace", ""))
                if pdb_selects(p, pod)]

    def _pdbs_in_namespace(self, obj: dict) -> list[str]:
        return [meta_key(p) for p in self.pdbs.by_index("namespace", obj["metadata"].get("namespace", ""))]

    # --- expected scale ---------------------------------------------------------------------------
    def _controller_scale(self, namespace: str, ref: dict) -> tuple[str, int] | None:
        """(uid, replicas) of the pod's scaling controller, following ReplicaSet -> Deployment."""
        kind, name, uid = ref.get("kind"), ref.get("name"), ref.get("uid")
        plural = {"ReplicaSet": "replicasets", "StatefulSet": "statefulsets",
                  "ReplicationController": "replicationcontrollers"}.get(kind)
        if plural is None:
            return None
        owner = self.owners[plural].get(f"{namespace}/{name}")
        if owner is None or owner["metadata"].get("uid") != uid:
            return None
        if kind == "ReplicaSet":
            parent = controller_ref(owner)
            if parent and parent.get("kind") == "Deployment":
                dep = self.owners["deployments"].get(f"{namespace}/{parent.get('name')}")
                if dep is not None and dep["metadata"].get("uid") == parent.get("uid"):
                    owner = dep
        replicas = (owner.get("spec") or {}).get("replicas")
        return owner["metadata"]["uid"], 1 if replicas is None else int(replicas)

    def expected_scale(self, pdb: dict, pods: list[dict]) -> int:
        scales: dict[str, int] = {}
        unmanaged = []
        for pod in pods:
            ref = controller_ref(pod)
            if ref is None:
                unmanaged.append(pod["metadata"]["name"])
                continue
            found = self._controller_scale(pod["metadata"]["namespace"], ref)
            if found is None:
                raise SyncFailed(f'found no controllers for pod "{pod["metadata"]["name"]}"')
            scales[found[0]] = found[1]
        if unmanaged:
            selector = (pdb.get("spec") or {}).get("selector")
            self.recorder.event(pdb, WARNING, "UnmanagedPods",
                                f"Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be "
                                "unmanaged. As a result, the status of the PDB cannot be calculated correctly, which "
                                "may result in undefined behavior. To account for these pods please set "
                                '".spec.minAvailable" field of the PDB to an integer value.')
        return sum(scales.values())

    def desired(self, pdb: dict, pods: list[dict]) -> tuple[int, int]:
        """(expectedPods, desiredHealthy), as upstream's getExpectedPodCount."""
        spec = pdb.get("spec") or {}
        if spec.get("maxUnavailable") is not None:
            expected = self.expected_scale(pdb, pods)
            return expected, max(0, expected - scaled_value(spec["maxUnavailable"], expected, True))
        min_available = spec.get("minAvailable")
        if isinstance(min_available, int):
            return len(pods), min_available
        if min_available is not None:
            expected = self.expected_scale(pdb, pods)
            return expected, scaled_value(min_available, expected, True)
        return len(pods), 0

    # --- sync -------------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> None:
        pdb = self.pdbs.get(key)
        if pdb is None:
            return
        namespace = pdb["metadata"]["namespace"]
        pods = [p for p in self.pods.by_index("namespace", namespace) if pdb_selects(pdb, p)]
        now = datetime.datetime.now(datetime.UTC)
        status = dict(pdb.get("status") or {})
        try:
            expected, desired = self.desired(pdb, pods)
        except SyncFailed as e:
            await self._write(pdb, dict(status, disruptionsAllowed=0), False, "SyncFailed", str(e))
            raise Requeue(5.0) from None
        disrupted, recheck = self._disrupted(status.get("disruptedPods") or {}, pods, now)
        healthy = sum(1 for p in pods if not p["metadata"].get("deletionTimestamp")
                      and p["metadata"]["name"] not in disrupted and is_pod_ready(p))
        allowed = healthy - desired
        if expected <= 0 or allowed <= 0:
            allowed = 0
        new = {"observedGeneration": pdb["metadata"].get("generation", 1), "disruptionsAllowed": allowed,
               "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected}
        if disrupted:
            new["disruptedPods"] = disrupted
        await self._write(pdb, new, allowed > 0, "SufficientPods" if allowed > 0 else "InsufficientPods", "")
        if recheck is not None:
            raise Requeue(max(0.5, (recheck - now).total_seconds()))

    def _disrupted(self, recorded: dict, pods: list[dict], now: datetime.datetime):
        """Recorded evictions still pending: the pod exists, is not being deleted, and it is not too late."""
        by_name = {p["metadata"]["name"]: p for p in pods}
        keep, recheck = {}, None
        for name, ts in recorded.items():
            pod = by_name.get(name)
            when = _parse(ts)
            if pod is None or pod["metadata"].get("deletionTimestamp") or when is None:
                continue
            expires = when + datetime.timedelta(seconds=DELETION_TIMEOUT)
            if expires < now:
                log.info("pod %s/%s was expected to be deleted at %s but it wasn't, updating pdb",
                         pod["metadata"]["namespace"], name, ts)
                continue
            keep[name] = ts
            recheck = expires if recheck is None or expires < recheck else recheck
        return keep, recheck

    async def _write(self, pdb: dict, new: dict, allowed: bool, reason: str, message: str) -> None:
        old = pdb.get("status") or {}
        state = "True" if allowed else "False"
        prev = next((c for c in old.get("conditions") or () if c.get("type") == CONDITION), None)
        cond = {"type": CONDITION, "status": state, "reason": reason, "message": message,
                "observedGeneration": pdb["metadata"].get("generation", 1),
                "lastTransitionTime": prev["lastTransitionTime"] if prev and prev.get("status") == state
                and prev.get("lastTransitionTime") else rfc3339()}
        new = dict(new, conditions=[c for c in old.get("conditions") or () if c.get("type") != CONDITION] + [cond])
        if old == new:
            return
        body = dict(pdb, status=new)
        try:
            await self.client.update("policy", "v1", "poddisruptionbudgets", body,
                                     namespace=pdb["metadata"]["namespace"], subresource="status")
        except ApiError as e:
            if e.code == 409:
                raise Requeue(0.2) from None
            raise
