"""Pod workers: drive each pod bound to one of our nodes through a runtime, level-triggered.

`sync_pod(key)` looks at the pod (from the informer cache) and at what the runtime
reports, takes the next step (sandbox, init containers in order, containers, restarts
with upstream's crash-loop back-off, graceful termination) and writes the resulting
status through `pods/NAME/status`. Runtime events and timers only re-queue the pod.
Works for any `Runtime`; many nodes may share one set of workers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from ..api.meta import rfc3339
from ..client.informer import Informer
from ..client.rest import ApiError, RESTClient
from ..client.workqueue import WorkQueue
from .lifecycle import Killer, pod_grace, post_start
from .probes import Prober
from .runtime import EXITED, RUNNING, ContainerStartError, ContainerStatus, PodSandbox
from .status import ContainerView, container_status, pod_conditions, pod_phase, with_transition_times

log = logging.getLogger("kybernetes.kubelet.pods")

INITIAL_BACKOFF, MAX_BACKOFF = 10.0, 300.0  # upstream kubelet crash-loop back-off


class Backoff:
    """client-go flowcontrol.Backoff keyed by container: 10 s doubling to 5 min, reset after 10 quiet minutes."""

    def __init__(self, initial: float = INITIAL_BACKOFF, cap: float = MAX_BACKOFF, clock=time.time):
        self.initial, self.cap, self.clock = initial, cap, clock
        self.entries: dict[str, tuple[float, float]] = {}  # key -> (backoff, last update)

    def _expired(self, event_time: float, last: float) -> bool:
        return event_time - last > 2 * self.cap

    def remaining(self, key: str, event_time: float) -> float:
        """Seconds still to wait after an exit at `event_time` (0: may restart now)."""
        entry = self.entries.get(key)
        if entry is None or self._expired(event_time, entry[1]):
            return 0.0
        return max(0.0, entry[0] - (self.clock() - event_time))

    def current(self, key: str) -> float:
        return self.entries.get(key, (self.initial, 0))[0]

    def next(self, key: str, event_time: float) -> None:
        entry = self.entries.get(key)
        if entry is None or self._expired(event_time, entry[1]):
            self.entries[key] = (self.initial, event_time)
        else:
            self.entries[key] = (min(entry[0] * 2, self.cap), event_time)

    def forget_prefix(self, prefix: str) -> None:
        for k in [k for k in self.entries if k.startswith(prefix)]:
            del self.entries[k]


@dataclass
class PodState:
    uid: str
    node: str
    sandbox: PodSandbox | None = None
    views: dict[str, ContainerView] = field(default_factory=dict)
    start_time: str = ""
    init_done: bool = False
    init_failed: bool = False
    stopping: bool = False
    # the status as this kubelet last wrote it, and the resourceVersion of that write: the informer's
    # copy of the pod lags the kubelet's own writes, as upstream's status manager cache knows
    written: dict | None = None
    written_rv: int = 0


IMAGE_ERRORS = ("ErrImagePull", "ErrImageNeverPull", "InvalidImageName")


def _restart(policy: str, c: ContainerStatus) -> bool:
    return policy == "Always" or (policy == "OnFailure" and c.exit_code != 0)


class PodWorkers:
    def __init__(self, client: RESTClient, pods: Informer, nodes: dict, workers: int = 8, recorder=None,
                 parallel_starts: int | None = None):
        self.client = client
        self.pods = pods
        self.nodes = nodes  # node name -> NodeHandle
        self.workers = workers
        # new pods whose sandbox and first containers are being started at once (None: no limit); the rest
        # of a burst waits for a slot, while the workers go on syncing the pods already running
        self.start_slots = asyncio.Semaphore(parallel_starts) if parallel_starts else None
        self.queue = WorkQueue()
        self.states: dict[str, PodState] = {}
        self.backoff = Backoff()
        self.by_uid: dict[str, str] = {}
        self.killer = Killer(recorder)
        self.prober = Prober(self.runtime_event, self.killer)

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    def runtime_event(self, pod_uid: str) -> None:
        key = self.by_uid.get(pod_uid)
        if key:
            self.queue.add(key)

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        await stop.wait()
        self.queue.shutdown()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            try:
                wake = await self.sync_pod(key)
                self.queue.forget(key)
                if wake is not None:
                    self.queue.add_after(key, max(0.0, wake))
            except Exception as e:  # noqa: BLE001 - retried with backoff like any sync
                log.warning("sync pod %s failed: %s", key, e)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)

    # --- the sync --------------------------------------------------------------------------------
    async def sync_pod(self, key: str) -> float | None:
        """One step for pod `key`; returns seconds after which to look again (None: on the next event)."""
        pod = self.pods.get(key)
        st = self.states.get(key)
        if st is not None and (pod is None or pod["metadata"]["uid"] != st.uid):
            await self._teardown(key, st, self.nodes.get(st.node))
        if pod is None:
            return None
        spec, meta = pod.get("spec") or {}, pod["metadata"]
        node = self.nodes.get(spec.get("nodeName") or "")
        if node is None or not node.reachable:
            return None
        st = self.states.get(key)
        if meta.get("deletionTimestamp"):
            return await self._terminate(key, pod, node, st)
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            if st is not None and st.sandbox is not None and st.sandbox.ready:
                await node.runtime.stop_pod_sandbox(st.sandbox.id)
            return None
        if st is None and not spec.get("hostNetwork") and node.runtime.pod_cidr is None:
            return 1.0  # the IPAM controller has not given the node a pod CIDR yet
        slot = _Slot(self.start_slots if st is None else None)
        await slot.take()
        try:
            return await self._sync(key, pod, spec, meta, node, st, slot)
        finally:
            slot.give_back()

    async def _sync(self, key: str, pod: dict, spec: dict, meta: dict, node, st: PodState | None,
                    slot: _Slot) -> float | None:
        first: asyncio.Task | None = None
        if st is None:
            st = PodState(meta["uid"], node.name, start_time=rfc3339())
            old = {s.get("name"): s for s in (pod.get("status") or {}).get("containerStatuses") or ()}
            for c in spec.get("containers") or ():
                st.views[c["name"]] = ContainerView(c["name"], restarts=(old.get(c["name"]) or {}).get("restartCount", 0))
            if not await self._adopt(pod, node, st):
                st.sandbox = await node.runtime.run_pod_sandbox(pod)
            self.states[key] = st
            self.by_uid[st.uid] = key
            if not getattr(node.runtime, "starts_at_once", False):
                # Pending, ContainerCreating: written while the containers start, as upstream's status
                # manager writes what a sync found without holding the sync up
                first = asyncio.create_task(self._write_status(pod, st, self.build_status(pod, node, st)))
            # then on to the containers in the same sync, as upstream's SyncPod (re-queued instead, behind
            # every other new pod, the containers of a burst's first pod waited for all its sandboxes)
        try:
            wake = await self._init_containers(pod, node, st)
            if st.init_done:
                wake = _earliest(wake, await self._containers(pod, node, st))
        finally:
            if first is not None:  # the next status must land after it
                (failed,) = await asyncio.gather(first, return_exceptions=True)
                if isinstance(failed, Exception):
                    log.warning("status of pod %s not written: %s", key, failed)
        slot.give_back()  # started: the next new pod may go while this status is written
        await self._post(pod, node, st)
        return wake

    async def _init_containers(self, pod: dict, node, st: PodState) -> float | None:
        spec = pod["spec"]
        policy = spec.get("restartPolicy") or "Always"
        for c in spec.get("initContainers") or ():
            view = st.views.setdefault(c["name"], ContainerView(c["name"]))
            sidecar = c.get("restartPolicy") == "Always"
            wake = await self._step(pod, node, st, c, view, "Always" if sidecar else policy, init=not sidecar)
            cur = view.current
            if sidecar and cur is not None and cur.state == RUNNING:
                continue
            if cur is None or cur.state != EXITED or cur.exit_code != 0 or view.waiting_reason:
                st.init_failed = cur is not None and cur.state == EXITED and policy == "Never" and cur.exit_code != 0
                return wake
        st.init_done = True
        return None

    async def _containers(self, pod: dict, node, st: PodState) -> float | None:
        policy = pod["spec"].get("restartPolicy") or "Always"
        wake = None
        for c in pod["spec"].get("containers") or ():
            view = st.views.setdefault(c["name"], ContainerView(c["name"]))
            wake = _earliest(wake, await self._step(pod, node, st, c, view, policy))
        return wake

    async def _step(self, pod: dict, node, st: PodState, c: dict, view: ContainerView, policy: str,
                    init: bool = False) -> float | None:
        """Move one container toward its desired state; seconds until it needs another look."""
        view.waiting_reason = view.waiting_message = ""
        cur = view.current
        if cur is None:
            if not await self._try_start(pod, node, st, c, view):
                return self.backoff.current(f"{st.uid}/{c['name']}#start")
            cur = view.current
        if cur.state == RUNNING:
            if init:
                view.ready = False
                return None
            return self.prober.step(pod, node, c, view, cur)
        view.ready = False
        if cur.state != EXITED or (init and cur.exit_code == 0) or not _restart(policy, cur):
            return None
        bkey = f"{st.uid}/{c['name']}"
        wait = self.backoff.remaining(bkey, cur.finished_at)
        if wait > 0:
            view.waiting_reason = "CrashLoopBackOff"
            meta = pod["metadata"]
            view.waiting_message = (f"back-off {_duration(self.backoff.current(bkey))} restarting failed "
                                    f"container={c['name']} pod={meta['name']}_{meta.get('namespace', '')}({st.uid})")
            self.container_event(pod, c, "Warning", "BackOff", f"Back-off restarting failed container {c['name']} "
                                 f"in pod {meta['name']}_{meta.get('namespace', '')}({st.uid})")
            return wait
        self.backoff.next(bkey, cur.finished_at)
        if not await self._try_start(pod, node, st, c, view, restart=True):
            return self.backoff.current(f"{st.uid}/{c['name']}#start")
        return await self._step(pod, node, st, c, view, policy, init)

    async def _try_start(self, pod: dict, node, st: PodState, c: dict, view: ContainerView,
                         restart: bool = False) -> bool:
        """Start the container; when the runtime refuses (image pull, create, start), show why and back off."""
        try:
            await self._start(pod, node, st, c, view, restart)
        except ContainerStartError as e:
            view.waiting_reason, view.waiting_message = e.reason, e.message
            self.backoff.next(f"{st.uid}/{c['name']}#start", time.time())
            if e.reason == "ContainerCreating":  # a volume could not be set up: about the pod, as upstream
                self.container_event(pod, None, "Warning", "FailedMount", e.message)
            else:  # upstream names image errors by reason, the others by their message
                self.container_event(pod, c, "Warning", "Failed",
                                     f"Error: {e.reason if e.reason in IMAGE_ERRORS else e.message}")
            return False
        return True

    def container_event(self, pod: dict, c: dict | None, type_: str, reason: str, message: str) -> None:
        """An Event about one container, or the pod when `c` is None (simulated nodes, which have
        no recorder, record none)."""
        if self.killer.recorder is not None:
            self.killer.event(pod, type_, reason, message, c["name"] if c else "")

    async def _start(self, pod: dict, node, st: PodState, c: dict, view: ContainerView, restart: bool = False):
        attempt = view.restarts + (1 if restart else 0)
        cid = await node.runtime.create_container(st.sandbox.id, pod, c, attempt)
        self.container_event(pod, c, "Normal", "Created", f"Created container: {c['name']}")
        await node.runtime.start_container(cid)
        self.container_event(pod, c, "Normal", "Started", f"Started container {c['name']}")
        if restart:
            if view.last is not None:
                await node.runtime.remove_container(view.last.id)
            view.last = view.current
            view.restarts += 1
        view.current = node.runtime.container_status(cid)
        if view.current is not None:
            await post_start(node, pod, c, view.current, self.killer)

    async def _adopt(self, pod: dict, node, st: PodState) -> bool:
        """After an agent restart: take over the pod's running sandbox and containers (restarts from attempts)."""
        if getattr(node.runtime, "cri", None) is None:
            return False
        from .runtime.adopt import adopt

        sandbox, containers = await adopt(node.runtime, pod)
        if sandbox is None:
            return False
        st.sandbox = sandbox
        for c in sorted(containers, key=lambda c: c.attempt):
            view = st.views.setdefault(c.name, ContainerView(c.name))
            if view.current is not None:
                view.last = view.current
            view.current, view.restarts = c, max(view.restarts, c.attempt)
        return True

    # --- termination -------------------------------------------------------------------------------
    async def _terminate(self, key: str, pod: dict, node, st: PodState | None) -> float | None:
        meta = pod["metadata"]
        if st is not None and st.sandbox is not None:
            if not st.stopping:
                st.stopping = True
                specs = {c["name"]: c for c in (pod["spec"].get("initContainers") or [])
                         + (pod["spec"].get("containers") or [])}
                for view in st.views.values():
                    if view.current is not None and view.current.state != EXITED:
                        self.killer.kill(node, pod, specs.get(view.name) or {"name": view.name}, view.current,
                                         pod_grace(pod))
            if any(v.current is not None and v.current.state != EXITED for v in st.views.values()):
                return None  # the runtime reports the exits
            for view in st.views.values():
                view.ready, view.waiting_reason = False, ""
            await self._post(pod, node, st, terminal=True)
            await node.runtime.stop_pod_sandbox(st.sandbox.id)
        await node.runtime.release_pod_volumes(meta["uid"])  # unmounted before the object goes, as upstream
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                "preconditions": {"uid": meta["uid"]}}
        try:
            await self.client.delete("", "v1", "pods", meta["name"], meta.get("namespace", ""), body=body)
        except ApiError as e:
            if e.code not in (404, 409):
                raise
        return None

    async def _teardown(self, key: str, st: PodState, node) -> None:
        self.states.pop(key, None)
        self.by_uid.pop(st.uid, None)
        self.backoff.forget_prefix(st.uid + "/")
        self.prober.forget(st.uid)
        if node is not None and st.sandbox is not None:
            await node.runtime.stop_pod_sandbox(st.sandbox.id)
            await node.runtime.remove_pod_sandbox(st.sandbox.id)

    # --- status ------------------------------------------------------------------------------------
    def build_status(self, pod: dict, node, st: PodState, terminal: bool = False) -> dict:
        spec, old = pod.get("spec") or {}, _known_status(pod, st)
        rt = node.runtime.name
        init = [container_status(c, st.views.get(c["name"]) or ContainerView(c["name"]), rt)
                for c in spec.get("initContainers") or ()]
        main = [container_status(c, st.views.get(c["name"]) or ContainerView(c["name"]), rt)
                for c in spec.get("containers") or ()]
        phase = "Failed" if st.init_failed else pod_phase(pod, main, st.init_done, terminal)
        sandbox_ready = st.sandbox is not None and st.sandbox.ready and not terminal
        conds = pod_conditions(pod, phase, sandbox_ready, init, main)
        status = {
            "phase": phase,
            "conditions": with_transition_times(conds, old.get("conditions"), rfc3339()),
            "hostIP": node.host_ip,
            "hostIPs": [{"ip": node.host_ip}],
            "startTime": old.get("startTime") or st.start_time,
            "containerStatuses": main,
        }
        if st.sandbox is not None:
            status["podIP"] = st.sandbox.ip
            status["podIPs"] = [{"ip": st.sandbox.ip}]
        if init:
            status["initContainerStatuses"] = init
        if old.get("qosClass"):
            status["qosClass"] = old["qosClass"]
        return status

    async def _post(self, pod: dict, node, st: PodState, terminal: bool = False) -> None:
        await self._write_status(pod, st, self.build_status(pod, node, st, terminal))

    async def _write_status(self, pod: dict, st: PodState, status: dict) -> None:
        old = _known_status(pod, st)
        if all(old.get(k) == v for k, v in status.items()):
            return  # a sync woken by the event of the kubelet's own write has nothing new to say
        meta = pod["metadata"]
        try:
            out = await self.client.patch("", "v1", "pods", meta["name"],
                                          {"metadata": {"uid": meta["uid"]}, "status": status},
                                          meta.get("namespace", ""), subresource="status")
        except ApiError as e:
            if e.code != 404:
                raise
            return
        rv = _rv(out)
        if rv > st.written_rv:
            st.written, st.written_rv = out.get("status") or {}, rv


def _rv(obj: dict) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _known_status(pod: dict, st: PodState | None) -> dict:
    """The pod's status as it is now on the server as far as this kubelet knows: the informer's copy,
    unless that is older than the kubelet's own last write."""
    if st is not None and st.written is not None and _rv(pod) < st.written_rv:
        return st.written
    return pod.get("status") or {}


class _Slot:
    """One place of a semaphore (or none), given back at most once."""

    def __init__(self, sem: asyncio.Semaphore | None):
        self.sem, self.held = sem, False

    async def take(self) -> None:
        if self.sem is not None:
            await self.sem.acquire()
            self.held = True

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self.sem.release()


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _duration(seconds: float) -> str:
    """Go's time.Duration text for whole seconds: 10s, 1m20s, 5m0s."""
    s = int(seconds)
    return f"{s}s" if s < 60 else f"{s // 60}m{s % 60}s"


