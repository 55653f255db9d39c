"""Printers for core/v1 kinds other than Pod."""

from __future__ import annotations

import datetime

from .common import (
    CONTAINERS_DESC,
    IMAGES_DESC,
    NONE,
    UNKNOWN,
    UNSET,
    age,
    age_col,
    col,
    container_cells,
    created_at_col,
    format_labels,
    get,
    list_with_more,
    name_col,
    name_of,
    quantity,
    rfc3339,
    since,
)

# ---- Namespace / Node -------------------------------------------------------------------------

NAMESPACE_COLUMNS = [name_col(), col("Status", description="The status of the namespace"), age_col()]


def print_namespace(obj: dict, now: datetime.datetime) -> list:
    return [name_of(obj), get(obj, "status", "phase", default=""), age(obj, now)]


NODE_COLUMNS = [
    name_col(),
    col("Status", description="The status of the node"),
    col("Roles", description="The roles of the node"),
    age_col(),
    col("Version", description="Kubelet Version reported by the node."),
    col("Internal-IP", priority=1, description="List of addresses reachable to the node."),
    col("External-IP", priority=1, description="List of addresses reachable to the node."),
    col("OS-Image", priority=1, description="OS Image reported by the node from /etc/os-release."),
    col("Kernel-Version", priority=1, description="Kernel Version reported by the node from 'uname -r'."),
    col("Container-Runtime", priority=1, description="ContainerRuntime Version reported by the node."),
]

ROLE_PREFIX = "node-role.kubernetes.io/"


def node_roles(labels: dict) -> str:
    roles = set()
    for k, v in (labels or {}).items():
        if k.startswith(ROLE_PREFIX):
            role = k[len(ROLE_PREFIX) :]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(roles)) or NONE


def node_status(obj: dict) -> str:
    out = []
    for c in get(obj, "status", "conditions", default=[]):
        if c.get("type") == "Ready":
            out.append("Ready" if c.get("status") == "True" else "NotReady")
            break
    if not out:
        out.append("Unknown")
    if get(obj, "spec", "unschedulable"):
        out.append("SchedulingDisabled")
    return ",".join(out)


def _node_address(obj: dict, kind: str) -> str:
    for a in get(obj, "status", "addresses", default=[]):
        if a.get("type") == kind:
            return a.get("address", "")
    return NONE


def print_node(obj: dict, now: datetime.datetime) -> list:
    info = get(obj, "status", "nodeInfo", default={})
    return [
        name_of(obj),
        node_status(obj),
        node_roles(get(obj, "metadata", "labels", default={})),
        age(obj, now),
        info.get("kubeletVersion", ""),
        _node_address(obj, "InternalIP"),
        _node_address(obj, "ExternalIP"),
        info.get("osImage") or UNKNOWN,
        info.get("kernelVersion") or UNKNOWN,
        info.get("containerRuntimeVersion") or UNKNOWN,
    ]


# ---- Service / Endpoints ----------------------------------------------------------------------

SERVICE_COLUMNS = [
    name_col(),
    col("Type", description="type determines how the Service is exposed."),
    col("Cluster-IP", description="clusterIP is the IP address of the service."),
    col("External-IP", description="externalIPs is a list of IP addresses for which nodes will accept traffic."),
    col("Port(s)", description="The list of ports that are exposed by this service."),
    age_col(),
    col("Selector", priority=1, description="Route service traffic to pods with label keys and values matching."),
]


def lb_status(lb: dict | None) -> str:
    out = []
    for ing in get(lb, "ingress", default=[]):
        if ing.get("ip"):
            out.append(ing["ip"])
        elif ing.get("hostname"):
            out.append(ing["hostname"])
    return ",".join(out)


def service_external_ip(svc: dict) -> str:
    spec = svc.get("spec") or {}
    stype = spec.get("type") or "ClusterIP"
    ext = spec.get("externalIPs") or []
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(ext) if ext else NONE
    if stype == "LoadBalancer":
        lb = lb_status(get(svc, "status", "loadBalancer"))
        if ext:
            return ",".join(([*lb.split(",")] if lb else []) + ext)
        return lb or "<pending>"
    if stype == "ExternalName":
        return spec.get("externalName", "")
    return UNKNOWN


