"""Progress and availability conditions, progressDeadlineSeconds (upstream `progress.go`)."""

from __future__ import annotations

import copy

from ...api.meta import now, parse_time
from ..base import Requeue
from . import util


class ProgressMixin:
    async def sync_rollout_status(self, all_rss: list[dict], new_rs: dict | None, d: dict) -> None:
        status = self.calculate_status(all_rss, new_rs, d)
        if not util.has_progress_deadline(d):
            util.remove_condition(status, "Progressing")
        current = util.get_condition(d.get("status") or {}, "Progressing")
        complete = (status["replicas"] == status["updatedReplicas"] and current is not None
                    and current.get("reason") == util.NEW_RS_AVAILABLE)
        name = f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs else f'Deployment "{d["metadata"]["name"]}"'
        if util.has_progress_deadline(d) and not complete:
            if util.deployment_complete(d, status):
                util.set_condition(status, util.new_condition("Progressing", "True", util.NEW_RS_AVAILABLE,
                                                              f"{name} has successfully progressed."))
            elif util.deployment_progressing(d, status):
                cond = util.new_condition("Progressing", "True", util.RS_UPDATED, f"{name} is progressing.")
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    util.remove_condition(status, "Progressing")
                util.set_condition(status, cond)
            elif util.timed_out(d, status, now()):
                util.set_condition(status, util.new_condition("Progressing", "False", util.TIMED_OUT,
                                                              f"{name} has timed out progressing."))
        failure = self.replica_failure(all_rss, new_rs)
        if failure is not None:
            util.set_condition(status, failure)
        else:
            util.remove_condition(status, "ReplicaFailure")
        if status == (d.get("status") or {}):
            self.requeue_stuck(d, status)
            return
        await self.write_status(d, status)

    @staticmethod
    def replica_failure(all_rss: list[dict], new_rs: dict | None) -> dict | None:
        ordered = ([new_rs] if new_rs else []) + [rs for rs in all_rss if rs is not None and rs is not new_rs]
        for rs in ordered:
            cond = util.get_condition(rs.get("status") or {}, "ReplicaFailure")
            if cond is not None:
                out = copy.deepcopy(cond)
                out.setdefault("lastUpdateTime", cond.get("lastTransitionTime"))
                return out
        return None

    def requeue_stuck(self, d: dict, status: dict) -> None:
        cond = util.get_condition(status, "Progressing")
        if (cond is None or not util.has_progress_deadline(d) or util.deployment_complete(d, status)
                or cond.get("reason") == util.TIMED_OUT):
            return
        since = parse_time(cond.get("lastUpdateTime"))
        if since is None:
            return
        after = int(d["spec"]["progressDeadlineSeconds"]) - (now() - since).total_seconds()
        raise Requeue(max(after, 0) + 1.0)
