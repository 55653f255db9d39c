"""Objects every cluster starts with, created on each start when missing.

The four system namespaces, the two system PriorityClasses and the `kubernetes`
Service in `default` (first address of the service range) with its Endpoints and
EndpointSlice pointing at this API server, as upstream's bootstrap controller keeps them.
As k3s does, also the default StorageClass `local-path` of the built-in local-path
provisioner and its `local-path-config` ConfigMap (volumes under DATA_DIR/storage).
"""

from __future__ import annotations

import ipaddress
import json
import logging

from ..api import errors
from .store import WriteContext

log = logging.getLogger("kybernetes.bootstrap")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
SYSTEM_PRIORITY_CLASSES = (
    ("system-node-critical", 2000001000, "Used for system critical pods that must not be moved from their current node."),
    ("system-cluster-critical", 2000000000, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
)


async def _ensure(server, group: str, version: str, plural: str, namespace: str, obj: dict) -> None:
    rt = server.index.get(group, version, plural)
    name = obj["metadata"]["name"]
    if await server.store.get_or_none(rt, namespace, name) is not None:
        return
    try:
        await server.store.create(rt, namespace, obj, WriteContext(user="system:apiserver", field_manager="kube-apiserver"))
    except errors.StatusError as e:
        if e.code != 409:
            raise


def apiserver_ip(server) -> str:
    addr = server.config.advertise_address or server.config.bind_address
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return "127.0.0.1"
    return "127.0.0.1" if ip.is_unspecified else str(ip)


async def ensure_defaults(server) -> None:
    for ns in SYSTEM_NAMESPACES:
        await _ensure(server, "", "v1", "namespaces", "", {"metadata": {"name": ns}})
    for name, value, description in SYSTEM_PRIORITY_CLASSES:
        await _ensure(server, "scheduling.k8s.io", "v1", "priorityclasses", "", {
            "metadata": {"name": name}, "value": value, "description": description,
            "preemptionPolicy": "PreemptLowerPriority", "globalDefault": False})
    network = ipaddress.ip_network(server.config.service_cidr)
    first_ip = str(network.network_address + 1)
    port = server.bound_port or server.config.port
    await _ensure(server, "", "v1", "services", "default", {
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": first_ip, "clusterIPs": [first_ip], "type": "ClusterIP", "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}})
    ip = apiserver_ip(server)
    await _ensure(server, "", "v1", "endpoints", "default", {
        "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]})
    await _ensure(server, "discovery.k8s.io", "v1", "endpointslices", "default", {
        "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes",
                                                     "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}]})
    await ensure_local_path_storage(server)


LOCAL_PATH_PROVISIONER = "rancher.io/local-path"


async def ensure_local_path_storage(server) -> None:
    await _ensure(server, "storage.k8s.io", "v1", "storageclasses", "", {
        "metadata": {"name": "local-path", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER, "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": False})
    paths = {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES",
                              "paths": [str(server.config.data_dir.resolve() / "storage")]}]}
    await _ensure(server, "", "v1", "configmaps", "kube-system", {
        "metadata": {"name": "local-path-config"}, "data": {"config.json": json.dumps(paths, indent=2)}})
