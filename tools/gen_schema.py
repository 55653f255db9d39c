"""Generate src/kybernetes/api/schema_data.json from the installed `kubernetes` Python client.

The client's model classes carry every field's type (`openapi_types`), its JSON name
(`attribute_map`) and its documentation (property docstrings), but neither the upstream
definition names nor the patch/list extensions. The definition name of a model is derived
from the built-in kind that first reaches it (kinds are walked core first), and the
extensions come from the hand-kept `EXTENSIONS` table below, transcribed from the
`patchStrategy`/`patchMergeKey` struct tags and `+listType`/`+listMapKey`/`+mapType`
markers in k8s.io/api (Kubernetes 1.32).

Usage: python tools/gen_schema.py [output-path]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import kubernetes.client.models as models

OUT = Path(__file__).resolve().parent.parent / "src" / "kybernetes" / "api" / "schema_data.json"
REF = "#/definitions/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
TIME = META + "Time"
MICRO_TIME = META + "MicroTime"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"
FIELDS_V1 = META + "FieldsV1"
JSON_VALUE = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON"

# group -> definition-name prefix (upstream Go package path, reversed into OpenAPI style)
GROUP_PREFIX = {
    "": "io.k8s.api.core",
    "apps": "io.k8s.api.apps",
    "batch": "io.k8s.api.batch",
    "autoscaling": "io.k8s.api.autoscaling",
    "coordination.k8s.io": "io.k8s.api.coordination",
    "discovery.k8s.io": "io.k8s.api.discovery",
    "events.k8s.io": "io.k8s.api.events",
    "networking.k8s.io": "io.k8s.api.networking",
    "policy": "io.k8s.api.policy",
    "rbac.authorization.k8s.io": "io.k8s.api.rbac",
    "storage.k8s.io": "io.k8s.api.storage",
    "scheduling.k8s.io": "io.k8s.api.scheduling",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
    "authentication.k8s.io": "io.k8s.api.authentication",
    "authorization.k8s.io": "io.k8s.api.authorization",
    "meta": "io.k8s.apimachinery.pkg.apis.meta",
}

# (group, version, kind, client model class); core kinds first so shared core types are named core.
KINDS = [
    ("", "v1", "Namespace", "V1Namespace"),
    ("", "v1", "Pod", "V1Pod"),
    ("", "v1", "Service", "V1Service"),
    ("", "v1", "Endpoints", "V1Endpoints"),
    ("", "v1", "ConfigMap", "V1ConfigMap"),
    ("", "v1", "Secret", "V1Secret"),
    ("", "v1", "ServiceAccount", "V1ServiceAccount"),
    ("", "v1", "Node", "V1Node"),
    ("", "v1", "Event", "CoreV1Event"),
    ("", "v1", "LimitRange", "V1LimitRange"),
    ("", "v1", "ResourceQuota", "V1ResourceQuota"),
    ("", "v1", "PersistentVolume", "V1PersistentVolume"),
    ("", "v1", "PersistentVolumeClaim", "V1PersistentVolumeClaim"),
    ("", "v1", "ReplicationController", "V1ReplicationController"),
    ("", "v1", "PodTemplate", "V1PodTemplate"),
    ("", "v1", "Binding", "V1Binding"),
    ("", "v1", "ComponentStatus", "V1ComponentStatus"),
    ("apps", "v1", "Deployment", "V1Deployment"),
    ("apps", "v1", "ReplicaSet", "V1ReplicaSet"),
    ("apps", "v1", "StatefulSet", "V1StatefulSet"),
    ("apps", "v1", "DaemonSet", "V1DaemonSet"),
    ("apps", "v1", "ControllerRevision", "V1ControllerRevision"),
    ("batch", "v1", "Job", "V1Job"),
    ("batch", "v1", "CronJob", "V1CronJob"),
    ("autoscaling", "v1", "HorizontalPodAutoscaler", "V1HorizontalPodAutoscaler"),
    ("autoscaling", "v1", "Scale", "V1Scale"),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", "V2HorizontalPodAutoscaler"),
    ("coordination.k8s.io", "v1", "Lease", "V1Lease"),
    ("discovery.k8s.io", "v1", "EndpointSlice", "V1EndpointSlice"),
    ("events.k8s.io", "v1", "Event", "EventsV1Event"),
    ("networking.k8s.io", "v1", "Ingress", "V1Ingress"),
    ("networking.k8s.io", "v1", "IngressClass", "V1IngressClass"),
    ("networking.k8s.io", "v1", "NetworkPolicy", "V1NetworkPolicy"),
    ("policy", "v1", "PodDisruptionBudget", "V1PodDisruptionBudget"),
    ("policy", "v1", "Eviction", "V1Eviction"),
    ("rbac.authorization.k8s.io", "v1", "Role", "V1Role"),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "V1ClusterRole"),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "V1RoleBinding"),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "V1ClusterRoleBinding"),
    ("storage.k8s.io", "v1", "StorageClass", "V1StorageClass"),
    ("scheduling.k8s.io", "v1", "PriorityClass", "V1PriorityClass"),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "V1CustomResourceDefinition"),
    ("authentication.k8s.io", "v1", "TokenReview", "V1TokenReview"),
    ("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "V1SelfSubjectAccessReview"),
    ("authorization.k8s.io", "v1", "SubjectAccessReview", "V1SubjectAccessReview"),
    ("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "V1SelfSubjectRulesReview"),
    ("meta", "v1", "DeleteOptions", "V1DeleteOptions"),
    ("meta", "v1", "Status", "V1Status"),
]

KIND_DESCRIPTIONS = {
    "Namespace": "Namespace provides a scope for names.",
    "Pod": "Pod is a collection of containers that can run on a host.",
    "Service": "Service is a named abstraction of software service (for example, mysql) consisting of local port "
               "that the proxy listens on, and the selector that determines which pods will answer requests.",
    "Endpoints": "Endpoints is a collection of endpoints that implement the actual service.",
    "ConfigMap": "ConfigMap holds configuration data for pods to consume.",
    "Secret": "Secret holds secret data of a certain type.",
    "ServiceAccount": "ServiceAccount binds together a name, a principal that can be authenticated and authorized, "
                      "and a set of secrets.",
    "Node": "Node is a worker node in Kubernetes.",
    "Event": "Event is a report of an event somewhere in the cluster.",
    "LimitRange": "LimitRange sets resource usage limits for each kind of resource in a Namespace.",
    "ResourceQuota": "ResourceQuota sets aggregate quota restrictions enforced per namespace.",
    "PersistentVolume": "PersistentVolume (PV) is a storage resource provisioned by an administrator.",
    "PersistentVolumeClaim": "PersistentVolumeClaim is a user's request for and claim to a persistent volume.",
    "ReplicationController": "ReplicationController represents the configuration of a replication controller.",
    "PodTemplate": "PodTemplate describes a template for creating copies of a predefined pod.",
    "Binding": "Binding ties one object to another; for example, a pod is bound to a node by a scheduler.",
    "ComponentStatus": "ComponentStatus (and ComponentStatusList) holds the cluster validation info.",
    "Deployment": "Deployment enables declarative updates for Pods and ReplicaSets.",
    "ReplicaSet": "ReplicaSet ensures that a specified number of pod replicas are running at any given time.",
    "StatefulSet": "StatefulSet represents a set of pods with consistent identities.",
    "DaemonSet": "DaemonSet represents the configuration of a daemon set.",
    "ControllerRevision": "ControllerRevision implements an immutable snapshot of state data.",
    "Job": "Job represents the configuration of a single job.",
    "CronJob": "CronJob represents the configuration of a single cron job.",
    "HorizontalPodAutoscaler": "HorizontalPodAutoscaler is the configuration for a horizontal pod autoscaler.",
    "Scale": "Scale represents a scaling request for a resource.",
    "Lease": "Lease defines a lease concept.",
    "EndpointSlice": "EndpointSlice represents a subset of the endpoints that implement a service.",
    "Ingress": "Ingress is a collection of rules that allow inbound connections to reach the endpoints defined "
               "by a backend.",
    "IngressClass": "IngressClass represents the class of the Ingress, referenced by the Ingress Spec.",
    "NetworkPolicy": "NetworkPolicy describes what network traffic is allowed for a set of Pods.",
    "PodDisruptionBudget": "PodDisruptionBudget is an object to define the max disruption that can be caused to "
                           "a collection of pods.",
    "Eviction": "Eviction evicts a pod from its node subject to certain policies and safety constraints.",
    "Role": "Role is a namespaced, logical grouping of PolicyRules that can be referenced as a unit by a RoleBinding.",
    "ClusterRole": "ClusterRole is a cluster level, logical grouping of PolicyRules that can be referenced as a "
                   "unit by a RoleBinding or ClusterRoleBinding.",
    "RoleBinding": "RoleBinding references a role, but does not contain it.",
    "ClusterRoleBinding": "ClusterRoleBinding references a ClusterRole, but not contain it.",
    "StorageClass": "StorageClass describes the parameters for a class of storage for which PersistentVolumes can "
                    "be dynamically provisioned.",
    "PriorityClass": "PriorityClass defines mapping from a priority class name to the priority integer value.",
    "CustomResourceDefinition": "CustomResourceDefinition represents a resource that should be exposed on the API "
                                "server.",
    "TokenReview": "TokenReview attempts to authenticate a token to a known user.",
    "SelfSubjectAccessReview": "SelfSubjectAccessReview checks whether or the current user can perform an action.",
    "SubjectAccessReview": "SubjectAccessReview checks whether or not a user or group can perform an action.",
    "SelfSubjectRulesReview": "SelfSubjectRulesReview enumerates the set of actions the current user can perform "
                              "within a namespace.",
    "DeleteOptions": "DeleteOptions may be provided when deleting an API object.",
    "Status": "Status is a return value for calls that don't return other objects.",
}

# GVKs published for meta kinds (DeleteOptions is accepted in every group upstream; core entry suffices here)
META_GVK = {"DeleteOptions": ("", "v1"), "Status": ("", "v1")}

# Client classes whose upstream package differs from the kind that first reaches them.
FIXED_NAMES = {
    **{c: META + c[2:] for c in (
        "V1ObjectMeta", "V1ListMeta", "V1LabelSelector", "V1LabelSelectorRequirement", "V1OwnerReference",
        "V1ManagedFieldsEntry", "V1DeleteOptions", "V1Preconditions", "V1Status", "V1StatusDetails",
        "V1StatusCause", "V1Condition", "V1FieldSelectorRequirement",
    )},
    "V1TopologySelectorTerm": "io.k8s.api.core.v1.TopologySelectorTerm",
    "V1TopologySelectorLabelRequirement": "io.k8s.api.core.v1.TopologySelectorLabelRequirement",
}

# Fields the client types as plain strings/objects whose upstream type is a named apimachinery type.
QUANTITY_FIELDS = {
    ("V1ResourceRequirements", "limits"), ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"), ("V1VolumeResourceRequirements", "requests"),
    ("V1NodeStatus", "capacity"), ("V1NodeStatus", "allocatable"),
    ("V1PersistentVolumeSpec", "capacity"),
    ("V1PersistentVolumeClaimStatus", "capacity"), ("V1PersistentVolumeClaimStatus", "allocated_resources"),
    ("V1ResourceQuotaSpec", "hard"), ("V1ResourceQuotaStatus", "hard"), ("V1ResourceQuotaStatus", "used"),
    ("V1LimitRangeItem", "max"), ("V1LimitRangeItem", "min"), ("V1LimitRangeItem", "default"),
    ("V1LimitRangeItem", "default_request"), ("V1LimitRangeItem", "max_limit_request_ratio"),
    ("V1ContainerStatus", "allocated_resources"),
    ("V1EmptyDirVolumeSource", "size_limit"),
    ("V1ResourceFieldSelector", "divisor"),
    ("V2MetricTarget", "average_value"), ("V2MetricTarget", "value"),
    ("V2MetricValueStatus", "average_value"), ("V2MetricValueStatus", "value"),
    ("V1PodSpec", "overhead"),
}
INT_OR_STRING_FIELDS = {
    ("V1ServicePort", "target_port"), ("V1HTTPGetAction", "port"), ("V1TCPSocketAction", "port"),
    ("V1RollingUpdateDeployment", "max_surge"), ("V1RollingUpdateDeployment", "max_unavailable"),
    ("V1RollingUpdateDaemonSet", "max_surge"), ("V1RollingUpdateDaemonSet", "max_unavailable"),
    ("V1RollingUpdateStatefulSetStrategy", "max_unavailable"),
    ("V1NetworkPolicyPort", "port"),
    ("V1PodDisruptionBudgetSpec", "min_available"), ("V1PodDisruptionBudgetSpec", "max_unavailable"),
}
MICRO_TIME_FIELDS = {
    ("V1LeaseSpec", "acquire_time"), ("V1LeaseSpec", "renew_time"),
    ("CoreV1Event", "event_time"), ("EventsV1Event", "event_time"),
    ("CoreV1EventSeries", "last_observed_time"), ("EventsV1EventSeries", "last_observed_time"),
}
RAW_EXTENSION_FIELDS = {("V1ControllerRevision", "data")}
FIELDS_V1_FIELDS = {("V1ManagedFieldsEntry", "fields_v1")}

INT64_FIELDS = {
    "generation", "observedGeneration", "terminationGracePeriodSeconds", "activeDeadlineSeconds", "runAsUser",
    "runAsGroup", "fsGroup", "supplementalGroups", "deletionGracePeriodSeconds", "gracePeriodSeconds",
    "startingDeadlineSeconds", "revision", "expirationSeconds", "maxLength", "minLength", "maxItems", "minItems",
    "maxProperties", "minProperties",
}
INT32_OVERRIDES: set[tuple[str, str]] = set()


def _x(strategy: str = "", key: str = "", list_type: str = "", map_keys: tuple = (), map_type: str = "") -> dict:
    out: dict = {}
    if key:
        out["x-kubernetes-patch-merge-key"] = key
    if strategy:
        out["x-kubernetes-patch-strategy"] = strategy
    if list_type:
        out["x-kubernetes-list-type"] = list_type
    if map_keys:
        out["x-kubernetes-list-map-keys"] = list(map_keys)
    if map_type:
        out["x-kubernetes-map-type"] = map_type
    return out


ATOMIC = _x(list_type="atomic")
ATOMIC_MAP = _x(map_type="atomic")
SET = _x(list_type="set")
MERGE_SET = _x("merge", list_type="set")


def _merge_map(key: str, *extra_keys: str, strategy: str = "merge") -> dict:
    return _x(strategy, key, "map", (key, *extra_keys))


CONDITIONS = _merge_map("type")
CONDITIONS_ATOMIC = _x("merge", "type", "atomic")
CONTAINER_X = {
    "ports": _x("merge", "containerPort", "map", ("containerPort", "protocol")),
    "env": _merge_map("name"),
    "envFrom": ATOMIC,
    "volumeMounts": _merge_map("mountPath"),
    "volumeDevices": _merge_map("devicePath"),
    "resizePolicy": ATOMIC,
    "command": ATOMIC,
    "args": ATOMIC,
}

# client class -> JSON field -> extension keys (from k8s.io/api 1.32 struct tags and markers)
EXTENSIONS: dict[str, dict[str, dict]] = {
    "V1ObjectMeta": {
        "finalizers": MERGE_SET,
        "ownerReferences": _merge_map("uid"),
        "managedFields": ATOMIC,
    },
    "V1PodSpec": {
        "volumes": _merge_map("name", strategy="merge,retainKeys"),
        "initContainers": _merge_map("name"),
        "containers": _merge_map("name"),
        "ephemeralContainers": _merge_map("name"),
        "imagePullSecrets": _merge_map("name"),
        "tolerations": ATOMIC,
        "hostAliases": _merge_map("ip"),
        "nodeSelector": ATOMIC_MAP,
        "topologySpreadConstraints": _x("merge", "topologyKey", "map", ("topologyKey", "whenUnsatisfiable")),
        "readinessGates": ATOMIC,
        "schedulingGates": _merge_map("name"),
        "resourceClaims": _merge_map("name", strategy="merge,retainKeys"),
    },
    "V1Container": CONTAINER_X,
    "V1EphemeralContainer": CONTAINER_X,
    "V1PodStatus": {
        "conditions": CONDITIONS,
        "podIPs": _merge_map("ip"),
        "hostIPs": _x("merge", "ip", "atomic"),
        "initContainerStatuses": ATOMIC,
        "containerStatuses": ATOMIC,
        "ephemeralContainerStatuses": ATOMIC,
        "resourceClaimStatuses": _merge_map("name", strategy="merge,retainKeys"),
    },
    "V1PodSecurityContext": {"supplementalGroups": ATOMIC, "sysctls": ATOMIC},
    "V1Capabilities": {"add": ATOMIC, "drop": ATOMIC},
    "V1ResourceRequirements": {"claims": _x(list_type="map", map_keys=("name",))},
    "V1ServiceSpec": {
        "ports": _x("merge", "port", "map", ("port", "protocol")),
        "clusterIPs": ATOMIC,
        "externalIPs": ATOMIC,
        "selector": ATOMIC_MAP,
        "ipFamilies": ATOMIC,
        "loadBalancerSourceRanges": ATOMIC,
    },
    "V1ServiceStatus": {"conditions": CONDITIONS},
    "V1LoadBalancerStatus": {"ingress": ATOMIC},
    "V1LoadBalancerIngress": {"ports": ATOMIC},
    "V1NodeSpec": {"taints": ATOMIC, "podCIDRs": MERGE_SET},
    "V1NodeStatus": {
        "conditions": CONDITIONS,
        "addresses": CONDITIONS,
        "images": ATOMIC,
        "volumesInUse": ATOMIC,
        "volumesAttached": ATOMIC,
    },
    "V1NamespaceStatus": {"conditions": CONDITIONS},
    "V1NamespaceSpec": {"finalizers": ATOMIC},
    "V1PersistentVolumeClaimSpec": {"accessModes": ATOMIC},
    "V1PersistentVolumeClaimStatus": {"conditions": CONDITIONS, "accessModes": ATOMIC},
    "V1PersistentVolumeSpec": {"accessModes": ATOMIC, "mountOptions": ATOMIC},
    "V1ReplicationControllerStatus": {"conditions": CONDITIONS},
    "V1ReplicationControllerSpec": {"selector": ATOMIC_MAP},
    "V1NodeSelector": {"nodeSelectorTerms": ATOMIC},
    "V1NodeSelectorTerm": {"matchExpressions": ATOMIC, "matchFields": ATOMIC},
    "V1NodeSelectorRequirement": {"values": ATOMIC},
    "V1Endpoints": {"subsets": ATOMIC},
    "V1EndpointSubset": {"addresses": ATOMIC, "notReadyAddresses": ATOMIC, "ports": ATOMIC},
    "V1ServiceAccount": {"secrets": _merge_map("name"), "imagePullSecrets": ATOMIC},
    "V1LimitRangeSpec": {"limits": ATOMIC},
    "V1ResourceQuotaSpec": {"scopes": ATOMIC},
    "V1ScopeSelector": {"matchExpressions": ATOMIC},
    "V1PodAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": ATOMIC,
                      "preferredDuringSchedulingIgnoredDuringExecution": ATOMIC},
    "V1PodAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": ATOMIC,
                          "preferredDuringSchedulingIgnoredDuringExecution": ATOMIC},
    "V1NodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": ATOMIC},
    "V1PodAffinityTerm": {"namespaces": ATOMIC, "matchLabelKeys": ATOMIC, "mismatchLabelKeys": ATOMIC},
    "V1TopologySpreadConstraint": {"matchLabelKeys": ATOMIC},
    "V1LabelSelector": {"matchExpressions": ATOMIC},
    "V1LabelSelectorRequirement": {"values": ATOMIC},
    "V1ComponentStatus": {"conditions": _merge_map("type")},
    "V1DeploymentSpec": {"strategy": _x("retainKeys")},
    "V1DeploymentStatus": {"conditions": CONDITIONS},
    "V1ReplicaSetStatus": {"conditions": CONDITIONS},
    "V1StatefulSetSpec": {"volumeClaimTemplates": ATOMIC},
    "V1StatefulSetStatus": {"conditions": CONDITIONS},
    "V1DaemonSetStatus": {"conditions": CONDITIONS},
    "V1JobStatus": {"conditions": CONDITIONS_ATOMIC},
    "V1PodFailurePolicy": {"rules": ATOMIC},
    "V1PodFailurePolicyRule": {"onPodConditions": ATOMIC},
    "V1PodFailurePolicyOnExitCodesRequirement": {"values": SET},
    "V1SuccessPolicy": {"rules": ATOMIC},
    "V1CronJobStatus": {"active": ATOMIC},
    "V2HorizontalPodAutoscalerSpec": {"metrics": ATOMIC},
    "V2HorizontalPodAutoscalerStatus": {"conditions": CONDITIONS, "currentMetrics": ATOMIC},
    "V2HPAScalingRules": {"policies": ATOMIC},
    "V1EndpointSlice": {"endpoints": ATOMIC, "ports": ATOMIC},
    "V1Endpoint": {"addresses": SET},
    "V1EndpointHints": {"forZones": ATOMIC},
    "V1IngressSpec": {"tls": ATOMIC, "rules": ATOMIC},
    "V1IngressTLS": {"hosts": ATOMIC},
    "V1HTTPIngressRuleValue": {"paths": ATOMIC},
    "V1IngressLoadBalancerStatus": {"ingress": ATOMIC},
    "V1IngressLoadBalancerIngress": {"ports": ATOMIC},
    "V1NetworkPolicySpec": {"ingress": ATOMIC, "egress": ATOMIC, "policyTypes": ATOMIC},
    "V1NetworkPolicyIngressRule": {"ports": ATOMIC, "_from": ATOMIC, "from": ATOMIC},
    "V1NetworkPolicyEgressRule": {"ports": ATOMIC, "to": ATOMIC},
    "V1IPBlock": {"except": ATOMIC},
    "V1PodDisruptionBudgetStatus": {"conditions": CONDITIONS},
    "V1Role": {"rules": ATOMIC},
    "V1ClusterRole": {"rules": ATOMIC},
    "V1AggregationRule": {"clusterRoleSelectors": ATOMIC},
    "V1PolicyRule": {"verbs": ATOMIC, "apiGroups": ATOMIC, "resources": ATOMIC, "resourceNames": ATOMIC,
                     "nonResourceURLs": ATOMIC},
    "V1RoleBinding": {"subjects": ATOMIC},
    "V1ClusterRoleBinding": {"subjects": ATOMIC},
    "V1StorageClass": {"mountOptions": ATOMIC, "allowedTopologies": ATOMIC},
    "V1TopologySelectorTerm": {"matchLabelExpressions": ATOMIC},
    "V1TopologySelectorLabelRequirement": {"values": ATOMIC},
    "V1CustomResourceDefinitionSpec": {"versions": ATOMIC},
    "V1CustomResourceDefinitionStatus": {"conditions": _x(list_type="map", map_keys=("type",)),
                                         "storedVersions": ATOMIC},
    "V1CustomResourceDefinitionNames": {"shortNames": ATOMIC, "categories": ATOMIC},
    "V1CustomResourceDefinitionVersion": {"additionalPrinterColumns": ATOMIC},
    "V1Status": {},
    "V1StatusDetails": {"causes": ATOMIC},
    "V1DeleteOptions": {"dryRun": ATOMIC},
    "V1TokenReviewSpec": {"audiences": ATOMIC},
    "V1TokenReviewStatus": {"audiences": ATOMIC},
    "V1UserInfo": {"groups": ATOMIC},
    "V1SubjectAccessReviewSpec": {"groups": ATOMIC},
}

REQUIRED: dict[str, list[str]] = {
    "V1Container": ["name"],
    "V1EphemeralContainer": ["name"],
    "V1PodSpec": ["containers"],
    "V1Volume": ["name"],
    "V1EnvVar": ["name"],
    "V1ContainerPort": ["containerPort"],
    "V1VolumeMount": ["name", "mountPath"],
    "V1ServicePort": ["port"],
    "V1DeploymentSpec": ["selector", "template"],
    "V1ReplicaSetSpec": ["selector"],
    "V1StatefulSetSpec": ["selector", "template"],
    "V1DaemonSetSpec": ["selector", "template"],
    "V1JobSpec": ["template"],
    "V1CronJobSpec": ["schedule", "jobTemplate"],
    "V1OwnerReference": ["apiVersion", "kind", "name", "uid"],
    "V1LabelSelectorRequirement": ["key", "operator"],
    "V1Condition": ["type", "status", "lastTransitionTime", "reason", "message"],
    "V1PolicyRule": ["verbs"],
    "V1RoleRef": ["apiGroup", "kind", "name"],
    "RbacV1Subject": ["kind", "name"],
    "V1Toleration": [],
    "V1Taint": ["key", "effect"],
    "V1KeyToPath": ["key", "path"],
}

PRIMITIVE = {"str": {"type": "string"}, "bool": {"type": "boolean"}, "float": {"type": "number", "format": "double"}}
VERSION_RE = re.compile(r"^(?:[A-Z][a-z]+)*?(V\d+(?:(?:alpha|beta)\d+)?)([A-Z].*)$")

SPECIAL_DEFS = {
    QUANTITY: {
        "description": "Quantity is a fixed-point representation of a number, serialized as a string "
                       "(e.g. \"100m\", \"1Gi\") or a number.",
        "oneOf": [{"type": "string"}, {"type": "number"}],
        "format": "quantity",
    },
    INT_OR_STRING: {
        "description": "IntOrString is a type that can hold an int32 or a string.",
        "x-kubernetes-int-or-string": True,
        "format": "int-or-string",
    },
    TIME: {
        "description": "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.",
        "type": "string",
        "format": "date-time",
    },
    MICRO_TIME: {
        "description": "MicroTime is version of Time with microsecond level precision.",
        "type": "string",
        "format": "date-time",
    },
    RAW_EXTENSION: {
        "description": "RawExtension is used to hold extensions in external versions.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    },
    FIELDS_V1: {
        "description": "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    },
    JSON_VALUE: {
        "description": "JSON represents any valid JSON value.",
        "x-kubernetes-preserve-unknown-fields": True,
    },
}


def _description(cls, attr: str) -> str:
    prop = getattr(cls, attr, None)
    doc = getattr(getattr(prop, "fget", None), "__doc__", None) or ""
    parts = [p.strip() for p in doc.split("\n\n")]
    if len(parts) < 3 or parts[1].startswith(":return"):
        return ""
    text = re.sub(r"\s*# noqa: E501\s*$", "", parts[1]).strip()
    text = " ".join(text.split())
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return m.group(1) if m else text


class Generator:
    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # client class -> definition name
        self.defs: dict[str, dict] = dict(SPECIAL_DEFS)
        self.pending: list[str] = []

    def name_for(self, cls_name: str, prefix: str) -> str:
        if cls_name in self.names:
            return self.names[cls_name]
        name = FIXED_NAMES.get(cls_name)
        if name is None:
            m = VERSION_RE.match(cls_name)
            if not m:
                raise SystemExit(f"cannot parse model class name {cls_name}")
            name = f"{prefix}.{m.group(1).lower()}.{m.group(2)}"
        self.names[cls_name] = name
        self.pending.append(cls_name)
        return name

    def type_schema(self, cls_name: str, attr: str, json_name: str, t: str, prefix: str) -> dict:
        if t.startswith("list["):
            return {"type": "array", "items": self.type_schema(cls_name, attr, json_name, t[5:-1], prefix)}
        if t.startswith("dict("):
            inner = t[5:-1].split(",", 1)[1].strip()
            return {"type": "object",
                    "additionalProperties": self.type_schema(cls_name, attr, json_name, inner, prefix)}
        key = (cls_name, attr)
        if key in QUANTITY_FIELDS:
            return {"$ref": REF + QUANTITY}
        if key in INT_OR_STRING_FIELDS:
            return {"$ref": REF + INT_OR_STRING}
        if key in RAW_EXTENSION_FIELDS:
            return {"$ref": REF + RAW_EXTENSION}
        if key in FIELDS_V1_FIELDS:
            return {"$ref": REF + FIELDS_V1}
        if t == "datetime":
            return {"$ref": REF + (MICRO_TIME if key in MICRO_TIME_FIELDS else TIME)}
        if t == "object":
            if cls_name == "V1JSONSchemaProps":
                return {"$ref": REF + JSON_VALUE}
            return {}
        if t == "int":
            big = json_name in INT64_FIELDS and key not in INT32_OVERRIDES
            return {"type": "integer", "format": "int64" if big else "int32"}
        if t in PRIMITIVE:
            return dict(PRIMITIVE[t])
        if not hasattr(models, t):
            raise SystemExit(f"unknown type {t} in {cls_name}.{attr}")
        return {"$ref": REF + self.name_for(t, prefix)}

    def build(self, cls_name: str) -> None:
        cls = getattr(models, cls_name)
        name = self.names[cls_name]
        prefix = name.rsplit(".", 2)[0]
        ext = EXTENSIONS.get(cls_name, {})
        props: dict[str, dict] = {}
        for attr, t in cls.openapi_types.items():
            json_name = cls.attribute_map[attr]
            prop = self.type_schema(cls_name, attr, json_name, t, prefix)
            desc = _description(cls, attr)
            if desc:
                prop["description"] = desc
            prop.update(ext.get(json_name, {}))
            props[json_name] = prop
        unknown = set(ext) - set(props) - {"_from"}
        if unknown:
            raise SystemExit(f"extension table names unknown fields {sorted(unknown)} of {cls_name}")
        schema: dict = {"type": "object", "properties": props}
        if REQUIRED.get(cls_name):
            schema["required"] = REQUIRED[cls_name]
        self.defs[name] = schema

    def run(self) -> dict:
        gvk: dict[str, str] = {}
        for group, version, kind, cls_name in KINDS:
            prefix = f"{GROUP_PREFIX[group]}"
            name = self.name_for(cls_name, prefix)
            while self.pending:
                self.build(self.pending.pop(0))
            if group == "meta":
                group, version = META_GVK[kind]
            key = f"{group}/{version}/{kind}"
            gvk[key] = name
            entry = {"group": group, "version": version, "kind": kind}
            self.defs[name].setdefault("x-kubernetes-group-version-kind", []).append(entry)
            self.defs[name]["description"] = KIND_DESCRIPTIONS.get(kind, kind)
        missing = [c for c in EXTENSIONS if c not in self.names]
        if missing:
            print(f"note: extension entries for unreached classes: {missing}", file=sys.stderr)
        return {"definitions": dict(sorted(self.defs.items())), "gvk": gvk}


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else OUT
    data = Generator().run()
    text = json.dumps(data, indent=None, separators=(",", ":"), sort_keys=False)
    out.write_text(text + "\n")
    print(f"wrote {out}: {len(data['definitions'])} definitions, {len(data['gvk'])} kinds, {len(text)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
