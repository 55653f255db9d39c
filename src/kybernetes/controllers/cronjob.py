"""The CronJob controller (upstream `pkg/controller/cronjob`, `cronjob_controllerv2.go`).

Starts a Job for the most recent unmet scheduled time (cron syntax through croniter,
in `spec.timeZone` or a `CRON_TZ=` / `TZ=` prefix, UTC otherwise), names it
`<cronjob>-<minutes since the epoch>`, honours startingDeadlineSeconds and the
concurrency policy, keeps `status.active` current and prunes finished Jobs beyond the
history limits. The clock is injectable: tests call `reconcile` at any time they like.
"""

from __future__ import annotations

import copy
import datetime
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from ..api.meta import now as utc_now
from ..api.meta import parse_time, rfc3339
from ..client.events import NORMAL, WARNING, EventRecorder
from ..client.rest import ApiError
from .base import Controller, Requeue
from .podutil import controller_ref, namespace_index

log = logging.getLogger("kybernetes.cronjob")

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100
UTC = datetime.UTC


def _owner_key(job: dict) -> list[str]:
    ref = controller_ref(job)
    if ref and ref.get("kind") == "CronJob":
        return [f"{job['metadata']['namespace']}/{ref['name']}"]
    return []


def finished_condition(job: dict) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"]
    return None


def parse_schedule(spec: dict) -> tuple[str, datetime.tzinfo]:
    """The cron expression and its time zone; raises ValueError for an unknown zone."""
    schedule = (spec.get("schedule") or "").strip()
    zone = spec.get("timeZone")
    for prefix in ("CRON_TZ=", "TZ="):
        if schedule.startswith(prefix):
            zone, _, schedule = schedule[len(prefix):].partition(" ")
            schedule = schedule.strip()
    if not zone or zone in ("UTC", "Etc/UTC"):
        return schedule, UTC
    try:
        return schedule, ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {zone}") from e


def most_recent_schedule(expr: str, tz: datetime.tzinfo, earliest: datetime.datetime,
                         now: datetime.datetime) -> tuple[datetime.datetime | None, int]:
    """The latest scheduled time in (earliest, now] and how many were missed (capped past 100)."""
    local_now = now.astimezone(tz)
    prev = croniter(expr, local_now).get_prev(datetime.datetime)
    nxt = croniter(expr, prev).get_next(datetime.datetime)
    if nxt <= local_now:
        prev = nxt
    if prev <= earliest:
        return None, 0
    it = croniter(expr, earliest.astimezone(tz))
    count = 0
    while count <= MAX_MISSED:
        t = it.get_next(datetime.datetime)
        if t > local_now:
            break
        count += 1
    return prev.astimezone(UTC), count


def next_schedule(expr: str, tz: datetime.tzinfo, now: datetime.datetime) -> datetime.datetime:
    return croniter(expr, now.astimezone(tz)).get_next(datetime.datetime).astimezone(UTC)


def job_name(cronjob: dict, scheduled: datetime.datetime) -> str:
    return f"{cronjob['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def job_reference(job: dict) -> dict:
    meta = job["metadata"]
    return {"kind": "Job", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"],
            "apiVersion": "batch/v1", "resourceVersion": meta.get("resourceVersion", "")}


