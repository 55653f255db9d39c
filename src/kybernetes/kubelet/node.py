"""The Node object an agent registers and the status it reports (upstream kubelet_node_status.go)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..api.meta import rfc3339
from ..client.rest import ApiError, RESTClient

KUBELET_VERSION = "v1.32.0-kyb"
SIM_LABEL = "node.kybernetes.io/sim"
HEARTBEAT_ANNOTATION = "sim.kybernetes.io/heartbeat"

SIM_CAPACITY = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}

# (type, status, reason, message) of a healthy node, in upstream's order
HEALTHY = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


@dataclass
class NodeHandle:
    """What the agent keeps per node it runs."""
    name: str
    host_ip: str
    runtime: object
    labels: dict = field(default_factory=dict)
    capacity: dict = field(default_factory=lambda: dict(SIM_CAPACITY))
    os_image: str = "kybernetes simulated node"
    reachable: bool = True
    uid: str = ""
    api_node: dict | None = None  # the Node as last seen by the informer
    lease: dict | None = None
    last_status_post: float = 0.0
    kubelet_port: int = 10250  # status.daemonEndpoints.kubeletEndpoint.Port
    annotations: dict = field(default_factory=dict)  # e.g. kubelet.kybernetes.io/address for sim nodes


def sim_node_ip(index: int) -> str:
    """A private address per simulated node (172.31.0.0/16); nothing is ever sent to it."""
    return f"172.31.{(index // 254) % 256}.{index % 254 + 1}"


def node_labels(name: str, extra: dict | None = None) -> dict:
    return {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", **(extra or {})}


def node_object(h: NodeHandle) -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": h.name, "labels": dict(h.labels),
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0", **h.annotations}},
            "spec": {}}


def node_status(h: NodeHandle, runtime_name: str, runtime_version: str) -> dict:
    now = rfc3339()
    old = {c.get("type"): c for c in ((h.api_node or {}).get("status") or {}).get("conditions") or ()}
    conditions = []
    for kind, status, reason, message in HEALTHY:
        prev = old.get(kind) or {}
        since = prev.get("lastTransitionTime") if prev.get("status") == status else None
        conditions.append({"type": kind, "status": status, "reason": reason, "message": message,
                           "lastHeartbeatTime": now, "lastTransitionTime": since or now})
    machine = hashlib.md5(h.name.encode()).hexdigest()  # noqa: S324 - an identifier, not security
    return {
        "capacity": dict(h.capacity),
        "allocatable": dict(h.capacity),
        "conditions": conditions,
        "addresses": [{"type": "InternalIP", "address": h.host_ip}, {"type": "Hostname", "address": h.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": h.kubelet_port}},
        "nodeInfo": {"machineID": machine, "systemUUID": machine, "bootID": machine[::-1],
                     "kernelVersion": "6.1.0-sim", "osImage": h.os_image,
                     "containerRuntimeVersion": f"{runtime_name}://{runtime_version}",
                     "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                     "operatingSystem": "linux", "architecture": "amd64"},
    }


def status_outdated(h: NodeHandle) -> bool:
    """Does the API hold a status other than the one this agent reports (or none)?"""
    api = (h.api_node or {}).get("status") or {}
    have = {c.get("type"): (c.get("status"), c.get("reason")) for c in api.get("conditions") or ()}
    for kind, status, reason, _ in HEALTHY:
        if have.get(kind) != (status, reason):
            return True
    port = ((api.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    return api.get("capacity") != h.capacity or not api.get("addresses") or port != h.kubelet_port


async def register_node(client: RESTClient, h: NodeHandle) -> dict:
    """Create the Node (or adopt an existing one of that name), as the kubelet's registerWithAPIServer."""
    try:
        node = await client.create("", "v1", "nodes", node_object(h))
    except ApiError as e:
        if e.code != 409:
            raise
        meta = {"labels": h.labels, **({"annotations": h.annotations} if h.annotations else {})}
        node = await client.patch("", "v1", "nodes", h.name, {"metadata": meta})
    h.uid = node["metadata"]["uid"]
    if h.api_node is None:
        h.api_node = node
    return node


async def post_node_status(client: RESTClient, h: NodeHandle, now: float) -> None:
    status = node_status(h, h.runtime.name, h.runtime.version)
    node = await client.patch("", "v1", "nodes", h.name, {"status": status}, subresource="status")
    h.api_node = node
    h.last_status_post = now
