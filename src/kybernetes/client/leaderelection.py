"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's `leaderelection`.

A candidate tries every `retry_period` to take the Lease: it may when the Lease does
not exist, is already its own, or its record has not changed for `lease_duration`
seconds of the candidate's own clock (skew-free: the holder's timestamps are never
compared with the local clock). Writes are compare-and-swap on resourceVersion. The
leader renews every `retry_period`; if it cannot renew for `renew_deadline` seconds
it stops leading. On a clean stop it releases the Lease so a successor need not wait.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from ..api.meta import rfc3339_micro
from .rest import ApiError, RESTClient

log = logging.getLogger("kybernetes.leaderelection")


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


class LeaderElector:
    def __init__(self, client: RESTClient, namespace: str, name: str, identity: str | None = None,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0, retry_period: float = 2.0,
                 release_on_cancel: bool = True, clock: Callable[[], float] = time.monotonic):
        self.client = client
        self.namespace, self.name = namespace, name
        self.identity = identity or default_identity()
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self.release_on_cancel = release_on_cancel
        self.clock = clock
        self._observed: dict | None = None  # last Lease seen
        self._observed_record: tuple | None = None
        self._observed_at = 0.0
        self.leading = False

    # --- one attempt ----------------------------------------------------------------------------
    def _spec(self, old: dict | None, now: str) -> dict:
        old = old or {}
        mine = old.get("holderIdentity") == self.identity
        transitions = int(old.get("leaseTransitions") or 0)
        if old.get("holderIdentity") and not mine:
            transitions += 1
        return {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                "acquireTime": old.get("acquireTime") if mine and old.get("acquireTime") else now,
                "renewTime": now, "leaseTransitions": transitions}

    def _observe(self, lease: dict) -> None:
        spec = lease.get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("acquireTime"),
                  spec.get("leaseTransitions"), spec.get("leaseDurationSeconds"))
        if record != self._observed_record:
            self._observed_record = record
            self._observed_at = self.clock()
        self._observed = lease

    async def try_acquire_or_renew(self) -> bool:
        now = rfc3339_micro()
        try:
            lease = await self.client.get("coordination.k8s.io", "v1", "leases", self.name, self.namespace)
        except ApiError as e:
            if e.code != 404:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": self._spec(None, now)}
            try:
                created = await self.client.create("coordination.k8s.io", "v1", "leases", body, self.namespace)
            except ApiError as e2:
                if e2.code == 409:
                    return False
                raise
            self._observe(created)
            return True
        self._observe(lease)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        if holder and holder != self.identity and self._observed_at + duration > self.clock():
            return False
        lease["spec"] = {**spec, **self._spec(spec, now)}
        try:
            updated = await self.client.update("coordination.k8s.io", "v1", "leases", lease, self.namespace)
        except ApiError as e:
            if e.code == 409:
                return False
            raise
        self._observe(updated)
        return True

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except Exception as e:  # noqa: BLE001 - any failure is one failed attempt
            log.warning("lease %s/%s: %s", self.namespace, self.name, e)
            return False

    async def release(self) -> None:
        lease = self._observed
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        now = rfc3339_micro()
        lease["spec"] = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1,
                         "renewTime": now, "acquireTime": now}
        try:
            await self.client.update("coordination.k8s.io", "v1", "leases", lease, self.namespace)
        except Exception as e:  # noqa: BLE001
            log.info("lease %s/%s: release failed: %s", self.namespace, self.name, e)

    # --- the loop ---------------------------------------------------------------------------------
    async def _sleep(self, stop: asyncio.Event, seconds: float) -> bool:
        """Sleep; True if stop was set meanwhile."""
        try:
            await asyncio.wait_for(stop.wait(), seconds)
            return True
        except TimeoutError:
            return stop.is_set()

    async def run(self, stop: asyncio.Event, on_started_leading: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        """Acquire, lead (running `on_started_leading(leader_stop)`), renew; return once stopped or lost."""
        while not await self._attempt():
            if await self._sleep(stop, self.retry_period):
                return
        self.leading = True
        log.info("%s became leader of lease %s/%s", self.identity, self.namespace, self.name)
        leader_stop = asyncio.Event()
        task = asyncio.create_task(on_started_leading(leader_stop))
        last_renew = self.clock()
        lost = False
        try:
            while True:
                if await self._sleep(stop, self.retry_period) or task.done():
                    break
                if await self._attempt():
                    last_renew = self.clock()
                elif self.clock() - last_renew >= self.renew_deadline:
                    log.warning("%s lost lease %s/%s", self.identity, self.namespace, self.name)
                    lost = True
                    break
        finally:
            self.leading = False
            leader_stop.set()
            await asyncio.gather(task, return_exceptions=True)
            if not lost and self.release_on_cancel:
                await self.release()
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()