class CronJobController(Controller):
    name = "cronjob"
    workers = 2

    def __init__(self, ctx, clock: Callable[[], datetime.datetime] = utc_now):
        super().__init__(ctx)
        self.now = clock
        self.recorder = EventRecorder(self.client, "cronjob-controller")
        self.cronjobs = self.watch("batch", "v1", "cronjobs")
        self.jobs = self.watch("batch", "v1", "jobs", _owner_key)
        self.jobs.add_indexer("namespace", namespace_index)

    async def reconcile(self, key: str) -> None:
        cj = self.cronjobs.get(key)
        if cj is None:
            return
        uid = cj["metadata"]["uid"]
        jobs = [j for j in self.jobs.by_index("namespace", cj["metadata"]["namespace"])
                if (controller_ref(j) or {}).get("uid") == uid]
        status = copy.deepcopy(cj.get("status") or {})
        await self.sync_active(cj, status, jobs)
        await self.cleanup_finished(cj, jobs)
        wait = None
        if not cj["metadata"].get("deletionTimestamp") and not (cj.get("spec") or {}).get("suspend"):
            wait = await self.sync_schedule(cj, status, jobs)
        await self.update_status(cj, status)
        if wait is not None:
            raise Requeue(wait)

    async def sync_active(self, cj: dict, status: dict, jobs: list[dict]) -> None:
        by_uid = {j["metadata"]["uid"]: j for j in jobs}
        active = []
        for ref in status.get("active") or ():
            job = by_uid.get(ref.get("uid"))
            if job is None:
                if await self._exists(ref):  # our cache may only be behind
                    active.append(ref)
                continue
            cond = finished_condition(job)
            if cond is None:
                active.append(ref)
                continue
            self.recorder.event(cj, NORMAL, "SawCompletedJob",
                                f"Saw completed job: {job['metadata']['name']}, condition: {cond}")
        listed = {r.get("uid") for r in active}
        for job in jobs:
            if finished_condition(job) is None and job["metadata"]["uid"] not in listed \
                    and not job["metadata"].get("deletionTimestamp"):
                active.append(job_reference(job))
        for job in jobs:
            done = (job.get("status") or {}).get("completionTime")
            if finished_condition(job) == "Complete" and done:
                last = parse_time(status.get("lastSuccessfulTime"))
                if last is None or parse_time(done) > last:
                    status["lastSuccessfulTime"] = done
        if active:
            status["active"] = active
        else:
            status.pop("active", None)

    async def _exists(self, ref: dict) -> bool:
        try:
            job = await self.client.get("batch", "v1", "jobs", ref.get("name", ""), ref.get("namespace", ""))
        except ApiError as e:
            if e.code == 404:
                return False
            raise
        return job["metadata"]["uid"] == ref.get("uid") and finished_condition(job) is None

    async def cleanup_finished(self, cj: dict, jobs: list[dict]) -> None:
        spec = cj.get("spec") or {}
        for cond, field, default in (("Complete", "successfulJobsHistoryLimit", 3),
                                     ("Failed", "failedJobsHistoryLimit", 1)):
            limit = spec.get(field, default)
            if limit is None:
                continue
            done = sorted((j for j in jobs if finished_condition(j) == cond and not j["metadata"].get("deletionTimestamp")),
                          key=lambda j: ((j.get("status") or {}).get("startTime") or j["metadata"]["creationTimestamp"],
                                         j["metadata"]["name"]))
            for job in done[:max(0, len(done) - int(limit))]:
                await self.delete_job(cj, job)

    async def delete_job(self, cj: dict, job: dict) -> None:
        meta = job["metadata"]
        try:
            await self.client.delete("batch", "v1", "jobs", meta["name"], meta["namespace"],
                                     body={"propagationPolicy": "Background", "preconditions": {"uid": meta["uid"]}})
        except ApiError as e:
            if e.code in (404, 409):
                return
            self.recorder.event(cj, WARNING, "FailedDelete", f"Deleted job: {e}")
            raise
        self.recorder.event(cj, NORMAL, "SuccessfulDelete", f"Deleted job {meta['name']}")

    async def sync_schedule(self, cj: dict, status: dict, jobs: list[dict]) -> float | None:
        """Start the job that is due, if any; returns seconds until the next scheduled time."""
        spec = cj.get("spec") or {}
        try:
            expr, tz = parse_schedule(spec)
        except ValueError as e:
            self.recorder.event(cj, WARNING, "UnknownTimeZone", str(e))
            return None
        now = self.now()
        try:
            upcoming = next_schedule(expr, tz, now)
        except (ValueError, KeyError) as e:
            self.recorder.event(cj, WARNING, "InvalidSchedule", f"invalid schedule: {spec.get('schedule')} : {e}")
            return None
        wait = max(0.0, (upcoming - now).total_seconds()) + 0.1
        earliest = parse_time(status.get("lastScheduleTime")) or parse_time(cj["metadata"]["creationTimestamp"])
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - datetime.timedelta(seconds=int(deadline)))
        scheduled, missed = most_recent_schedule(expr, tz, earliest, now)
        if scheduled is None:
            return wait
        if missed > MAX_MISSED:
            self.recorder.event(cj, WARNING, "TooManyMissedTimes",
                                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or "
                                "check clock skew")
        if deadline is not None and scheduled + datetime.timedelta(seconds=int(deadline)) < now:
            self.recorder.event(cj, WARNING, "MissSchedule", "Missed scheduled time to start a job: "
                                + scheduled.astimezone(tz).strftime("%a, %d %b %Y %H:%M:%S %z"))
            return wait
        name = job_name(cj, scheduled)
        if any(r.get("name") == name for r in status.get("active") or ()) or \
                any(j["metadata"]["name"] == name for j in jobs):
            return wait  # already started (our status write may simply not be cached yet)
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and status.get("active"):
            log.debug("%s: not starting a job, the previous one still runs (Forbid)", cj["metadata"]["name"])
            return wait
        if policy == "Replace":
            by_uid = {j["metadata"]["uid"]: j for j in jobs}
            for ref in status.get("active") or ():
                if ref.get("uid") in by_uid:
                    await self.delete_job(cj, by_uid[ref["uid"]])
            status.pop("active", None)
        job = await self.create_job(cj, scheduled, tz)
        if job is not None:
            status.setdefault("active", []).append(job_reference(job))
        status["lastScheduleTime"] = rfc3339(scheduled)
        return wait

    def new_job(self, cj: dict, scheduled: datetime.datetime, tz: datetime.tzinfo) -> dict:
        meta = cj["metadata"]
        template = copy.deepcopy((cj.get("spec") or {}).get("jobTemplate") or {})
        tmeta = template.get("metadata") or {}
        annotations = dict(tmeta.get("annotations") or {})
        stamp = scheduled.astimezone(tz if (cj.get("spec") or {}).get("timeZone") else UTC)
        annotations[SCHEDULED_TIMESTAMP] = stamp.isoformat(timespec="seconds").replace("+00:00", "Z")
        job_meta = {"name": job_name(cj, scheduled), "namespace": meta["namespace"], "annotations": annotations,
                    "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": meta["name"],
                                         "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]}
        if tmeta.get("labels"):
            job_meta["labels"] = dict(tmeta["labels"])
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": template.get("spec") or {}}

    async def create_job(self, cj: dict, scheduled: datetime.datetime, tz: datetime.tzinfo) -> dict | None:
        body = self.new_job(cj, scheduled, tz)
        ns = cj["metadata"]["namespace"]
        try:
            job = await self.client.create("batch", "v1", "jobs", body, ns)
        except ApiError as e:
            if e.code != 409:
                self.recorder.event(cj, WARNING, "FailedCreate", f"Error creating job: {e}")
                raise
            job = await self.client.get("batch", "v1", "jobs", body["metadata"]["name"], ns)
            if (controller_ref(job) or {}).get("uid") != cj["metadata"]["uid"] or finished_condition(job):
                return None
            return job
        self.recorder.event(cj, NORMAL, "SuccessfulCreate", f"Created job {job['metadata']['name']}")
        return job

    async def update_status(self, cj: dict, status: dict) -> None:
        if status == (cj.get("status") or {}):
            return
        try:
            await self.client.update("batch", "v1", "cronjobs", {**cj, "status": status}, cj["metadata"]["namespace"],
                                     subresource="status")
        except ApiError as e:
            if e.code == 404:
                return
            if e.code == 409:
                raise Requeue(0.05) from None
            raise