def service_ports(ports: list | None) -> str:
    out = []
    for p in ports or []:
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            out.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            out.append(f"{p.get('port')}/{proto}")
    return ",".join(out) or NONE


def print_service(obj: dict, now: datetime.datetime) -> list:
    spec = obj.get("spec") or {}
    return [
        name_of(obj),
        spec.get("type") or "ClusterIP",
        spec.get("clusterIP") or NONE,
        service_external_ip(obj),
        service_ports(spec.get("ports")),
        age(obj, now),
        format_labels(spec.get("selector")),
    ]


ENDPOINTS_COLUMNS = [
    name_col(),
    col("Endpoints", description="The set of all endpoints is the union of all subsets."),
    age_col(),
]


def _join_host_port(ip: str, port) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(obj: dict) -> str:
    subsets = obj.get("subsets") or []
    if not subsets:
        return NONE
    items: list[str] = []
    for ss in subsets:
        addrs = ss.get("addresses") or []
        ports = ss.get("ports") or []
        if not ports:
            items.extend(a.get("ip", "") for a in addrs)
        else:
            for p in ports:
                items.extend(_join_host_port(a.get("ip", ""), p.get("port")) for a in addrs)
    return list_with_more(items, 3)


def print_endpoints(obj: dict, now: datetime.datetime) -> list:
    return [name_of(obj), format_endpoints(obj), age(obj, now)]


# ---- Config / Secret / ServiceAccount ---------------------------------------------------------

CONFIGMAP_COLUMNS = [name_col(), col("Data", "integer", "Data contains the configuration data."), age_col()]


def print_configmap(obj: dict, now: datetime.datetime) -> list:
    return [name_of(obj), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), age(obj, now)]


SECRET_COLUMNS = [
    name_col(),
    col("Type", description="Used to facilitate programmatic handling of secret data."),
    col("Data", "integer", "Data contains the secret data."),
    age_col(),
]


def print_secret(obj: dict, now: datetime.datetime) -> list:
    n = len((obj.get("data") or {}).keys() | (obj.get("stringData") or {}).keys())
    return [name_of(obj), obj.get("type") or "Opaque", n, age(obj, now)]


SA_COLUMNS = [
    name_col(),
    col("Secrets", "integer", "Secrets is a list of the secrets used by this account."),
    age_col(),
]


def print_serviceaccount(obj: dict, now: datetime.datetime) -> list:
    return [name_of(obj), len(obj.get("secrets") or []), age(obj, now)]


# ---- Events -----------------------------------------------------------------------------------

EVENT_COLUMNS = [
    col("Last Seen", description="The time at which the most recent occurrence of this event was recorded."),
    col("Type", description="Type of this event (Normal, Warning), new types could be added in the future."),
    col("Reason", description="This should be a short, machine understandable string."),
    col("Object", description="The object that this event is about."),
    col("Subobject", priority=1, description="The field of the object this event is about."),
    col("Source", priority=1, description="The component reporting this event."),
    col("Message", description="A human-readable description of the status of this operation."),
    col("First Seen", priority=1, description="The time at which the event was first recorded."),
    col("Count", priority=1, description="The number of times this event has occurred."),
    col("Name", priority=1, description="Name of the event.", format_="name"),
]


