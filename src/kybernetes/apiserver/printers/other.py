"""Printers for networking, policy, rbac, storage, scheduling, coordination, discovery and misc kinds."""

from __future__ import annotations

import datetime

from .common import (
    NONE,
    age,
    age_col,
    col,
    created_at_col,
    format_label_selector,
    get,
    list_with_more,
    name_col,
    name_of,
    rfc3339,
)

LEASE_COLUMNS = [name_col(), col("Holder", description="The holder of the lease"), age_col()]


def print_lease(obj: dict, now: datetime.datetime) -> list:
    return [name_of(obj), get(obj, "spec", "holderIdentity", default=""), age(obj, now)]


INGRESS_COLUMNS = [
    name_col(),
    col("Class", description="The name of the IngressClass resource that should be used for ingress."),
    col("Hosts", description="Hosts that incoming requests are matched against before the ingress rule"),
    col("Address", description="Address is a list containing ingress points for the load-balancer"),
    col("Ports", description="Ports of TLS configurations that open"),
    age_col(),
]


def ingress_hosts(rules: list | None) -> str:
    rules = rules or []
    hosts: list[str] = []
    more = False
    for r in rules:
        if len(hosts) == 4:
            more = True
        if not more and r.get("host"):
            hosts.append(r["host"])
    if not hosts:
        return "*"
    ret = ",".join(hosts)
    return f"{ret} + {len(rules) - 4} more..." if more else ret


def print_ingress(obj: dict, now: datetime.datetime) -> list:
    spec = obj.get("spec") or {}
    addrs = []
    for ing in get(obj, "status", "loadBalancer", "ingress", default=[]):
        if ing.get("ip"):
            addrs.append(ing["ip"])
        elif ing.get("hostname"):
            addrs.append(ing["hostname"])
    return [
        name_of(obj),
        spec.get("ingressClassName") or NONE,
        ingress_hosts(spec.get("rules")),
        ",".join(addrs),
        "80, 443" if spec.get("tls") else "80",
        age(obj, now),
    ]


INGRESSCLASS_COLUMNS = [
    name_col(),
    col("Controller", description="Controller that is responsible for handling this class"),
    col("Parameters", description="A reference to a resource with additional parameters"),
    age_col(),
]


def print_ingressclass(obj: dict, now: datetime.datetime) -> list:
    params = get(obj, "spec", "parameters")
    text = NONE
    if params:
        text = params.get("kind", "")
        if params.get("apiGroup"):
            text += "." + params["apiGroup"]
        text += "/" + params.get("name", "")
    return [name_of(obj), get(obj, "spec", "controller", default=""), text, age(obj, now)]


NETPOL_COLUMNS = [
    name_col(),
    col("Pod-Selector", description="Selects the pods to which this NetworkPolicy object applies."),
    age_col(),
]


def print_networkpolicy(obj: dict, now: datetime.datetime) -> list:
    return [name_of(obj), format_label_selector(get(obj, "spec", "podSelector")), age(obj, now)]


PDB_COLUMNS = [
    name_col(),
    col("Min Available", description="The minimum number of pods that must be available."),
    col("Max Unavailable", description="The maximum number of pods that may be unavailable."),
    col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
    age_col(),
]


def print_pdb(obj: dict, now: datetime.datetime) -> list:
    spec = obj.get("spec") or {}
    mn = spec.get("minAvailable")
    mx = spec.get("maxUnavailable")
    return [
        name_of(obj),
        "N/A" if mn is None else str(mn),
        "N/A" if mx is None else str(mx),
        int(get(obj, "status", "disruptionsAllowed", default=0)),
        age(obj, now),
    ]


CREATED_AT_COLUMNS = [name_col(), created_at_col()]


def print_created_at(obj: dict, now: datetime.datetime) -> list:
    return [name_of(obj), rfc3339(get(obj, "metadata", "creationTimestamp"))]


BINDING_COLUMNS = [
    name_col(),
    col("Role", description="RoleRef references a Role or ClusterRole."),
    age_col(),
    col("Users", priority=1, description="Users in the roleBinding"),
    col("Groups", priority=1, description="Groups in the roleBinding"),
    col("ServiceAccounts", priority=1, description="ServiceAccounts in the roleBinding"),
]


def print_binding(obj: dict, now: datetime.datetime) -> list:
    ref = obj.get("roleRef") or {}
    users, groups, sas = [], [], []
    for s in obj.get("subjects") or []:
        kind = s.get("kind")
        if kind == "User":
            users.append(s.get("name", ""))
        elif kind == "Group":
            groups.append(s.get("name", ""))
        elif kind == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}/{s.get('name', '')}")
    return [
        name_of(obj),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        age(obj, now),
        ", ".join(users),
        ", ".join(groups),
        ", ".join(sas),
    ]


