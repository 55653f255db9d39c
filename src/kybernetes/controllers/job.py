"""The Job controller (upstream `pkg/controller/job`, `job_controller.go`), tracking with finalizers.

Every pod is created with the `batch.kubernetes.io/job-tracking` finalizer. A pod that
ends is first written into `status.uncountedTerminatedPods`, then its finalizer is
removed, then it moves into `succeeded` / `failed`: a crash at any step neither loses
nor double-counts a pod. Success and failure are first recorded as the interim
conditions SuccessCriteriaMet / FailureTarget and become Complete / Failed once no
pod of the job is left running, as 1.32 does.
"""

from __future__ import annotations

import copy
import datetime
import logging
import time

from ..api.meta import now, parse_time, rfc3339
from ..api.selectors import selector_matches
from ..client.events import NORMAL, WARNING, EventRecorder
from ..client.rest import ApiError
from .base import Controller, Requeue
from .expectations import Expectations
from .podutil import (
    CONTROLLER_INDEX,
    claim_candidates,
    controller_index,
    controller_ref,
    is_pod_ready,
    namespace_index,
)
from .refmanager import ControllerRefManager, live_owner

log = logging.getLogger("kybernetes.job")

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
BACKOFF_BASE, BACKOFF_MAX = 10.0, 600.0  # upstream DefaultJobPodFailureBackOff / MaxJobPodFailureBackOff


def _key_of_pod(pod: dict) -> list[str]:
    ref = controller_ref(pod)
    if ref and ref.get("kind") == "Job":
        return [f"{pod['metadata']['namespace']}/{ref['name']}"]
    return []


def condition(job: dict, type_: str) -> dict | None:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") == type_ and c.get("status") == "True":
            return c
    return None


def is_finished(job: dict) -> bool:
    return bool(condition(job, "Complete") or condition(job, "Failed"))


