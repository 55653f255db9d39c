"""The controller manager: runs the enabled controllers over shared informers."""

from __future__ import annotations

import asyncio
import logging

from ..client.factory import InformerFactory
from ..client.leaderelection import LeaderElector
from ..client.rest import RESTClient, wait_for_server
from .base import ControllerContext
from .cronjob import CronJobController
from .daemonset import DaemonSetController
from .deployment import DeploymentController
from .disruption import DisruptionController
from .endpoints import EndpointsController
from .endpointslice import EndpointSliceController
from .garbagecollector import GarbageCollector
from .job import JobController
from .localpath import LocalPathProvisioner
from .namespace import NamespaceController
from .nodeipam import NodeIPAMController
from .nodelifecycle import NodeLifecycleController
from .persistentvolume import PersistentVolumeController
from .podgc import PodGCController
from .replicaset import ReplicaSetController
from .replicationcontroller import ReplicationManager
from .resourcequota import ResourceQuotaController
from .rootcacertpublisher import RootCACertPublisher
from .serviceaccount import ServiceAccountsController
from .servicelb import ServiceLBController
from .statefulset import StatefulSetController
from .ttlafterfinished import TTLAfterFinishedController
from .volumeprotection import PVCProtectionController, PVProtectionController

log = logging.getLogger("kybernetes.controller-manager")

CONTROLLERS = {
    "namespace": NamespaceController,
    "garbage-collector": GarbageCollector,
    "replicaset": ReplicaSetController,
    "replicationcontroller": ReplicationManager,
    "deployment": DeploymentController,
    "statefulset": StatefulSetController,
    "job": JobController,
    "cronjob": CronJobController,
    "daemonset": DaemonSetController,
    "ttl-after-finished": TTLAfterFinishedController,
    "node-ipam": NodeIPAMController,
    "node-lifecycle": NodeLifecycleController,
    "pod-garbage-collector": PodGCController,
    "endpoint": EndpointsController,
    "endpointslice": EndpointSliceController,
    "serviceaccount": ServiceAccountsController,
    "root-ca-cert-publisher": RootCACertPublisher,
    "persistentvolume-binder": PersistentVolumeController,
    "pvc-protection": PVCProtectionController,
    "pv-protection": PVProtectionController,
    "local-path-provisioner": LocalPathProvisioner,
    "resourcequota": ResourceQuotaController,
    "disruption": DisruptionController,
    "service-lb": ServiceLBController,
}


async def run_controller_manager(client: RESTClient, stop: asyncio.Event, enabled: list[str] | None = None,
                                 leader_elect: bool = True, options: dict | None = None) -> None:
    """Run the controllers while holding the Lease kube-system/kube-controller-manager.

    Losing the Lease stops every controller; the manager then campaigns again and starts
    them afresh (new informers) once it leads again.
    """
    await wait_for_server(client)
    if not leader_elect:
        await _run_controllers(client, stop, enabled, options)
        return
    elector = LeaderElector(client, "kube-system", "kube-controller-manager")
    while not stop.is_set():
        await elector.run(stop, lambda leading: _run_controllers(client, leading, enabled, options))


async def _run_controllers(client: RESTClient, stop: asyncio.Event, enabled: list[str] | None,
                           options: dict | None = None) -> None:
    factory = InformerFactory(client)
    ctx = ControllerContext(client, factory)
    ctx.options = options or {}  # controller flags (cluster CIDR, grace periods, ...) by option name
    names = enabled or list(CONTROLLERS)
    controllers = [CONTROLLERS[n](ctx) for n in names]
    factory.start(stop)
    log.info("controllers running: %s", ", ".join(names))
    try:
        await asyncio.gather(*(c.run(stop) for c in controllers))
    finally:
        await factory.join()
