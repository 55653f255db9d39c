"""The prober: liveness, readiness and startup probe workers (upstream pkg/kubelet/prober).

One asyncio worker per (container id, probe kind). A worker waits initialDelaySeconds after
the container started, then probes every periodSeconds with timeoutSeconds; a result flips
after successThreshold consecutive successes or failureThreshold consecutive failures.
Liveness and readiness do not run until the startup probe succeeded. Initial results are
upstream's: readiness Failure, liveness Success, startup Failure (not started). Result
changes re-queue the pod; the pod worker reads them in `step`, which sets the container's
ready and started flags and kills a container whose liveness probe failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .lifecycle import Killer, _pod_ip, pod_grace, run_handler
from .runtime import RUNNING

log = logging.getLogger("kybernetes.kubelet.probes")

KINDS = ("startupProbe", "livenessProbe", "readinessProbe")
LABEL = {"startupProbe": "Startup", "livenessProbe": "Liveness", "readinessProbe": "Readiness"}


@dataclass
class ProbeResults:
    container_id: str
    ok: dict[str, bool] = field(default_factory=dict)  # kind -> current result
    tasks: list[asyncio.Task] = field(default_factory=list)

    def started(self) -> bool:
        return self.ok.get("startupProbe", True)


def _num(probe: dict, key: str, default: float, minimum: float = 0) -> float:
    value = probe.get(key)
    return max(minimum, float(default if value is None else value))


class Prober:
    def __init__(self, on_change: Callable[[str], None], killer: Killer):
        self.on_change = on_change
        self.killer = killer
        self.results: dict[tuple[str, str], ProbeResults] = {}  # (pod uid, container name) -> results

    # --- the pod worker's side ------------------------------------------------------------------------
    def step(self, pod: dict, node, container: dict, view, cur) -> float | None:
        """For a running container: set view.ready/started from the probes, handle liveness failures."""
        uid = pod["metadata"]["uid"]
        probes = {k: container[k] for k in KINDS if container.get(k)}
        if not probes:
            view.ready, view.started = True, None
            return None
        if getattr(node.runtime, "cri", None) is None:  # simulated: ready after initialDelaySeconds
            rp = probes.get("readinessProbe") or {}
            ready_at = cur.started_at + float(rp.get("initialDelaySeconds") or 0)
            view.ready, view.started = time.time() >= ready_at, None
            return None if view.ready else ready_at - time.time()
        key = (uid, container["name"])
        res = self.results.get(key)
        if res is None or res.container_id != cur.id:
            if res is not None:
                self._cancel(res)
            res = self.results[key] = self._start(pod, node, container, cur, probes)
        started = res.started()
        view.started = started
        view.ready = started and res.ok.get("readinessProbe", True) and cur.id not in self.killer.killing
        if started and not res.ok.get("livenessProbe", True) and cur.id not in self.killer.killing:
            grace = float(probes["livenessProbe"].get("terminationGracePeriodSeconds") or pod_grace(pod))
            self.killer.kill(node, pod, container, cur, grace,
                             f"Container {container['name']} failed liveness probe, will be restarted")
            view.ready = False
        return None

    def forget(self, pod_uid: str) -> None:
        for key in [k for k in self.results if k[0] == pod_uid]:
            self._cancel(self.results.pop(key))

    @staticmethod
    def _cancel(res: ProbeResults) -> None:
        for t in res.tasks:
            t.cancel()

    # --- workers ---------------------------------------------------------------------------------------
    def _start(self, pod: dict, node, container: dict, cur, probes: dict) -> ProbeResults:
        res = ProbeResults(cur.id)
        res.ok = {"startupProbe": False, "livenessProbe": True, "readinessProbe": False}
        for k in KINDS:
            if k not in probes:
                res.ok.pop(k)
        loop = asyncio.get_running_loop()
        for kind, probe in probes.items():
            res.tasks.append(loop.create_task(self._worker(pod, node, container, cur, kind, probe, res)))
        return res

    async def _worker(self, pod: dict, node, container: dict, cur, kind: str, probe: dict, res: ProbeResults):
        uid = pod["metadata"]["uid"]
        delay = _num(probe, "initialDelaySeconds", 0)
        period = _num(probe, "periodSeconds", 10, 1)
        timeout = _num(probe, "timeoutSeconds", 1, 1)
        need_ok = int(_num(probe, "successThreshold", 1, 1))
        need_fail = int(_num(probe, "failureThreshold", 3, 1))
        first = cur.started_at + delay - time.time()
        if first > 0:
            await asyncio.sleep(first)
        streak_ok = streak_fail = 0
        try:
            while True:
                status = node.runtime.container_status(cur.id)
                if status is None or status.state != RUNNING:
                    return
                if kind == "startupProbe" and res.ok.get(kind):
                    return  # a startup probe stops once it succeeded
                if kind != "startupProbe" and not res.started():
                    await asyncio.sleep(period)
                    continue
                ok, out = await run_handler(node.runtime, container, cur.id, _pod_ip(node, cur), probe, timeout)
                if ok:
                    streak_ok, streak_fail = streak_ok + 1, 0
                else:
                    streak_ok, streak_fail = 0, streak_fail + 1
                    self.killer.event(pod, "Warning", "Unhealthy", f"{LABEL[kind]} probe failed: {out}".strip(),
                                      container["name"])
                new = res.ok[kind]
                if ok and streak_ok >= need_ok:
                    new = True
                elif not ok and streak_fail >= need_fail:
                    new = False
                if new != res.ok[kind]:
                    res.ok[kind] = new
                    log.info("%s probe of %s/%s: %s", LABEL[kind], uid[:8], container["name"],
                             "success" if new else "failure")
                    self.on_change(uid)
                    if kind == "livenessProbe" and not new:
                        return  # the container is killed; its successor gets a new worker
                await asyncio.sleep(period)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a broken worker must not take the agent down
            log.warning("%s probe worker of %s/%s failed: %s", kind, uid[:8], container["name"], e)
