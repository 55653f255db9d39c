"""The scheduler: informers feed the cache and the queue; one pod at a time is filtered, scored,
reserved and assumed, then bound asynchronously (upstream's scheduleOne)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time

import orjson

from ..client.factory import InformerFactory
from .cache import Cache, is_terminal
from .events import event_body, pod_scheduled_patch
from .framework import OK, Code, CycleState, Diagnosis, FitError, Framework, Handle, NodeInfo, Status
from .plugins import DEFAULT_PLUGINS, REGISTRY
from .queue import QueuedPodInfo, SchedulingQueue
from .resources import pod_key, pod_requests

log = logging.getLogger("kybernetes.scheduler")

MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENTAGE = 5
ERR_NO_NODES = "no nodes available to schedule pods"
STRATEGIC = "application/strategic-merge-patch+json"


def num_feasible_nodes_to_find(num_all: int, percentage: int = 0) -> int:
    """Upstream's adaptive percentageOfNodesToScore: all nodes below 100, then 50% - n/125 (at least 5%)."""
    if num_all < MIN_FEASIBLE_NODES or percentage >= 100:
        return num_all
    if percentage <= 0:
        percentage = max(50 - num_all // 125, MIN_FEASIBLE_PERCENTAGE)
    return max(num_all * percentage // 100, MIN_FEASIBLE_NODES)


def select_host(totals: dict[str, int], rng: random.Random | None = None) -> str:
    """The highest total score; ties broken uniformly at random."""
    if not totals:
        return ""
    top = max(totals.values())
    ties = [name for name, score in totals.items() if score == top]
    return ties[0] if len(ties) == 1 else (rng or random).choice(ties)


class Stats:
    """Counters of the scheduler's own work, as upstream's scheduling_algorithm_duration_seconds and
    binding_duration_seconds: time inside the scheduling algorithm (prefilter, filter, score and select) and
    time of the binding cycle's API writes. Written as JSON to the file named by $KYB_SCHEDULER_STATS."""

    def __init__(self):
        self.cycles = 0  # scheduling algorithm runs (successful or not)
        self.algorithm_seconds = 0.0  # wall time of filter + score + select
        self.algorithm_cpu_seconds = 0.0  # the same in this thread's CPU time (other processes excluded)
        self.cycle_seconds = 0.0  # the whole scheduling cycle: algorithm, assume, reserve, permit
        self.bound = 0
        self.bind_seconds = 0.0  # sum of binding-cycle latencies (API writes, concurrent)
        self.failed = 0
        self.first_cycle_wall = 0.0
        self.last_bound_wall = 0.0
        self.events_written = 0  # Events the writer has sent (record_event queues them)
        self.last_event_wall = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class ScheduleError(Exception):
    def __init__(self, status: Status):
        super().__init__(status.message())
        self.status = status


class Scheduler:
    def __init__(self, client, scheduler_name: str = "default-scheduler", plugins=None, registry=None,
                 plugin_args: dict | None = None, percentage_of_nodes_to_score: int = 0):
        self.client = client
        self.name = scheduler_name
        self.cache = Cache()
        self.handle = Handle(client, {}, scheduler_name)
        self.framework = Framework(registry or REGISTRY, plugins or DEFAULT_PLUGINS, self.handle, plugin_args)
        self.queue = SchedulingQueue(self.framework.less, self.framework.run_pre_enqueue)
        self.handle.nominated_pods = self.queue.nominated_pods
        self.handle.snapshot = self.cache.snapshot
        self.handle.nodes_with_affinity = self.cache.nodes_with_affinity
        self.handle.record_event = self.record_event
        self.percentage = percentage_of_nodes_to_score
        self.next_start_node_index = 0
        self.pods = None
        self.priority_classes = None
        self._tasks: set[asyncio.Task] = set()
        self._events: asyncio.Queue | None = None  # Event bodies for the one writer (record_event)
        self._event_writer: asyncio.Task | None = None
        self.stats = Stats()

    async def write_stats(self, path: str, stop: asyncio.Event) -> None:
        """Dump the counters to `path` twice a second (atomically) until stopped."""
        tmp = path + ".tmp"
        while True:
            with open(tmp, "wb") as f:
                f.write(orjson.dumps(self.stats.as_dict()))
            os.replace(tmp, path)
            if stop.is_set():
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    # --- informers --------------------------------------------------------------------------------
    def responsible_for(self, pod: dict) -> bool:
        return ((pod.get("spec") or {}).get("schedulerName") or "default-scheduler") == self.name

    def with_priority(self, pod: dict) -> dict:
        """Pods created before priority admission ran (or without it) get their class's value here."""
        spec = pod.get("spec") or {}
        if spec.get("priority") is not None or self.priority_classes is None:
            return pod
        value = None
        name = spec.get("priorityClassName")
        for pc in self.priority_classes.list():
            if (name and pc["metadata"]["name"] == name) or (not name and pc.get("globalDefault")):
                value = pc.get("value")
                break
        if value is None:
            return pod
        return {**pod, "spec": {**spec, "priority": value}}

    def on_pod_add(self, pod: dict) -> None:
        pod = self.with_priority(pod)
        if (pod.get("spec") or {}).get("nodeName"):
            if not is_terminal(pod):
                self.cache.add_pod(pod)
                self.queue.delete(pod)
                self.queue.move_all_to_active_or_backoff("AssignedPodAdd")
        elif self.responsible_for(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp") \
                and not is_terminal(pod):
            self.queue.add(pod)

    def on_pod_update(self, old: dict, new: dict) -> None:
        new = self.with_priority(new)
        if (new.get("spec") or {}).get("nodeName"):
            self.queue.delete(new)
            if is_terminal(new):
                self.on_pod_delete(new)
                return
            self.cache.update_pod(old, new)
            if not (old.get("spec") or {}).get("nodeName"):
                self.queue.move_all_to_active_or_backoff("AssignedPodAdd")
            elif (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
                self.queue.move_all_to_active_or_backoff("AssignedPodUpdate")
            elif (old.get("spec") or {}).get("containers") != (new.get("spec") or {}).get("containers") or \
                    (old.get("spec") or {}).get("initContainers") != (new.get("spec") or {}).get("initContainers"):
                new_req, old_req = pod_requests(new), pod_requests(old)  # only a resize can lower them
                if new_req.milli_cpu < old_req.milli_cpu or new_req.memory < old_req.memory:
                    self.queue.move_all_to_active_or_backoff("AssignedPodScaleDown")
        elif (new.get("metadata") or {}).get("deletionTimestamp") or is_terminal(new):
            self.queue.delete(new)
        elif self.responsible_for(new):
            self.queue.update(old, new)

    def on_pod_delete(self, pod: dict) -> None:
        if (pod.get("spec") or {}).get("nodeName") or self.cache.is_assumed(pod_key(pod)):
            self.cache.remove_pod(pod)
            self.queue.move_all_to_active_or_backoff("AssignedPodDelete")
        self.queue.delete(pod)

    def on_node_add(self, node: dict) -> None:
        self.cache.add_node(node)
        self.queue.move_all_to_active_or_backoff("NodeAdd")

    def on_node_update(self, old: dict, new: dict) -> None:
        self.cache.update_node(old, new)

        def significant(n):
            return ((n.get("metadata") or {}).get("labels"), n.get("spec"), (n.get("status") or {}).get("allocatable"))
        if significant(old) != significant(new):
            self.queue.move_all_to_active_or_backoff("NodeUpdate")

    def on_node_delete(self, node: dict) -> None:
        self.cache.remove_node(node)

    def _event_handler(self, event: str):
        def move(*_):
            self.queue.move_all_to_active_or_backoff(event)
        return move

    async def run(self, stop: asyncio.Event) -> None:
        factory = InformerFactory(self.client)
        nodes = factory.informer("", "v1", "nodes")
        self.pods = factory.informer("", "v1", "pods")
        listers = {
            "persistentvolumeclaims": factory.informer("", "v1", "persistentvolumeclaims"),
            "persistentvolumes": factory.informer("", "v1", "persistentvolumes"),
            "storageclasses": factory.informer("storage.k8s.io", "v1", "storageclasses"),
            "namespaces": factory.informer("", "v1", "namespaces"),
        }
        self.priority_classes = factory.informer("scheduling.k8s.io", "v1", "priorityclasses")
        self.handle.listers.update(listers)
        nodes.add_handler(self.on_node_add, self.on_node_update, self.on_node_delete)
        self.pods.add_handler(self.on_pod_add, self.on_pod_update, self.on_pod_delete)
        for plural, event in (("persistentvolumeclaims", "PvcChange"), ("persistentvolumes", "PvChange"),
                              ("storageclasses", "StorageClassChange")):
            h = self._event_handler(event)
            listers[plural].add_handler(h, h, None if plural != "persistentvolumes" else h)
        factory.start(stop)
        # Nodes and pods are required; the optional listers get a grace period (a server without one
        # of those resources must not keep the scheduler from starting).
        required = asyncio.ensure_future(factory.wait_synced(nodes, self.pods))
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({required, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not required.done():
            required.cancel()
        optional = asyncio.ensure_future(factory.wait_synced(*listers.values(), self.priority_classes))
        await asyncio.wait({optional, stopper}, timeout=10.0, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not optional.done():
            optional.cancel()
            log.warning("scheduler %s: some optional informers did not sync; continuing", self.name)
        log.info("scheduler %s: caches synced, scheduling", self.name)
        stats_path = os.environ.get("KYB_SCHEDULER_STATS")
        if stats_path:
            writer = asyncio.create_task(self.write_stats(stats_path, stop))
            self._tasks.add(writer)
            writer.add_done_callback(self._tasks.discard)
        try:
            while not stop.is_set():
                qpi = await self.queue.pop(stop)
                if qpi is None:
                    break
                try:
                    await self.schedule_one(qpi)
                except Exception:  # a bug in one cycle must not stop scheduling
                    log.exception("scheduling %s", qpi.key)
                    self.queue.add_unschedulable(qpi)
        finally:
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await factory.join()

    # --- one scheduling cycle ---------------------------------------------------------------------
    def current(self, qpi: QueuedPodInfo) -> dict | None:
        """The pod as the informer has it now, if it still wants scheduling."""
        pod = self.pods.get(qpi.key) if self.pods is not None else qpi.pod
        if pod is None:
            return None
        pod = self.with_priority(pod)
        if (pod.get("spec") or {}).get("nodeName") or (pod.get("metadata") or {}).get("deletionTimestamp"):
            return None
        return pod

    def find_nodes_that_fit(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[NodeInfo]:
        diagnosis = Diagnosis()
        result, s = self.framework.run_pre_filter(state, pod, nodes)
        if not s.is_success():
            if not s.is_rejected():
                raise ScheduleError(s)
            diagnosis.absent_status = s
            diagnosis.pre_filter_msg = s.message()
            diagnosis.unschedulable_plugins.add(s.plugin)
            raise FitError(pod, len(nodes), diagnosis)
        candidates = nodes
        if result is not None and result.node_names is not None:
            candidates = [n for n in nodes if n.name in result.node_names]
            diagnosis.absent_status = Status.unresolvable("node(s) didn't satisfy plugin(s) [NodeAffinity]")
        want = num_feasible_nodes_to_find(len(candidates), self.percentage)
        feasible: list[NodeInfo] = []
        start = self.next_start_node_index % len(candidates) if candidates else 0
        processed = 0
        total = len(candidates)
        if self.queue.nominated:  # a preemption is under way: filter each node with the pods nominated to it
            def statuses_of(nodes):
                return [self.framework.run_filter_with_nominated(state, pod, ni) for ni in nodes]
        else:
            def statuses_of(nodes):
                return self.framework.run_filter_nodes(state, pod, nodes)
        # nodes are filtered in chunks of about what is still needed, in the rotating order; the count of
        # processed nodes stops at the node that completed the feasible set, as one by one would
        while processed < total and len(feasible) < want:
            size = min(total - processed, max(want - len(feasible), 16))
            at = (start + processed) % total
            chunk = candidates[at:at + size]
            if len(chunk) < size:  # wrapped around the end of the list
                chunk += candidates[:size - len(chunk)]
            for ni, s in zip(chunk, statuses_of(chunk), strict=True):
                processed += 1
                if s is OK or s.code == Code.SUCCESS:
                    feasible.append(ni)
                    if len(feasible) >= want:
                        break
                elif s.code == Code.ERROR:
                    raise ScheduleError(s)
                else:
                    diagnosis.node_to_status[ni.name] = s
                    diagnosis.unschedulable_plugins.add(s.plugin)
        if candidates:
            self.next_start_node_index = (start + processed) % len(candidates)
        if not feasible:
            raise FitError(pod, len(nodes), diagnosis)
        return feasible

    def schedule_pod(self, state: CycleState, pod: dict) -> str:
        nodes = self.cache.snapshot()
        if not nodes:
            raise ScheduleError(Status.unschedulable(ERR_NO_NODES))
        feasible = self.find_nodes_that_fit(state, pod, nodes)
        if len(feasible) == 1:
            return feasible[0].name
        s = self.framework.run_pre_score(state, pod, feasible)
        if not s.is_success():
            raise ScheduleError(s)
        totals, _, s = self.framework.run_score(state, pod, feasible)
        if not s.is_success():
            raise ScheduleError(s)
        return select_host(totals)

    async def schedule_one(self, qpi: QueuedPodInfo) -> None:
        pod = self.current(qpi)
        if pod is None:
            self.queue.done(qpi.key)
            return
        qpi.pod = pod
        cycle = self.queue.scheduling_cycle
        state = CycleState()
        stats = self.stats
        t0, c0 = time.perf_counter(), time.thread_time()
        if not stats.cycles:
            stats.first_cycle_wall = time.time()
        stats.cycles += 1
        try:
            node = self.schedule_pod(state, pod)
        except FitError as err:
            stats.algorithm_seconds += time.perf_counter() - t0
            stats.algorithm_cpu_seconds += time.thread_time() - c0
            nominated = None
            if self.framework.points["post_filter"]:
                result, s = await self.framework.run_post_filter(state, pod, err.diagnosis)
                if not s.is_success():
                    err.diagnosis.post_filter_msg = s.message()
                if result is not None:
                    nominated = result.nominated_node_name
            await self.handle_failure(qpi, str(err), err.diagnosis.unschedulable_plugins, cycle, nominated)
            return
        except ScheduleError as err:
            stats.algorithm_seconds += time.perf_counter() - t0
            stats.algorithm_cpu_seconds += time.thread_time() - c0
            plugins = {err.status.plugin} if err.status.is_rejected() and err.status.plugin else set()
            if err.status.message() == ERR_NO_NODES:
                plugins = {"NodeAdd"}  # only a node can help
            await self.handle_failure(qpi, err.status.message(), plugins, cycle, None,
                                      unschedulable=err.status.is_rejected())
            return
        stats.algorithm_seconds += time.perf_counter() - t0
        stats.algorithm_cpu_seconds += time.thread_time() - c0
        assumed = self.cache.assume_pod(pod, node)
        s = self.framework.run_reserve(state, assumed, node)
        if s.is_success():
            s, timeout = self.framework.run_permit(state, assumed, node)
            if not s.is_success() and s.code != Code.WAIT:
                self.framework.run_unreserve(state, assumed, node)
        else:
            timeout = 0.0
        if not s.is_success() and s.code != Code.WAIT:
            self.cache.forget_pod(assumed)
            await self.handle_failure(qpi, s.message(), {s.plugin} if s.is_rejected() else set(), cycle, None,
                                      unschedulable=s.is_rejected())
            return
        self.queue.delete_nominated(pod)
        stats.cycle_seconds += time.perf_counter() - t0
        task = asyncio.create_task(self.binding_cycle(state, qpi, assumed, node, timeout if s.code == Code.WAIT
                                                      else None, cycle))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def binding_cycle(self, state: CycleState, qpi: QueuedPodInfo, assumed: dict, node: str,
                            permit_timeout: float | None, cycle: int) -> None:
        fwk = self.framework
        s = Status()
        t0 = time.perf_counter()
        if permit_timeout is not None:
            s = await fwk.wait_on_permit(assumed, permit_timeout)
        if s.is_success():
            s = await fwk.run_pre_bind(state, assumed, node)
        if s.is_success():
            s = await fwk.run_bind(state, assumed, node)
        self.stats.bind_seconds += time.perf_counter() - t0
        if not s.is_success():
            self.stats.failed += 1
            fwk.run_unreserve(state, assumed, node)
            self.cache.forget_pod(assumed)
            self.queue.move_all_to_active_or_backoff("AssignedPodDelete")
            await self.handle_failure(qpi, s.message(), {s.plugin} if s.is_rejected() else set(), cycle, None,
                                      unschedulable=s.is_rejected())
            return
        self.queue.done(qpi.key)
        self.stats.bound += 1
        self.stats.last_bound_wall = time.time()
        fwk.run_post_bind(state, assumed, node)
        meta = assumed["metadata"]
        await self.record_event(assumed, "Normal", "Scheduled",
                                f"Successfully assigned {meta.get('namespace')}/{meta['name']} to {node}")

    # --- failures and events ----------------------------------------------------------------------
    async def handle_failure(self, qpi: QueuedPodInfo, message: str, plugins: set[str], cycle: int,
                             nominated: str | None, unschedulable: bool = True) -> None:
        reason = "Unschedulable" if unschedulable else "SchedulerError"
        pod = self.current(qpi)
        if pod is None:  # deleted or bound meanwhile
            self.queue.done(qpi.key)
            return
        qpi.pod = pod
        qpi.unschedulable_plugins = {p for p in plugins if p}
        self.queue.add_unschedulable(qpi, cycle)
        if nominated is not None:
            self.queue.add_nominated(pod, nominated)
        log.info("unable to schedule %s: %s", qpi.key, message)
        await self.record_event(pod, "Warning", "FailedScheduling", message)
        body = pod_scheduled_patch(pod, reason, message, nominated)
        if body is None:
            return
        meta = pod["metadata"]
        try:
            await self.client.patch("", "v1", "pods", meta["name"], body, namespace=meta["namespace"],
                                    subresource="status", patch_type=STRATEGIC)
        except Exception as e:
            log.warning("updating PodScheduled of %s: %s", qpi.key, e)

    async def record_event(self, obj: dict, event_type: str, reason: str, message: str) -> None:
        """Queue an Event and return: one task writes them in order, one at a time, as the sink of
        client-go's event broadcaster does, so Events never hold up bindings or take connections
        from them (unlike upstream's broadcaster, which drops past 1,000 queued, none is dropped)."""
        if self._event_writer is None or self._event_writer.done():
            self._events = asyncio.Queue()
            self._event_writer = asyncio.get_running_loop().create_task(self._write_events(self._events))
            self._tasks.add(self._event_writer)
            self._event_writer.add_done_callback(self._tasks.discard)
        self._events.put_nowait(event_body(obj, event_type, reason, message, self.name))

    async def _write_events(self, queue: asyncio.Queue) -> None:
        while True:
            body = await queue.get()
            try:
                with contextlib.suppress(Exception):  # events are best effort, as upstream's recorder
                    await self.client.create("", "v1", "events", body, namespace=body["metadata"]["namespace"])
                    self.stats.events_written += 1
                    self.stats.last_event_wall = time.time()
            finally:
                queue.task_done()

    async def flush(self) -> None:
        """Wait for the binding cycles started so far, then for the Events they queued (tests)."""
        await asyncio.gather(*(t for t in list(self._tasks) if t is not self._event_writer),
                             return_exceptions=True)
        if self._events is not None and self._event_writer is not None and not self._event_writer.done():
            await self._events.join()


async def run_scheduler(client, stop: asyncio.Event, name: str = "default-scheduler") -> None:
    await Scheduler(client, name).run(stop)


__all__ = ["Scheduler", "run_scheduler", "num_feasible_nodes_to_find", "select_host"]
