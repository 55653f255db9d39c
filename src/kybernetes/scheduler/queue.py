"""The scheduling queue: activeQ (sorted by the QueueSort plugin), backoffQ and the unschedulable pool.

A pod that failed waits in the unschedulable pool until a cluster event that could make it fit
(`move_all_to_active_or_backoff`), or at most five minutes; from there it goes to backoffQ while its
per-pod backoff (1 s doubling to 10 s) runs, then to activeQ. The clock is injectable.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .framework import Status
from .resources import pod_key

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_IN_UNSCHEDULABLE = 300.0

ALL = None
# Which plugins' rejections an event may resolve (upstream's EventsToRegister, coarsely).
EVENT_PLUGINS: dict[str, set[str] | None] = {
    "NodeAdd": ALL,
    "NodeUpdate": ALL,
    "AssignedPodDelete": {"NodeResourcesFit", "NodePorts", "InterPodAffinity", "PodTopologySpread",
                          "DefaultPreemption", "VolumeBinding"},
    "AssignedPodAdd": {"InterPodAffinity", "PodTopologySpread"},
    "AssignedPodUpdate": {"InterPodAffinity", "PodTopologySpread"},
    "AssignedPodScaleDown": {"NodeResourcesFit"},
    "PvcChange": {"VolumeBinding"},
    "PvChange": {"VolumeBinding"},
    "StorageClassChange": {"VolumeBinding"},
    "UnschedulableTimeout": ALL,
    "ForceActivate": ALL,
}


@dataclass
class QueuedPodInfo:
    pod: dict
    timestamp: float  # when it last entered the queue; PrioritySort orders by it
    attempts: int = 0
    initial_attempt_timestamp: float | None = None
    unschedulable_plugins: set[str] = field(default_factory=set)
    gated_by: Status | None = None

    @property
    def key(self) -> str:
        return pod_key(self.pod)


class _Entry:
    __slots__ = ("qpi", "less", "seq")

    def __init__(self, qpi: QueuedPodInfo, less, seq: int):
        self.qpi, self.less, self.seq = qpi, less, seq

    def __lt__(self, other: _Entry) -> bool:
        if self.less(self.qpi, other.qpi):
            return True
        if self.less(other.qpi, self.qpi):
            return False
        return self.seq < other.seq


def _significant(pod: dict) -> tuple:
    """What a pod update must change to be worth another try (not status, not resourceVersion)."""
    meta = pod.get("metadata") or {}
    return (pod.get("spec"), meta.get("labels"), meta.get("annotations"))


class SchedulingQueue:
    def __init__(self, less: Callable[[QueuedPodInfo, QueuedPodInfo], bool],
                 pre_enqueue: Callable[[dict], Status] | None = None, clock: Callable[[], float] = time.monotonic,
                 initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF,
                 max_in_unschedulable: float = MAX_IN_UNSCHEDULABLE):
        self.less = less
        self.pre_enqueue = pre_enqueue
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_in_unschedulable = max_in_unschedulable
        self._seq = itertools.count()
        self.active: list[_Entry] = []
        self.backoff: list[tuple[float, int, QueuedPodInfo]] = []
        self.unschedulable: dict[str, tuple[QueuedPodInfo, float]] = {}
        self.gated: dict[str, QueuedPodInfo] = {}
        self.in_flight: dict[str, QueuedPodInfo] = {}
        self._where: dict[str, str] = {}  # key -> active | backoff | unschedulable | gated
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self._moves: list[tuple[int, set[str] | None]] = []  # (cycle, interested plugins) of recent events
        self.nominated: dict[str, tuple[dict, str]] = {}  # pod key -> (pod, node)
        self._wake = asyncio.Event()

    # --- bookkeeping ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._where)

    def where(self, key: str) -> str:
        return self._where.get(key, "in-flight" if key in self.in_flight else "")

    def backoff_duration(self, qpi: QueuedPodInfo) -> float:
        d = self.initial_backoff
        for _ in range(1, qpi.attempts):
            d *= 2
            if d >= self.max_backoff:
                return self.max_backoff
        return min(d, self.max_backoff)

    def backoff_expiry(self, qpi: QueuedPodInfo) -> float:
        return qpi.timestamp + self.backoff_duration(qpi)

    def is_backing_off(self, qpi: QueuedPodInfo) -> bool:
        return qpi.attempts > 0 and self.backoff_expiry(qpi) > self.clock()

    def _push_active(self, qpi: QueuedPodInfo) -> None:
        if self.pre_enqueue is not None:
            s = self.pre_enqueue(qpi.pod)
            if not s.is_success():
                qpi.gated_by = s
                self.gated[qpi.key] = qpi
                self._where[qpi.key] = "gated"
                return
        qpi.gated_by = None
        heapq.heappush(self.active, _Entry(qpi, self.less, next(self._seq)))
        self._where[qpi.key] = "active"
        self._wake.set()

    def _push_backoff(self, qpi: QueuedPodInfo) -> None:
        heapq.heappush(self.backoff, (self.backoff_expiry(qpi), next(self._seq), qpi))
        self._where[qpi.key] = "backoff"
        self._wake.set()

    def _discard(self, key: str) -> QueuedPodInfo | None:
        where = self._where.pop(key, None)
        if where == "active":
            for i, e in enumerate(self.active):
                if e.qpi.key == key:
                    self.active.pop(i)
                    heapq.heapify(self.active)
                    return e.qpi
        elif where == "backoff":
            for i, (_, _, q) in enumerate(self.backoff):
                if q.key == key:
                    self.backoff.pop(i)
                    heapq.heapify(self.backoff)
                    return q
        elif where == "unschedulable":
            return self.unschedulable.pop(key)[0]
        elif where == "gated":
            return self.gated.pop(key)
        return None

    # --- pod events -------------------------------------------------------------------------------
    def add(self, pod: dict) -> None:
        key = pod_key(pod)
        self._nominate(pod)
        if key in self._where or key in self.in_flight:
            self.update(pod, pod)
            return
        self._push_active(QueuedPodInfo(pod, self.clock()))

    def update(self, old: dict | None, new: dict) -> None:
        key = pod_key(new)
        self._nominate(new)
        where = self._where.get(key)
        if where is None:
            if key in self.in_flight:
                self.in_flight[key].pod = new
            else:
                self._push_active(QueuedPodInfo(new, self.clock()))
            return
        since = self.unschedulable[key][1] if where == "unschedulable" else self.clock()
        qpi = self._discard(key)
        qpi.pod = new
        changed = old is None or _significant(old) != _significant(new)
        if where == "unschedulable" and changed:
            if self.is_backing_off(qpi):
                self._push_backoff(qpi)
            else:
                self._push_active(qpi)
        elif where == "unschedulable":
            self.unschedulable[key] = (qpi, since)
            self._where[key] = "unschedulable"
        elif where == "backoff":
            self._push_backoff(qpi)
        else:
            self._push_active(qpi)

    def delete(self, pod: dict) -> None:
        key = pod_key(pod)
        self._discard(key)
        self.in_flight.pop(key, None)
        self.nominated.pop(key, None)

    # --- the scheduling loop side -----------------------------------------------------------------
    def pop_nowait(self) -> QueuedPodInfo | None:
        self.flush()
        if not self.active:
            return None
        qpi = heapq.heappop(self.active).qpi
        self._where.pop(qpi.key, None)
        qpi.attempts += 1
        if qpi.initial_attempt_timestamp is None:
            qpi.initial_attempt_timestamp = self.clock()
        self.scheduling_cycle += 1
        self.in_flight[qpi.key] = qpi
        return qpi

    async def pop(self, stop: asyncio.Event) -> QueuedPodInfo | None:
        while not stop.is_set():
            qpi = self.pop_nowait()
            if qpi is not None:
                return qpi
            self._wake.clear()
            timeout = 1.0
            if self.backoff:
                timeout = max(0.01, min(timeout, self.backoff[0][0] - self.clock()))
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({waiter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                stopper.cancel()
        return None

    def done(self, key: str) -> None:
        self.in_flight.pop(key, None)

    def add_unschedulable(self, qpi: QueuedPodInfo, cycle: int | None = None) -> None:
        """A pod that failed this cycle: to backoffQ if something moved meanwhile (or it errored),
        else to the unschedulable pool."""
        key = qpi.key
        self.in_flight.pop(key, None)
        if key in self._where:
            return
        qpi.timestamp = self.clock()
        cycle = self.scheduling_cycle if cycle is None else cycle
        if not qpi.unschedulable_plugins or self._moved_since(cycle, qpi.unschedulable_plugins):
            self._push_backoff(qpi)
        else:
            self.unschedulable[key] = (qpi, qpi.timestamp)
            self._where[key] = "unschedulable"

    def move_all_to_active_or_backoff(self, event: str) -> int:
        interested = EVENT_PLUGINS.get(event, ALL)
        moved = 0
        for key, (qpi, _) in list(self.unschedulable.items()):
            if interested is not ALL and qpi.unschedulable_plugins and not (qpi.unschedulable_plugins & interested):
                continue
            self._discard(key)
            if self.is_backing_off(qpi):
                self._push_backoff(qpi)
            else:
                self._push_active(qpi)
            moved += 1
        self.move_request_cycle = self.scheduling_cycle
        if self.in_flight:
            self._moves.append((self.scheduling_cycle, interested))
            del self._moves[:-1000]
        else:
            self._moves.clear()
        return moved

    def _moved_since(self, cycle: int, plugins: set[str]) -> bool:
        """Whether an event that may help a pod rejected by `plugins` came while it was in flight."""
        return any(c >= cycle and (i is ALL or plugins & i) for c, i in self._moves)

    def activate_gated(self) -> None:
        """Re-run PreEnqueue for gated pods (their spec may have lost its gates)."""
        for key in list(self.gated):
            self._push_active(self._discard(key))

    def flush(self) -> None:
        now = self.clock()
        while self.backoff and self.backoff[0][0] <= now:
            _, _, qpi = heapq.heappop(self.backoff)
            self._where.pop(qpi.key, None)
            self._push_active(qpi)
        for key, (qpi, since) in list(self.unschedulable.items()):
            if now - since > self.max_in_unschedulable:
                self._discard(key)
                if self.is_backing_off(qpi):
                    self._push_backoff(qpi)
                else:
                    self._push_active(qpi)

    # --- nominated pods (pods that preempted and wait for room on a node) -------------------------
    def _nominate(self, pod: dict) -> None:
        node = (pod.get("status") or {}).get("nominatedNodeName")
        key = pod_key(pod)
        if node:
            self.nominated[key] = (pod, node)
        else:
            self.nominated.pop(key, None)

    def add_nominated(self, pod: dict, node: str) -> None:
        if node:
            self.nominated[pod_key(pod)] = (pod, node)
        else:
            self.nominated.pop(pod_key(pod), None)

    def delete_nominated(self, pod: dict) -> None:
        self.nominated.pop(pod_key(pod), None)

    def nominated_pods(self, node: str) -> list[dict]:
        return [p for p, n in self.nominated.values() if n == node]