STORAGECLASS_COLUMNS = [
    name_col(),
    col("Provisioner", description="provisioner indicates the type of the provisioner."),
    col("ReclaimPolicy", description="reclaimPolicy controls the reclaimPolicy for dynamically provisioned PVs."),
    col(
        "VolumeBindingMode",
        description="volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.",
    ),
    col(
        "AllowVolumeExpansion", description="allowVolumeExpansion shows whether the storage class allow volume expand."
    ),
    age_col(),
]

_DEFAULT_CLASS = ("storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class")


def print_storageclass(obj: dict, now: datetime.datetime) -> list:
    name = name_of(obj)
    annotations = get(obj, "metadata", "annotations", default={})
    if any(annotations.get(a) == "true" for a in _DEFAULT_CLASS):
        name += " (default)"
    return [
        name,
        obj.get("provisioner", ""),
        obj.get("reclaimPolicy") or "Delete",
        obj.get("volumeBindingMode") or "Immediate",
        bool(obj.get("allowVolumeExpansion")),
        age(obj, now),
    ]


PRIORITYCLASS_COLUMNS = [
    name_col(),
    col("Value", "integer", "The integer value of this priority class."),
    col(
        "Global-Default",
        "boolean",
        "globalDefault specifies whether this PriorityClass should be considered as the default priority.",
    ),
    age_col(),
    col("PreemptionPolicy", description="PreemptionPolicy is the Policy for preempting pods with lower priority."),
]


def print_priorityclass(obj: dict, now: datetime.datetime) -> list:
    return [
        name_of(obj),
        int(obj.get("value") or 0),
        bool(obj.get("globalDefault")),
        age(obj, now),
        obj.get("preemptionPolicy") or "PreemptLowerPriority",
    ]


ENDPOINTSLICE_COLUMNS = [
    name_col(),
    col("AddressType", description="addressType specifies the type of address carried by this EndpointSlice."),
    col("Ports", description="ports specifies the list of network ports exposed by each endpoint in this slice."),
    col("Endpoints", description="endpoints is a list of unique endpoints in this slice."),
    age_col(),
]


def print_endpointslice(obj: dict, now: datetime.datetime) -> list:
    ports = []
    for p in obj.get("ports") or []:
        if p.get("port") is not None:
            ports.append(str(p["port"]))
        elif p.get("name") is not None:
            ports.append(p["name"])
        else:
            ports.append("*")
    addrs = [a for ep in obj.get("endpoints") or [] for a in ep.get("addresses") or []]
    return [
        name_of(obj),
        obj.get("addressType", ""),
        list_with_more(ports, 3, empty="<unset>"),
        list_with_more(addrs, 3, empty="<unset>"),
        age(obj, now),
    ]


WEBHOOK_COLUMNS = [name_col(), col("Webhooks", "integer", "Webhooks indicates the number of webhooks."), age_col()]


def print_webhooks(obj: dict, now: datetime.datetime) -> list:
    return [name_of(obj), len(obj.get("webhooks") or []), age(obj, now)]


RUNTIMECLASS_COLUMNS = [
    name_col(),
    col("Handler", description="Handler specifies the underlying runtime and configuration."),
    age_col(),
]


def print_runtimeclass(obj: dict, now: datetime.datetime) -> list:
    return [name_of(obj), obj.get("handler", ""), age(obj, now)]


PRINTERS = {
    ("coordination.k8s.io", "Lease"): (LEASE_COLUMNS, print_lease),
    ("networking.k8s.io", "Ingress"): (INGRESS_COLUMNS, print_ingress),
    ("networking.k8s.io", "IngressClass"): (INGRESSCLASS_COLUMNS, print_ingressclass),
    ("networking.k8s.io", "NetworkPolicy"): (NETPOL_COLUMNS, print_networkpolicy),
    ("policy", "PodDisruptionBudget"): (PDB_COLUMNS, print_pdb),
    ("rbac.authorization.k8s.io", "Role"): (CREATED_AT_COLUMNS, print_created_at),
    ("rbac.authorization.k8s.io", "ClusterRole"): (CREATED_AT_COLUMNS, print_created_at),
    ("rbac.authorization.k8s.io", "RoleBinding"): (BINDING_COLUMNS, print_binding),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (BINDING_COLUMNS, print_binding),
    ("storage.k8s.io", "StorageClass"): (STORAGECLASS_COLUMNS, print_storageclass),
    ("scheduling.k8s.io", "PriorityClass"): (PRIORITYCLASS_COLUMNS, print_priorityclass),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (CREATED_AT_COLUMNS, print_created_at),
    ("discovery.k8s.io", "EndpointSlice"): (ENDPOINTSLICE_COLUMNS, print_endpointslice),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): (WEBHOOK_COLUMNS, print_webhooks),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): (WEBHOOK_COLUMNS, print_webhooks),
    ("node.k8s.io", "RuntimeClass"): (RUNTIMECLASS_COLUMNS, print_runtimeclass),
}