def event_cells(ev: dict, now: datetime.datetime) -> list:
    """Cells for a core/v1-shaped event."""
    first = since(ev.get("firstTimestamp"), now)
    if not ev.get("firstTimestamp"):
        first = since(ev.get("eventTime"), now)
    last = since(ev.get("lastTimestamp"), now) if ev.get("lastTimestamp") else first
    count = ev.get("count") or 0
    series = ev.get("series")
    if series:
        last = since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1
    inv = ev.get("involvedObject") or {}
    kind = (inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    src = ev.get("source") or {}
    component = src.get("component") or ev.get("reportingComponent") or ""
    instance = src.get("host") or ev.get("reportingInstance") or ""
    source = f"{component}, {instance}" if instance else component
    return [
        last,
        ev.get("type", ""),
        ev.get("reason", ""),
        target,
        inv.get("fieldPath", ""),
        source,
        (ev.get("message") or "").strip(),
        first,
        int(count),
        name_of(ev),
    ]


def print_event(obj: dict, now: datetime.datetime) -> list:
    return event_cells(obj, now)


def print_events_v1(obj: dict, now: datetime.datetime) -> list:
    """events.k8s.io/v1 Event: map onto the core/v1 field names and print the same way."""
    core = {
        "metadata": obj.get("metadata") or {},
        "firstTimestamp": obj.get("deprecatedFirstTimestamp"),
        "lastTimestamp": obj.get("deprecatedLastTimestamp"),
        "count": obj.get("deprecatedCount"),
        "eventTime": obj.get("eventTime"),
        "series": obj.get("series"),
        "involvedObject": obj.get("regarding") or {},
        "source": obj.get("deprecatedSource") or {},
        "reportingComponent": obj.get("reportingController"),
        "reportingInstance": obj.get("reportingInstance"),
        "type": obj.get("type"),
        "reason": obj.get("reason"),
        "message": obj.get("note"),
    }
    return event_cells(core, now)


# ---- LimitRange / ResourceQuota ---------------------------------------------------------------

LIMITRANGE_COLUMNS = [name_col(), created_at_col()]


def print_created_at(obj: dict, now: datetime.datetime) -> list:
    return [name_of(obj), rfc3339(get(obj, "metadata", "creationTimestamp"))]


QUOTA_COLUMNS = [
    name_col(),
    age_col(),
    col("Request", description="Request represents a minimum amount of cpu/memory that a container may consume."),
    col("Limit", description="Limits control the maximum amount of cpu/memory that a container may use."),
]


def print_resourcequota(obj: dict, now: datetime.datetime) -> list:
    hard = get(obj, "status", "hard", default={})
    used = get(obj, "status", "used", default={})
    requests, limits = [], []
    for res in sorted(hard):
        target = limits if res.split(".")[0] == "limits" and "." in res else requests
        target.append(f"{res}: {quantity(used.get(res))}/{quantity(hard[res])}")
    return [name_of(obj), age(obj, now), ", ".join(requests), ", ".join(limits)]


# ---- PersistentVolume / Claim -----------------------------------------------------------------

_MODES = [("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP")]


def access_modes(modes: list | None) -> str:
    modes = modes or []
    return ",".join(short for full, short in _MODES if full in modes)


_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"

PV_COLUMNS = [
    name_col(),
    col("Capacity", description="capacity is the description of the persistent volume's resources and capacity."),
    col("Access Modes", description="accessModes contains all ways the volume can be mounted."),
    col("Reclaim Policy", description="What happens to a persistent volume when released from its claim."),
    col("Status", description="phase indicates if a volume is available, bound to a claim, or released by a claim."),
    col("Claim", description="Part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim."),
    col("StorageClass", description="StorageClass to which this persistent volume belongs."),
    col("VolumeAttributesClass", description="Name of VolumeAttributesClass to which this persistent volume belongs."),
    col("Reason", description="Reason is a brief CamelCase string that describes any failure."),
    age_col(),
    col(
        "VolumeMode",
        priority=1,
        description="volumeMode defines if a volume is intended to be used with a "
        "formatted filesystem or to remain in raw block state.",
    ),
]


def print_pv(obj: dict, now: datetime.datetime) -> list:
    spec = obj.get("spec") or {}
    ref = spec.get("claimRef")
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""
    phase = get(obj, "status", "phase", default="")
    if get(obj, "metadata", "deletionTimestamp"):
        phase = "Terminating"
    klass = get(obj, "metadata", "annotations", _BETA_CLASS) or spec.get("storageClassName") or ""
    return [
        name_of(obj),
        quantity(get(spec, "capacity", "storage")),
        access_modes(spec.get("accessModes")),
        spec.get("persistentVolumeReclaimPolicy", ""),
        phase,
        claim,
        klass,
        spec.get("volumeAttributesClassName") or UNSET,
        get(obj, "status", "reason", default=""),
        age(obj, now),
        spec.get("volumeMode") or UNSET,
    ]


PVC_COLUMNS = [
    name_col(),
    col("Status", description="phase represents the current phase of PersistentVolumeClaim."),
    col("Volume", description="volumeName is the binding reference to the PersistentVolume backing this claim."),
    col("Capacity", description="capacity represents the actual resources of the underlying volume."),
    col("Access Modes", description="accessModes contains the actual access modes the volume backing the PVC has."),
    col("StorageClass", description="storageClassName is the name of the StorageClass required by the claim."),
    col("VolumeAttributesClass", description="volumeAttributesClassName may be used to set the VolumeAttributesClass."),
    age_col(),
    col("VolumeMode", priority=1, description="volumeMode defines what type of volume is required by the claim."),
]


def print_pvc(obj: dict, now: datetime.datetime) -> list:
    spec = obj.get("spec") or {}
    phase = get(obj, "status", "phase", default="")
    if get(obj, "metadata", "deletionTimestamp"):
        phase = "Terminating"
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = access_modes(get(obj, "status", "accessModes"))
        capacity = quantity(get(obj, "status", "capacity", "storage"))
    klass = get(obj, "metadata", "annotations", _BETA_CLASS) or spec.get("storageClassName") or ""
    return [
        name_of(obj),
        phase,
        spec.get("volumeName", ""),
        capacity,
        modes,
        klass,
        spec.get("volumeAttributesClassName") or UNSET,
        age(obj, now),
        spec.get("volumeMode") or UNSET,
    ]


# ---- ReplicationController / PodTemplate ------------------------------------------------------

RC_COLUMNS = [
    name_col(),
    col("Desired", "integer", "Replicas is the number of desired replicas."),
    col("Current", "integer", "Replicas is the most recently observed number of replicas."),
    col("Ready", "integer", "The number of ready replicas for this replication controller."),
    age_col(),
    col("Containers", priority=1, description=CONTAINERS_DESC),
    col("Images", priority=1, description=IMAGES_DESC),
    col("Selector", priority=1, description="Selector is a label query over pods that should match the Replicas."),
]


def print_rc(obj: dict, now: datetime.datetime) -> list:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    names, images = container_cells(get(spec, "template", "spec"))
    desired = spec.get("replicas")
    return [
        name_of(obj),
        1 if desired is None else int(desired),
        int(status.get("replicas") or 0),
        int(status.get("readyReplicas") or 0),
        age(obj, now),
        names,
        images,
        format_labels(spec.get("selector")),
    ]


PODTEMPLATE_COLUMNS = [
    name_col(),
    col("Containers", description=CONTAINERS_DESC),
    col("Images", description=IMAGES_DESC),
    col("Pod Labels", description="The labels for the pod template."),
]


def print_podtemplate(obj: dict, now: datetime.datetime) -> list:
    names, images = container_cells(get(obj, "template", "spec"))
    return [name_of(obj), names, images, format_labels(get(obj, "template", "metadata", "labels"))]


PRINTERS = {
    ("", "Namespace"): (NAMESPACE_COLUMNS, print_namespace),
    ("", "Node"): (NODE_COLUMNS, print_node),
    ("", "Service"): (SERVICE_COLUMNS, print_service),
    ("", "Endpoints"): (ENDPOINTS_COLUMNS, print_endpoints),
    ("", "ConfigMap"): (CONFIGMAP_COLUMNS, print_configmap),
    ("", "Secret"): (SECRET_COLUMNS, print_secret),
    ("", "ServiceAccount"): (SA_COLUMNS, print_serviceaccount),
    ("", "Event"): (EVENT_COLUMNS, print_event),
    ("events.k8s.io", "Event"): (EVENT_COLUMNS, print_events_v1),
    ("", "LimitRange"): (LIMITRANGE_COLUMNS, print_created_at),
    ("", "ResourceQuota"): (QUOTA_COLUMNS, print_resourcequota),
    ("", "PersistentVolume"): (PV_COLUMNS, print_pv),
    ("", "PersistentVolumeClaim"): (PVC_COLUMNS, print_pvc),
    ("", "ReplicationController"): (RC_COLUMNS, print_rc),
    ("", "PodTemplate"): (PODTEMPLATE_COLUMNS, print_podtemplate),
}
