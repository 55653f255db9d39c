"""A work queue with client-go's semantics, and per-item exponential backoff.

An item queued twice before a worker takes it is processed once; an item is never held
by two workers; an item added while being processed is queued again when `done` is
called. The clock is injectable so backoff tests take no wall time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Hashable


class ItemExponentialBackoff:
    """base * 2^failures per item, capped (client-go: 5 ms to 1000 s)."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0):
        self.base, self.cap = base, cap
        self.failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        n = self.failures.get(item, 0)
        self.failures[item] = n + 1
        return min(self.cap, self.base * (2 ** n))

    def forget(self, item: Hashable) -> None:
        self.failures.pop(item, None)

    def retries(self, item: Hashable) -> int:
        return self.failures.get(item, 0)


class WorkQueue:
    def __init__(self, backoff: ItemExponentialBackoff | None = None, clock: Callable[[], float] = time.monotonic):
        self.backoff = backoff or ItemExponentialBackoff()
        self.clock = clock
        self._queue: list[Hashable] = []
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._waiting: list[tuple[float, int, Hashable]] = []
        self._seq = itertools.count()
        self._cond = asyncio.Condition()
        self._shutdown = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, item: Hashable) -> None:
        if self._shutdown or item in self._dirty:
            return
        self._dirty.add(item)
        if item not in self._processing:
            self._queue.append(item)
            self._notify()

    def add_after(self, item: Hashable, delay: float) -> None:
        if delay <= 0:
            self.add(item)
            return
        heapq.heappush(self._waiting, (self.clock() + delay, next(self._seq), item))
        self._notify()

    def add_rate_limited(self, item: Hashable) -> None:
        self.add_after(item, self.backoff.when(item))

    def forget(self, item: Hashable) -> None:
        self.backoff.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return self.backoff.retries(item)

    def _notify(self) -> None:
        async def wake():
            async with self._cond:
                self._cond.notify_all()
        try:
            asyncio.get_running_loop().create_task(wake())
        except RuntimeError:
            pass

    def _promote(self) -> float | None:
        """Move due delayed items into the queue; the seconds until the next one is due."""
        now = self.clock()
        while self._waiting and self._waiting[0][0] <= now:
            _, _, item = heapq.heappop(self._waiting)
            self.add(item)
        return self._waiting[0][0] - now if self._waiting else None

    async def get(self) -> Hashable | None:
        """The next item, or None once shut down."""
        async with self._cond:
            while True:
                wait = self._promote()
                if self._queue:
                    item = self._queue.pop(0)
                    self._processing.add(item)
                    self._dirty.discard(item)
                    return item
                if self._shutdown:
                    return None
                try:
                    await asyncio.wait_for(self._cond.wait(), timeout=wait)
                except TimeoutError:
                    pass

    def done(self, item: Hashable) -> None:
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
            self._notify()

    def shutdown(self) -> None:
        self._shutdown = True
        self._notify()
