"""The TTL-after-finished controller (upstream `pkg/controller/ttlafterfinished`).

A Job with `spec.ttlSecondsAfterFinished` is deleted (foreground, so its pods go
first) that many seconds after it finished: after its Complete or Failed condition's
lastTransitionTime.
"""

from __future__ import annotations

import datetime

from ..api.meta import now, parse_time
from ..client.rest import ApiError
from .base import Controller, Requeue


def finish_time(job: dict) -> datetime.datetime | None:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished"
    workers = 1

    def __init__(self, ctx, clock=now):
        super().__init__(ctx)
        self.now = clock
        self.jobs = self.watch("batch", "v1", "jobs")

    async def reconcile(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        finished = finish_time(job)
        if ttl is None or finished is None:
            return
        left = (finished + datetime.timedelta(seconds=int(ttl)) - self.now()).total_seconds()
        if left > 0:
            raise Requeue(left + 0.05)
        meta = job["metadata"]
        try:
            # upstream re-reads the job first: the ttl may have changed since the cache saw it
            fresh = await self.client.get("batch", "v1", "jobs", meta["name"], meta["namespace"])
            if (fresh.get("spec") or {}).get("ttlSecondsAfterFinished") != ttl or fresh["metadata"]["uid"] != meta["uid"]:
                self.queue.add(key)
                return
            await self.client.delete("batch", "v1", "jobs", meta["name"], meta["namespace"],
                                     body={"propagationPolicy": "Foreground",
                                           "preconditions": {"uid": meta["uid"]}})
        except ApiError as e:
            if e.code not in (404, 409):
                raise
