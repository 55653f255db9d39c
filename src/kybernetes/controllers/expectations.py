"""Controller expectations (upstream `ControllerExpectations` + `UIDTrackingControllerExpectations`).

Before creating or deleting pods a controller records how many creations and which
deletions it expects to see through its informer; until they are observed (or five
minutes pass) the controller does not act on the count again, so a lagging cache
cannot make it create twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable

EXPECTATIONS_TIMEOUT = 300.0


class _Expectation:
    __slots__ = ("add", "deleting", "stamp")

    def __init__(self, add: int, deleting: set[str], stamp: float):
        self.add = add
        self.deleting = deleting
        self.stamp = stamp


class Expectations:
    def __init__(self, clock: Callable[[], float] = time.monotonic, timeout: float = EXPECTATIONS_TIMEOUT):
        self.clock = clock
        self.timeout = timeout
        self._items: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        exp = self._items.get(key)
        if exp is None:
            return True  # never set, or deleted: sync
        if exp.add <= 0 and not exp.deleting:
            return True
        return self.clock() - exp.stamp > self.timeout

    def expect_creations(self, key: str, count: int) -> None:
        self._items[key] = _Expectation(count, set(), self.clock())

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._items[key] = _Expectation(0, set(pod_keys), self.clock())

    def creation_observed(self, key: str, count: int = 1) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.add -= count

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.deleting.discard(pod_key)

    def delete(self, key: str) -> None:
        self._items.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        exp = self._items.get(key)
        return (exp.add, len(exp.deleting)) if exp else (0, 0)