def _new_condition(type_: str, reason: str, message: str, status: str = "True") -> dict:
    stamp = rfc3339()
    return {"type": type_, "status": status, "lastProbeTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def _set_condition(status: dict, cond: dict) -> None:
    conds = status.setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") == cond["type"]:
            if c.get("status") != cond["status"] or c.get("reason") != cond["reason"]:
                conds[i] = cond
            return
    conds.append(cond)


def pod_index(pod: dict) -> int | None:
    meta = pod["metadata"]
    value = (meta.get("annotations") or {}).get(COMPLETION_INDEX) or (meta.get("labels") or {}).get(COMPLETION_INDEX)
    return int(value) if value is not None and str(value).isdigit() else None


def parse_indexes(text: str | None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            out.update(range(int(a), int(b) + 1))
        elif part:
            out.add(int(part))
    return out


def format_indexes(indexes: set[int]) -> str:
    parts, run = [], []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


def pod_outcome(pod: dict) -> str | None:
    """"succeeded", "failed" or None while the pod still runs (a deleted pod counts as failed)."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return "succeeded"
    if phase == "Failed" or pod["metadata"].get("deletionTimestamp"):
        return "failed"
    return None


def past_backoff_limit_on_failure(spec: dict, pods: list[dict]) -> bool:
    """With restartPolicy OnFailure pods restart in place instead of failing: the container restarts
    of the running and pending pods count against backoffLimit (upstream `pastBackoffLimitOnFailure`)."""
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") in ("Running", "Pending"):
            for c in [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]:
                restarts += int(c.get("restartCount") or 0)
    limit = int(spec.get("backoffLimit", 6))
    return restarts > 0 if limit == 0 else restarts >= limit


class JobController(Controller):
    name = "job"
    workers = 4

    def __init__(self, ctx, clock=time.monotonic):
        super().__init__(ctx)
        self.clock = clock
        self.recorder = EventRecorder(self.client, "job-controller")
        self.expectations = Expectations(clock)
        self.counted: dict[str, set[str]] = {}  # job uid -> pod uids whose finalizer we removed after counting
        self.last_failure: dict[str, float] = {}
        # resourceVersions of Jobs our own status writes replaced: a cache still showing one of
        # them is behind our counting, and acting on it would create (then delete) extra pods
        self.superseded: dict[str, set[str]] = {}
        self.jobs = self.watch("batch", "v1", "jobs")
        self.pods = self.ctx.informers.informer("", "v1", "pods")
        self.pods.add_indexer("namespace", namespace_index)
        self.pods.add_indexer(CONTROLLER_INDEX, controller_index)
        self.pods.add_handler(self._pod_added, lambda old, new: self._pod_changed(new), self._enqueue)
        self.watched.append(self.pods)

    def _orphan_keys(self, pod: dict) -> list[str]:
        """The Jobs whose selector matches an orphan pod: they may adopt it (upstream getPodJobs)."""
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        if controller_ref(pod) is not None or not labels or meta.get("deletionTimestamp"):
            return []
        ns = meta.get("namespace")
        return [f"{ns}/{job['metadata']['name']}" for job in self.jobs.list()
                if job["metadata"].get("namespace") == ns
                and selector_matches((job.get("spec") or {}).get("selector") or {}, labels)]

    def _pod_added(self, pod: dict) -> None:
        for key in _key_of_pod(pod):
            self.expectations.creation_observed(key)
            self.queue.add(key)
        for key in self._orphan_keys(pod):  # not a creation anyone waits for
            self.queue.add(key)

    def _pod_changed(self, pod: dict) -> None:
        self._enqueue(pod)
        for key in self._orphan_keys(pod):
            self.queue.add(key)

    def _enqueue(self, pod: dict) -> None:
        for key in _key_of_pod(pod):
            self.queue.add(key)

    async def reconcile(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None:
            self.expectations.delete(key)
            return
        await self.sync_job(key, job)

    async def claim_pods(self, job: dict) -> list[dict]:
        """The Job's pods after adopting matching orphans, which get the tracking finalizer in the
        same write, and releasing pods its selector no longer matches (upstream getPodsForJob)."""
        selector = (job.get("spec") or {}).get("selector") or {}
        manager = ControllerRefManager(
            self.client, job, "batch/v1", "Job",
            lambda p: bool(selector) and selector_matches(selector, p["metadata"].get("labels") or {}),
            ("", "v1", "pods"), live_owner(self.client, "batch", "v1", "jobs", job),
            finalizers=(TRACKING_FINALIZER,))
        return await manager.claim(claim_candidates(self.pods, job))


    async def sync_job(self, key: str, job: dict) -> None:
        uid = job["metadata"]["uid"]
        stale = self.superseded.get(uid)
        if stale:
            if job["metadata"].get("resourceVersion") in stale:
                raise Requeue(0.05)
            stale.clear()
        spec = job.get("spec") or {}
        pods = await self.claim_pods(job)
        counted = self.counted.setdefault(uid, set())
        counted &= {p["metadata"]["uid"] for p in pods}
        if is_finished(job) or job["metadata"].get("deletionTimestamp"):
            await self.remove_finalizers([p for p in pods if TRACKING_FINALIZER in (p["metadata"].get("finalizers") or ())])
            return
        status = copy.deepcopy(job.get("status") or {})
        uncounted = status.setdefault("uncountedTerminatedPods", {})
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        completed = parse_indexes(status.get("completedIndexes"))
        active = []
        for pod in pods:
            outcome = pod_outcome(pod)
            puid = pod["metadata"]["uid"]
            if outcome is None:
                active.append(pod)
                continue
            if TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or ()) or puid in counted:
                continue
            if puid in (uncounted.get("succeeded") or ()) or puid in (uncounted.get("failed") or ()):
                continue
            if indexed and outcome == "succeeded":
                idx = pod_index(pod)
                if idx is not None and completions is not None and idx < completions:
                    completed.add(idx)
            if outcome == "failed":
                self.last_failure[uid] = self.clock()
            uncounted.setdefault(outcome, []).append(puid)
        if indexed:
            status["completedIndexes"] = format_indexes(completed)
        succeeded = int(status.get("succeeded") or 0) + len(uncounted.get("succeeded") or ())
        failed = int(status.get("failed") or 0) + len(uncounted.get("failed") or ())
        suspended = bool(spec.get("suspend"))
        if not suspended and not status.get("startTime"):
            status["startTime"] = rfc3339()
        requeue: float | None = None

        # --- interim conditions: decided once, then only the pods' ends are awaited ---
        target = condition(job, "FailureTarget") or condition(job, "SuccessCriteriaMet")
        if target is None:
            deadline = spec.get("activeDeadlineSeconds")
            started = parse_time(status.get("startTime"))
            if failed > int(spec.get("backoffLimit", 6)) or past_backoff_limit_on_failure(spec, pods):
                target = _new_condition("FailureTarget", "BackoffLimitExceeded",
                                        "Job has reached the specified backoff limit")
            elif deadline is not None and started is not None and not suspended:
                left = (started + datetime.timedelta(seconds=int(deadline)) - now()).total_seconds()
                if left <= 0:
                    target = _new_condition("FailureTarget", "DeadlineExceeded",
                                            "Job was active longer than specified deadline")
                else:
                    requeue = left
            if target is None and self._succeeded(spec, succeeded, completed, active):
                target = _new_condition("SuccessCriteriaMet", "CompletionsReached",
                                        "Reached expected number of succeeded pods")
            if target is not None:
                _set_condition(status, target)

        # as upstream's syncJob, `active` counts the pods created in this sync and not those deleted
        n_active, n_ready = len(active), sum(1 for p in active if is_pod_ready(p))
        if target is not None or suspended:
            deleted = await self.delete_pods(job, active)
            n_active -= len(deleted)
            n_ready -= sum(1 for p in deleted if is_pod_ready(p))
        elif self.expectations.satisfied(key):
            wait, delta = await self.manage_pods(key, job, active, succeeded, failed, completed)
            n_active += delta
            if wait is not None:
                requeue = wait if requeue is None else min(requeue, wait)
        self._suspend_condition(job, status, suspended)
        status["active"] = n_active
        status["ready"] = n_ready
        job = await self.write_status(job, status)

        # --- remove finalizers of the pods now recorded as uncounted, then count them ---
        uncounted = job["status"].get("uncountedTerminatedPods") or {}
        recorded = set(uncounted.get("succeeded") or ()) | set(uncounted.get("failed") or ())
        holding = {p["metadata"]["uid"]: p for p in pods}
        flushed = await self.remove_finalizers([p for u, p in holding.items() if u in recorded
                                                and TRACKING_FINALIZER in (p["metadata"].get("finalizers") or ())])
        flushed |= {u for u in recorded if u not in holding
                    or TRACKING_FINALIZER not in (holding[u]["metadata"].get("finalizers") or ())}
        counted |= flushed
        status = copy.deepcopy(job["status"])
        for outcome in ("succeeded", "failed"):
            moved = [u for u in uncounted.get(outcome) or () if u in flushed]
            status[outcome] = int(status.get(outcome) or 0) + len(moved)
            status["uncountedTerminatedPods"][outcome] = [u for u in uncounted.get(outcome) or () if u not in flushed]
            if not status["uncountedTerminatedPods"][outcome]:
                del status["uncountedTerminatedPods"][outcome]
        target = condition(job, "FailureTarget") or condition(job, "SuccessCriteriaMet")
        if target is not None and not active and not status["uncountedTerminatedPods"]:
            self._finish(job, status, target)
        await self.write_status(job, status)
        if requeue is not None:
            raise Requeue(requeue + 0.05)

    @staticmethod
    def _succeeded(spec: dict, succeeded: int, completed: set[int], active: list[dict]) -> bool:
        completions = spec.get("completions")
        if spec.get("completionMode") == "Indexed":
            return completions is not None and len(completed) >= completions
        if completions is None:
            return succeeded > 0 and not active
        return succeeded >= completions

    def _finish(self, job: dict, status: dict, target: dict) -> None:
        if target["type"] == "SuccessCriteriaMet":
            _set_condition(status, _new_condition("Complete", target["reason"], target["message"]))
            status["completionTime"] = rfc3339()
            self.recorder.event(job, NORMAL, "Completed", "Job completed")
        else:
            _set_condition(status, _new_condition("Failed", target["reason"], target["message"]))
            self.recorder.event(job, WARNING, target["reason"], target["message"])

    @staticmethod
    def _suspend_condition(job: dict, status: dict, suspended: bool) -> None:
        cur = next((c for c in status.get("conditions") or () if c.get("type") == "Suspended"), None)
        if suspended and (cur is None or cur.get("status") != "True"):
            _set_condition(status, _new_condition("Suspended", "JobSuspended", "Job suspended"))
        elif not suspended and cur is not None and cur.get("status") == "True":
            _set_condition(status, _new_condition("Suspended", "JobResumed", "Job resumed", "False"))
            status["startTime"] = rfc3339()

    # --- pods -------------------------------------------------------------------------------------
    async def manage_pods(self, key: str, job: dict, active: list[dict], succeeded: int, failed: int,
                          completed: set[int]) -> tuple[float | None, int]:
        """Create or delete pods toward the wanted parallelism: (seconds to wait before creating
        again, or None; the change in active pods)."""
        spec = job.get("spec") or {}
        parallelism = int(spec.get("parallelism", 1))
        completions = spec.get("completions")
        if spec.get("completionMode") == "Indexed":
            busy = {pod_index(p) for p in active}
            todo = [i for i in range(completions or 0) if i not in completed and i not in busy]
            want = min(parallelism - len(active), len(todo))
        else:
            todo = []
            if completions is None:
                target = 0 if succeeded > 0 else parallelism
            else:
                target = max(0, min(parallelism, completions - succeeded))
            want = target - len(active)
        if want < 0:
            newest = sorted(active, key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)
            return None, -len(await self.delete_pods(job, newest[:-want]))
        if want == 0:
            return None, 0
        if failed:
            delay = min(BACKOFF_BASE * 2 ** (failed - 1), BACKOFF_MAX)
            left = self.last_failure.get(job["metadata"]["uid"], -1e9) + delay - self.clock()
            if left > 0:
                return left, 0
        self.expectations.expect_creations(key, want)
        errors = []
        for i in range(want):
            try:
                await self.create_pod(job, todo[i] if todo else None)
            except ApiError as e:
                self.expectations.creation_observed(key)
                errors.append(e)
        if errors:
            raise errors[0]
        return None, want

    def new_pod(self, job: dict, index: int | None) -> dict:
        meta, template = job["metadata"], (job.get("spec") or {}).get("template") or {}
        tmeta = template.get("metadata") or {}
        prefix = f"{meta['name']}-" if index is None else f"{meta['name']}-{index}-"
        labels = dict(tmeta.get("labels") or {})
        annotations = dict(tmeta.get("annotations") or {})
        pod_spec = copy.deepcopy(template.get("spec") or {})
        if index is not None:
            labels[COMPLETION_INDEX] = annotations[COMPLETION_INDEX] = str(index)
            pod_spec["hostname"] = f"{meta['name']}-{index}"
            env = {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}}
            for kind in ("initContainers", "containers"):
                for c in pod_spec.get(kind) or ():
                    c["env"] = [e for e in c.get("env") or () if e.get("name") != "JOB_COMPLETION_INDEX"] + [env]
        pod_meta = {"generateName": prefix, "namespace": meta["namespace"], "labels": labels,
                    "finalizers": [*(tmeta.get("finalizers") or ()), TRACKING_FINALIZER],
                    "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                         "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]}
        if annotations:
            pod_meta["annotations"] = annotations
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}

    async def create_pod(self, job: dict, index: int | None) -> None:
        try:
            pod = await self.client.create("", "v1", "pods", self.new_pod(job, index), job["metadata"]["namespace"])
        except ApiError as e:
            self.recorder.event(job, WARNING, "FailedCreate", f"Error creating: {e}")
            raise
        self.recorder.event(job, NORMAL, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")

    async def delete_pods(self, job: dict, pods: list[dict]) -> list[dict]:
        """Delete `pods`; the ones this call deleted (a pod already gone is not counted)."""
        deleted = []
        for pod in pods:
            meta = pod["metadata"]
            try:
                await self.client.delete("", "v1", "pods", meta["name"], meta["namespace"],
                                         body={"preconditions": {"uid": meta["uid"]}})
            except ApiError as e:
                if e.code in (404, 409):
                    continue
                self.recorder.event(job, WARNING, "FailedDelete", f"Error deleting: {e}")
                raise
            deleted.append(pod)
            self.recorder.event(job, NORMAL, "SuccessfulDelete", f"Deleted pod: {meta['name']}")
        return deleted

    async def remove_finalizers(self, pods: list[dict]) -> set[str]:
        done = set()
        for pod in pods:
            meta = pod["metadata"]
            rest = [f for f in meta.get("finalizers") or () if f != TRACKING_FINALIZER]
            body = {"metadata": {"finalizers": rest or None, "resourceVersion": meta["resourceVersion"]}}
            try:
                await self.client.patch("", "v1", "pods", meta["name"], body, meta["namespace"])
            except ApiError as e:
                if e.code == 404:
                    done.add(meta["uid"])
                    continue
                if e.code == 409:
                    raise Requeue(0.05) from None
                raise
            done.add(meta["uid"])
        return done

    async def write_status(self, job: dict, status: dict) -> dict:
        if not status.get("uncountedTerminatedPods"):
            status["uncountedTerminatedPods"] = {}
        if status == (job.get("status") or {}):
            return job
        try:
            written = await self.client.update("batch", "v1", "jobs", {**job, "status": status},
                                               job["metadata"]["namespace"], subresource="status")
            self.superseded.setdefault(job["metadata"]["uid"], set()).add(job["metadata"].get("resourceVersion"))
            return written
        except ApiError as e:
            if e.code == 409:
                raise Requeue(0.05) from None
            if e.code == 404:
                return {**job, "status": status}
            raise

