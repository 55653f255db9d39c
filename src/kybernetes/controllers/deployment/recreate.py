"""Recreate: all old pods gone before the new ReplicaSet scales up (upstream `recreate.go`)."""

from __future__ import annotations

from . import util
from .util import replicas


class RecreateMixin:
    async def rollout_recreate(self, d: dict, rss: list[dict], pod_map: dict[str, list[dict]]) -> None:
        new_rs, old = await self.get_all_rs_and_sync_revision(d, rss, False)
        all_rss = [*old, new_rs]
        scaled_down = False
        for rs in util.active(old):
            scaled, _ = await self.scale_rs_and_record(rs, 0, d)
            scaled_down = scaled_down or scaled
        if scaled_down or self.old_pods_running(new_rs, old, pod_map):
            await self.sync_rollout_status(all_rss, new_rs, d)
            return
        if new_rs is None:
            new_rs, old = await self.get_all_rs_and_sync_revision(d, rss, True)
            all_rss = [*old, new_rs]
        await self.scale_rs_and_record(new_rs, replicas(d), d)
        if util.deployment_complete(d, d.get("status") or {}):
            await self.cleanup_deployment(old, d)
        await self.sync_rollout_status(all_rss, new_rs, d)

    @staticmethod
    def old_pods_running(new_rs: dict | None, old: list[dict], pod_map: dict[str, list[dict]]) -> bool:
        if util.total_status(old, "replicas") > 0:
            return True
        new_uid = new_rs["metadata"]["uid"] if new_rs else None
        for uid, pods in pod_map.items():
            if uid == new_uid:
                continue
            if any((p.get("status") or {}).get("phase") not in ("Failed", "Succeeded") for p in pods):
                return True
        return False
