"""RollingUpdate: surge the new ReplicaSet, drain the old ones within maxUnavailable (upstream `rolling.go`)."""

from __future__ import annotations

from . import util
from .util import replicas


class RollingMixin:
    async def rollout_rolling(self, d: dict, rss: list[dict]) -> None:
        new_rs, old = await self.get_all_rs_and_sync_revision(d, rss, True)
        all_rss = [*old, new_rs]
        if await self.reconcile_new_rs(all_rss, new_rs, d):
            await self.sync_rollout_status(all_rss, new_rs, d)
            return
        if await self.reconcile_old_rss(all_rss, util.active(old), new_rs, d):
            await self.sync_rollout_status(all_rss, new_rs, d)
            return
        if util.deployment_complete(d, d.get("status") or {}):
            await self.cleanup_deployment(old, d)
        await self.sync_rollout_status(all_rss, new_rs, d)

    async def reconcile_new_rs(self, all_rss: list[dict], new_rs: dict, d: dict) -> bool:
        if replicas(new_rs) == replicas(d):
            return False
        if replicas(new_rs) > replicas(d):
            scaled, _ = await self.scale_rs_and_record(new_rs, replicas(d), d)
            return scaled
        scaled, _ = await self.scale_rs_and_record(new_rs, util.new_rs_new_replicas(d, all_rss, new_rs), d)
        return scaled

    async def reconcile_old_rss(self, all_rss: list[dict], old: list[dict], new_rs: dict, d: dict) -> bool:
        if util.total_replicas(old) == 0:
            return False
        min_available = replicas(d) - util.max_unavailable(d)
        new_unavailable = replicas(new_rs) - util.status_of(new_rs, "availableReplicas")
        max_scaled_down = util.total_replicas(all_rss) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        old, cleaned = await self.cleanup_unhealthy_replicas(old, d, max_scaled_down)
        scaled = await self.scale_down_old_for_rolling_update([*old, new_rs], old, d)
        return cleaned + scaled > 0

    async def cleanup_unhealthy_replicas(self, old: list[dict], d: dict, max_cleanup: int) -> tuple[list[dict], int]:
        """Scale old ReplicaSets down by their unavailable pods first: those must not block the rollout."""
        old = sorted(old, key=util.created)
        total = 0
        for i, rs in enumerate(old):
            if total >= max_cleanup:
                break
            unhealthy = replicas(rs) - util.status_of(rs, "availableReplicas")
            if replicas(rs) == 0 or unhealthy <= 0:
                continue
            count = min(max_cleanup - total, unhealthy)
            _, old[i] = await self.scale_rs_and_record(rs, replicas(rs) - count, d)
            total += count
        return old, total

    async def scale_down_old_for_rolling_update(self, all_rss: list[dict], old: list[dict], d: dict) -> int:
        min_available = replicas(d) - util.max_unavailable(d)
        available = util.settled_available(all_rss)
        if available <= min_available:
            return 0
        wanted = available - min_available
        total = 0
        for rs in sorted(old, key=util.created):
            if total >= wanted:
                break
            if replicas(rs) == 0:
                continue
            count = min(replicas(rs), wanted - total)
            await self.scale_rs_and_record(rs, replicas(rs) - count, d)
            total += count
        return total
