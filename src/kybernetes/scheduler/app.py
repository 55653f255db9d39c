"""The scheduler as a component: leader election on a Lease, then the scheduling loop."""

from __future__ import annotations

import asyncio

from ..client.leaderelection import LeaderElector
from ..client.rest import RESTClient, wait_for_server
from .scheduler import run_scheduler


async def run_scheduler_component(client: RESTClient, stop: asyncio.Event, name: str = "default-scheduler",
                                  leader_elect: bool = True) -> None:
    """Schedule pods of `schedulerName: name` while holding the Lease kube-system/<name>.

    Only one replica of a scheduler acts at a time, as upstream's; the default scheduler's
    Lease is `kube-scheduler`, a second scheduler uses its own name.
    """
    await wait_for_server(client)
    if not leader_elect:
        await run_scheduler(client, stop, name)
        return
    lease = "kube-scheduler" if name == "default-scheduler" else name
    elector = LeaderElector(client, "kube-system", lease)
    while not stop.is_set():
        await elector.run(stop, lambda leading: run_scheduler(client, leading, name))
