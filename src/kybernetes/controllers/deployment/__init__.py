"""The Deployment controller (upstream `pkg/controller/deployment`, `syncDeployment`).

A Deployment owns ReplicaSets named `<deployment>-<pod-template-hash>`; the one whose
template equals the Deployment's is the new one, the others are old. Rolling updates
and Recreate move replicas from old to new; scaling events resize proportionally;
paused Deployments only scale. Status and the Progressing/Available conditions follow
upstream. Split by concern: util (pure helpers), sync, rolling, recreate, progress.
"""

from __future__ import annotations

import copy

from ...api.selectors import selector_matcher, selector_matches
from ...client.events import WARNING, EventRecorder
from ...client.informer import meta_key
from ...client.rest import ApiError
from ..base import Controller, Requeue
from ..podutil import (
    CONTROLLER_INDEX,
    controlled_by,
    controller_index,
    controller_ref,
    namespace_index,
    new_controller_ref,
)
from ..refmanager import ControllerRefManager, live_owner
from . import util
from .progress import ProgressMixin
from .recreate import RecreateMixin
from .rolling import RollingMixin
from .sync import SyncMixin


class DeploymentController(SyncMixin, RollingMixin, RecreateMixin, ProgressMixin, Controller):
    name = "deployment"
    workers = 4

    def __init__(self, ctx):
        super().__init__(ctx)
        self.recorder = EventRecorder(self.client, "deployment-controller")
        self.deployments = self.watch("apps", "v1", "deployments")
        self.deployments.add_indexer("namespace", namespace_index)
        self.replicasets = self.ctx.informers.informer("apps", "v1", "replicasets")
        self.replicasets.add_indexer("namespace", namespace_index)
        self.replicasets.add_handler(self._rs_changed, lambda old, new: self._rs_updated(old, new), self._rs_changed)
        self.pods = self.ctx.informers.informer("", "v1", "pods")
        self.pods.add_indexer("namespace", namespace_index)
        self.pods.add_indexer(CONTROLLER_INDEX, controller_index)
        self.pods.add_handler(None, None, self._pod_deleted)
        self.watched += [self.replicasets, self.pods]

    # --- events to keys ---------------------------------------------------------------------------
    def _owner_key(self, obj: dict, ref: dict | None, kind: str, informer) -> str | None:
        if not ref or ref.get("kind") != kind:
            return None
        key = f"{obj['metadata'].get('namespace', '')}/{ref['name']}"
        owner = informer.get(key)
        return key if owner is not None and owner["metadata"].get("uid") == ref.get("uid") else None

    def _rs_changed(self, rs: dict) -> None:
        key = self._owner_key(rs, controller_ref(rs), "Deployment", self.deployments)
        if key:
            self.queue.add(key)
        elif controller_ref(rs) is None:
            labels = rs["metadata"].get("labels") or {}
            for d in self.deployments.by_index("namespace", rs["metadata"].get("namespace", "")):
                if labels and selector_matches(d["spec"].get("selector"), labels):
                    self.queue.add(meta_key(d))

    def _rs_updated(self, old: dict, new: dict) -> None:
        if controller_ref(old) != controller_ref(new):
            key = self._owner_key(old, controller_ref(old), "Deployment", self.deployments)
            if key:
                self.queue.add(key)
        self._rs_changed(new)

    def _pod_deleted(self, pod: dict) -> None:
        rs_key = self._owner_key(pod, controller_ref(pod), "ReplicaSet", self.replicasets)
        rs = self.replicasets.get(rs_key) if rs_key else None
        key = self._owner_key(rs, controller_ref(rs), "Deployment", self.deployments) if rs else None
        d = self.deployments.get(key) if key else None
        if d and not util.is_rolling(d):
            self.queue.add(key)  # Recreate waits for the old pods to be gone

    # --- helpers used by the mixins ---------------------------------------------------------------
    def owner_ref(self, d: dict) -> dict:
        return new_controller_ref(d, "apps/v1", "Deployment")

    async def write_status(self, d: dict, status: dict) -> None:
        body = {**d, "status": status}
        try:
            updated = await self.client.update("apps", "v1", "deployments", body, d["metadata"]["namespace"],
                                               subresource="status")
        except ApiError as e:
            if e.code == 409:
                raise Requeue(0.05) from None
            raise
        d["metadata"], d["status"] = updated["metadata"], updated.get("status") or {}

    async def get_rs_for_deployment(self, d: dict) -> list[dict]:
        selector = d["spec"].get("selector")
        manager = ControllerRefManager(
            self.client, d, "apps/v1", "Deployment",
            lambda rs: selector_matches(selector, rs["metadata"].get("labels") or {}), ("apps", "v1", "replicasets"),
            live_owner(self.client, "apps", "v1", "deployments", d))
        return [copy.deepcopy(rs) for rs in await manager.claim(self.replicasets.by_index("namespace",
                                                                                          d["metadata"]["namespace"]))]

    def get_pod_map(self, d: dict, rss: list[dict]) -> dict[str, list[dict]]:
        matches = selector_matcher(d["spec"].get("selector"))
        return {rs["metadata"]["uid"]: [p for p in controlled_by(self.pods, rs)
                                        if matches(p["metadata"].get("labels") or {})]
                for rs in rss}

    # --- the sync ---------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> None:
        try:
            await self.sync_deployment(key)
        except ApiError as e:
            if e.code == 409:
                raise Requeue(0.1) from None  # our cache was stale: sync again once it catches up
            raise

    async def sync_deployment(self, key: str) -> None:
        cached = self.deployments.get(key)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        d.setdefault("status", {})
        selector = d["spec"].get("selector") or {}
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            self.recorder.event(d, WARNING, "SelectingAll",
                                "This deployment is selecting all pods. A non-empty selector is required.")
            if int(d["status"].get("observedGeneration") or 0) < int(d["metadata"].get("generation") or 0):
                await self.write_status(d, {**d["status"], "observedGeneration": d["metadata"]["generation"]})
            return
        rss = await self.get_rs_for_deployment(d)
        pod_map = self.get_pod_map(d, rss)
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old = await self.get_all_rs_and_sync_revision(d, rss, False)
            await self.sync_deployment_status([*old, new_rs], new_rs, d)
            return
        await self.check_paused_conditions(d)
        if d["spec"].get("paused"):
            await self.sync(d, rss)
            return
        if await self.is_scaling_event(d, rss):
            await self.sync(d, rss)
            return
        if util.is_rolling(d):
            await self.rollout_rolling(d, rss)
        else:
            await self.rollout_recreate(d, rss, pod_map)

    async def check_paused_conditions(self, d: dict) -> None:
        if not util.has_progress_deadline(d):
            return
        cond = util.get_condition(d["status"], "Progressing")
        if cond is not None and cond.get("reason") == util.TIMED_OUT:
            return
        paused_cond = cond is not None and cond.get("reason") == util.PAUSED
        status = copy.deepcopy(d["status"])
        if d["spec"].get("paused") and not paused_cond:
            util.set_condition(status, util.new_condition("Progressing", "Unknown", util.PAUSED,
                                                          "Deployment is paused"))
        elif not d["spec"].get("paused") and paused_cond:
            util.set_condition(status, util.new_condition("Progressing", "Unknown", util.RESUMED,
                                                          "Deployment is resumed"))
        else:
            return
        await self.write_status(d, status)
