"""Finding and creating the new ReplicaSet, scaling, cleanup and status (upstream `sync.go`)."""

from __future__ import annotations

import copy
import math

from ...client.events import NORMAL, WARNING
from ...client.rest import ApiError
from . import util
from .util import replicas


class SyncMixin:
    # --- revisions and the new ReplicaSet ---------------------------------------------------------
    async def get_all_rs_and_sync_revision(self, d: dict, rss: list[dict], create: bool):
        new_rs = util.find_new_rs(d, rss)
        old = [rs for rs in rss if new_rs is None or rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        found = new_rs
        new_rs = await self.get_new_rs(d, rss, old, new_rs, create)
        if found is not None and new_rs is not found:
            rss[:] = [new_rs if rs is found else rs for rs in rss]  # later steps see the update
        return new_rs, old

    async def get_new_rs(self, d: dict, rss: list[dict], old: list[dict], existing: dict | None, create: bool):
        new_revision = str(max((util.revision(rs) for rs in old), default=0) + 1)
        if existing is not None:
            rs = copy.deepcopy(existing)
            changed = util.set_new_rs_annotations(d, rs, new_revision, True)
            min_ready = int(d["spec"].get("minReadySeconds") or 0)
            if changed or int(rs["spec"].get("minReadySeconds") or 0) != min_ready:
                rs["spec"]["minReadySeconds"] = min_ready
                return await self.client.update("apps", "v1", "replicasets", rs, rs["metadata"]["namespace"])
            await self.set_deployment_revision(d, (rs["metadata"].get("annotations") or {}).get(util.REVISION, ""))
            if util.has_progress_deadline(d) and util.get_condition(d.get("status") or {}, "Progressing") is None:
                status = copy.deepcopy(d.get("status") or {})
                util.set_condition(status, util.new_condition(
                    "Progressing", "True", util.FOUND_NEW_RS, f'Found new replica set "{rs["metadata"]["name"]}"'))
                await self.write_status(d, status)
            return rs
        if not create:
            return None
        collision = (d.get("status") or {}).get("collisionCount")
        template = copy.deepcopy(d["spec"]["template"])
        pod_hash = util.compute_hash(template, collision)
        template.setdefault("metadata", {})["labels"] = {**(template["metadata"].get("labels") or {}),
                                                        util.HASH_LABEL: pod_hash}
        selector = copy.deepcopy(d["spec"].get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), util.HASH_LABEL: pod_hash}
        name = f'{d["metadata"]["name"]}-{pod_hash}'
        ns = d["metadata"]["namespace"]
        new_rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                  "metadata": {"name": name, "namespace": ns, "labels": dict(template["metadata"]["labels"]),
                               "ownerReferences": [self.owner_ref(d)]},
                  "spec": {"replicas": 0, "minReadySeconds": int(d["spec"].get("minReadySeconds") or 0),
                           "selector": selector, "template": template}}
        count = util.new_rs_new_replicas(d, [*old, new_rs], new_rs)
        new_rs["spec"]["replicas"] = count
        util.set_new_rs_annotations(d, new_rs, new_revision, False)
        already = False
        try:
            created = await self.client.create("apps", "v1", "replicasets", new_rs, ns)
        except ApiError as e:
            if e.code == 409 and e.reason == "AlreadyExists":
                already = True
                found = self.replicasets.get(f"{ns}/{name}")
                ref = util_controller_uid(found)
                if found and ref == d["metadata"]["uid"] and util.equal_ignore_hash(
                        d["spec"]["template"], found["spec"]["template"]):
                    created = found
                else:
                    status = copy.deepcopy(d.get("status") or {})
                    status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                    await self.write_status(d, status)
                    raise
            elif e.code == 403 and "terminat" in str(e).lower():
                raise
            else:
                msg = f'Failed to create new replica set "{name}": {e.status.get("message", e)}'
                if util.has_progress_deadline(d):
                    status = copy.deepcopy(d.get("status") or {})
                    util.set_condition(status, util.new_condition("Progressing", "False", util.FAILED_RS_CREATE, msg))
                    await self.write_status(d, status)
                self.recorder.event(d, WARNING, util.FAILED_RS_CREATE, msg)
                raise
        if not already and count > 0:
            self.recorder.event(d, NORMAL, "ScalingReplicaSet",
                                f"Scaled up replica set {created['metadata']['name']} to {count} from 0")
        await self.set_deployment_revision(d, new_revision)
        if not already and util.has_progress_deadline(d):
            status = copy.deepcopy(d.get("status") or {})
            util.set_condition(status, util.new_condition(
                "Progressing", "True", util.NEW_RS_CREATED, f'Created new replica set "{created["metadata"]["name"]}"'))
            await self.write_status(d, status)
        return created

    async def set_deployment_revision(self, d: dict, rev: str) -> None:
        if not rev or (d["metadata"].get("annotations") or {}).get(util.REVISION) == rev:
            return
        patched = await self.client.patch("apps", "v1", "deployments", d["metadata"]["name"],
                                          {"metadata": {"annotations": {util.REVISION: rev}}}, d["metadata"]["namespace"])
        d["metadata"] = patched["metadata"]

    # --- scaling ----------------------------------------------------------------------------------
    async def scale_rs_and_record(self, rs: dict, new_scale: int, d: dict) -> tuple[bool, dict]:
        if replicas(rs) == new_scale:
            return False, rs
        return await self.scale_rs(rs, new_scale, d, "up" if replicas(rs) < new_scale else "down")

    async def scale_rs(self, rs: dict, new_scale: int, d: dict, operation: str) -> tuple[bool, dict]:
        size_changed = replicas(rs) != new_scale
        max_total = replicas(d) + util.max_surge(d)
        if not size_changed and not util.replicas_annotations_need_update(rs, replicas(d), max_total):
            return False, rs
        old_scale = replicas(rs)
        body = copy.deepcopy(rs)
        body["spec"]["replicas"] = new_scale
        util.set_replicas_annotations(body, replicas(d), max_total)
        updated = await self.client.update("apps", "v1", "replicasets", body, rs["metadata"]["namespace"])
        if size_changed:
            self.recorder.event(d, NORMAL, "ScalingReplicaSet",
                                f"Scaled {operation} replica set {rs['metadata']['name']} to {new_scale} from {old_scale}")
        return size_changed, updated

    async def is_scaling_event(self, d: dict, rss: list[dict]) -> bool:
        new_rs, old = await self.get_all_rs_and_sync_revision(d, rss, False)
        for rs in util.active([*old, new_rs]):
            desired = (rs["metadata"].get("annotations") or {}).get(util.DESIRED_REPLICAS)
            if desired is not None and desired != str(replicas(d)):
                return True
        return False

    async def sync(self, d: dict, rss: list[dict]) -> None:
        """Scaling and paused deployments: resize without rolling (upstream `sync`)."""
        new_rs, old = await self.get_all_rs_and_sync_revision(d, rss, False)
        await self.scale(d, new_rs, old)
        if d["spec"].get("paused"):
            await self.cleanup_deployment(old, d)
        await self.sync_deployment_status([*old, new_rs], new_rs, d)

    async def scale(self, d: dict, new_rs: dict | None, old: list[dict]) -> None:
        act = util.active([new_rs, *old])
        target = act[0] if len(act) == 1 else (new_rs if not act and new_rs is not None else None)
        if target is None and not act and old:
            target = max(old, key=util.created)
        if target is not None:
            if replicas(target) != replicas(d):
                await self.scale_rs_and_record(target, replicas(d), d)
            return
        if util.is_saturated(d, new_rs):
            for rs in util.active(old):
                await self.scale_rs_and_record(rs, 0, d)
            return
        if not util.is_rolling(d):
            return
        all_rss = util.active([*old, new_rs])
        allowed = replicas(d) + util.max_surge(d) if replicas(d) > 0 else 0
        to_add = allowed - util.total_replicas(all_rss)
        operation = ""
        if to_add > 0:
            all_rss.sort(key=util.created, reverse=True)  # same size: newer first
            all_rss.sort(key=lambda rs: -replicas(rs))
            operation = "up"
        elif to_add < 0:
            all_rss.sort(key=lambda rs: (-replicas(rs), util.created(rs)))
            operation = "down"
        added, sizes = 0, {}
        for rs in all_rss:
            if to_add:
                portion = self._proportion(rs, d, to_add, added)
                sizes[rs["metadata"]["name"]] = replicas(rs) + portion
                added += portion
            else:
                sizes[rs["metadata"]["name"]] = replicas(rs)
        for i, rs in enumerate(all_rss):
            name = rs["metadata"]["name"]
            if i == 0 and to_add:
                sizes[name] = max(0, sizes[name] + to_add - added)
            await self.scale_rs(rs, sizes[name], d, operation)

    @staticmethod
    def _proportion(rs: dict, d: dict, to_add: int, added: int) -> int:
        if replicas(rs) == 0 or to_add == 0 or to_add == added:
            return 0
        if replicas(d) == 0:
            fraction = -replicas(rs)
        else:
            try:
                before = int((rs["metadata"].get("annotations") or {}).get(util.MAX_REPLICAS, "0"))
            except ValueError:
                before = 0
            before = before or util.status_of(d, "replicas")
            if before == 0:
                fraction = replicas(rs)
            else:
                exact = replicas(rs) * (replicas(d) + util.max_surge(d)) / before
                fraction = int(math.floor(exact + 0.5)) - replicas(rs)
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    async def cleanup_deployment(self, old: list[dict], d: dict) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in old if not rs["metadata"].get("deletionTimestamp")]
        diff = len(alive) - int(limit)
        if diff <= 0:
            return
        for rs in sorted(alive, key=lambda r: (util.revision(r), util.created(r)))[:diff]:
            if (util.status_of(rs, "replicas") or replicas(rs)
                    or int(rs["metadata"].get("generation") or 0) > util.status_of(rs, "observedGeneration")):
                continue
            try:
                await self.client.delete("apps", "v1", "replicasets", rs["metadata"]["name"],
                                         rs["metadata"]["namespace"])
            except ApiError as e:
                if e.code != 404:
                    raise

    # --- status -----------------------------------------------------------------------------------
    def calculate_status(self, all_rss: list[dict], new_rs: dict | None, d: dict) -> dict:
        all_rss = [rs for rs in all_rss if rs is not None]
        available = util.total_status(all_rss, "availableReplicas")
        status = {"observedGeneration": int(d["metadata"].get("generation") or 0),
                  "replicas": util.total_status(all_rss, "replicas"),
                  "updatedReplicas": util.status_of(new_rs, "replicas") if new_rs else 0,
                  "readyReplicas": util.total_status(all_rss, "readyReplicas"),
                  "availableReplicas": available,
                  "unavailableReplicas": max(0, util.total_replicas(all_rss) - available)}
        old = d.get("status") or {}
        if old.get("collisionCount") is not None:
            status["collisionCount"] = old["collisionCount"]
        if old.get("conditions"):
            status["conditions"] = copy.deepcopy(old["conditions"])
        if available >= replicas(d) - util.max_unavailable(d):
            util.set_condition(status, util.new_condition("Available", "True", util.MIN_AVAILABLE,
                                                          "Deployment has minimum availability."))
        else:
            util.set_condition(status, util.new_condition("Available", "False", util.MIN_UNAVAILABLE,
                                                          "Deployment does not have minimum availability."))
        return status

    async def sync_deployment_status(self, all_rss: list[dict], new_rs: dict | None, d: dict) -> None:
        status = self.calculate_status(all_rss, new_rs, d)
        if status != (d.get("status") or {}):
            await self.write_status(d, status)


def util_controller_uid(obj: dict | None) -> str | None:
    for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref.get("uid")
    return None
