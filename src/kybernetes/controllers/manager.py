"""The controller manager: runs the enabled controllers over shared informers."""

from __future__ import annotations

import asyncio
import logging

from ..client.factory import InformerFactory
from ..client.rest import RESTClient, wait_for_server
from .base import ControllerContext
from .garbagecollector import GarbageCollector
from .namespace import NamespaceController

log = logging.getLogger("kybernetes.controller-manager")

CONTROLLERS = {
    "namespace": NamespaceController,
    "garbage-collector": GarbageCollector,
}


async def run_controller_manager(client: RESTClient, stop: asyncio.Event, enabled: list[str] | None = None) -> None:
    await wait_for_server(client)
    factory = InformerFactory(client)
    ctx = ControllerContext(client, factory)
    names = enabled or list(CONTROLLERS)
    controllers = [CONTROLLERS[n](ctx) for n in names]
    factory.start(stop)
    log.info("controllers running: %s", ", ".join(names))
    try:
        await asyncio.gather(*(c.run(stop) for c in controllers))
    finally:
        await factory.join()
