"""The built-in resource types: paths, scopes, names and verbs as upstream serves them.

One `ResourceType` per served group/version/resource. Discovery, OpenAPI, routing and the
registry are all built from this table (and from CRDs at run time, which produce the
same records).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
NO_COLLECTION = ("create", "delete", "get", "list", "patch", "update", "watch")
READ_ONLY = ("get", "list", "watch")
CREATE_ONLY = ("create",)
SUB_RW = ("get", "patch", "update")


@dataclass(frozen=True)
class Subresource:
    name: str
    verbs: tuple = SUB_RW
    # response kind when it differs from the parent (scale -> autoscaling/v1 Scale)
    group: str | None = None
    version: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple = ()
    categories: tuple = ()
    verbs: tuple = ALL_VERBS
    subresources: tuple = ()
    # group/resource that owns storage when several versions or groups share it
    storage_group: str | None = None
    storage_resource: str | None = None

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_key(self) -> str:
        """Prefix under which objects live in storage (shared across versions)."""
        group = self.storage_group if self.storage_group is not None else self.group
        resource = self.storage_resource or self.plural
        return f"/registry/{group or 'core'}/{resource}/"

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None


STATUS = Subresource("status")
SCALE = Subresource("scale", SUB_RW, "autoscaling", "v1", "Scale")
EPHEMERAL = Subresource("ephemeralcontainers", SUB_RW)
RESIZE = Subresource("resize", SUB_RW)
POD_SUBRESOURCES = (
    Subresource("attach", ("create", "get"), "", "v1", "PodAttachOptions"),
    Subresource("binding", CREATE_ONLY, "", "v1", "Binding"),
    EPHEMERAL,
    Subresource("eviction", CREATE_ONLY, "policy", "v1", "Eviction"),
    Subresource("exec", ("create", "get"), "", "v1", "PodExecOptions"),
    Subresource("log", ("get",), "", "v1", "Pod"),
    Subresource("portforward", ("create", "get"), "", "v1", "PodPortForwardOptions"),
    Subresource("proxy", ALL_VERBS[:1] + ("delete", "get", "patch", "update"), "", "v1", "PodProxyOptions"),
    RESIZE,
    STATUS,
)


def _r(group, version, kind, plural, namespaced, short=(), cats=(), verbs=ALL_VERBS, subs=(), **kw):
    return ResourceType(group, version, kind, plural, namespaced, tuple(short), tuple(cats), verbs, tuple(subs), **kw)


ALL = ("all",)

BUILTIN: list[ResourceType] = [
    # core/v1
    _r("", "v1", "Binding", "bindings", True, verbs=CREATE_ONLY),
    _r("", "v1", "ComponentStatus", "componentstatuses", False, ("cs",), verbs=("get", "list")),
    _r("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    _r("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    _r("", "v1", "Event", "events", True, ("ev",)),
    _r("", "v1", "LimitRange", "limitranges", True, ("limits",)),
    _r("", "v1", "Namespace", "namespaces", False, ("ns",), verbs=NO_COLLECTION,
       subs=(Subresource("finalize", ("update",)), STATUS)),
    _r("", "v1", "Node", "nodes", False, ("no",), subs=(Subresource("proxy", ("create", "delete", "get", "patch", "update"), "", "v1", "NodeProxyOptions"), STATUS)),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), subs=(STATUS,)),
    _r("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), subs=(STATUS,)),
    _r("", "v1", "Pod", "pods", True, ("po",), ALL, subs=POD_SUBRESOURCES),
    _r("", "v1", "PodTemplate", "podtemplates", True),
    _r("", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",), ALL, subs=(SCALE, STATUS)),
    _r("", "v1", "ResourceQuota", "resourcequotas", True, ("quota",), subs=(STATUS,)),
    _r("", "v1", "Secret", "secrets", True),
    _r("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",),
       subs=(Subresource("token", CREATE_ONLY, "authentication.k8s.io", "v1", "TokenRequest"),)),
    _r("", "v1", "Service", "services", True, ("svc",), ALL, verbs=ALL_VERBS,
       subs=(Subresource("proxy", ("create", "delete", "get", "patch", "update"), "", "v1", "ServiceProxyOptions"), STATUS)),
    # apps/v1
    _r("apps", "v1", "ControllerRevision", "controllerrevisions", True),
    _r("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ALL, subs=(STATUS,)),
    _r("apps", "v1", "Deployment", "deployments", True, ("deploy",), ALL, subs=(SCALE, STATUS)),
    _r("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ALL, subs=(SCALE, STATUS)),
    _r("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ALL, subs=(SCALE, STATUS)),
    # batch/v1
    _r("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ALL, subs=(STATUS,)),
    _r("batch", "v1", "Job", "jobs", True, (), ALL, subs=(STATUS,)),
    # autoscaling
    _r("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",), ALL, subs=(STATUS,)),
    _r("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",), ALL, subs=(STATUS,),
       storage_group="autoscaling"),
    # coordination
    _r("coordination.k8s.io", "v1", "Lease", "leases", True),
    # discovery
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    # events
    _r("events.k8s.io", "v1", "Event", "events", True, ("ev",), storage_group="", storage_resource="events"),
    # networking
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), subs=(STATUS,)),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    # policy
    _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), subs=(STATUS,)),
    # rbac
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    # storage
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
    # scheduling
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",)),
    # apiextensions
    _r("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False, ("crd", "crds"),
       subs=(STATUS,)),
    # authorization / authentication (create-only review APIs)
    _r("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False, verbs=CREATE_ONLY),
    _r("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, verbs=CREATE_ONLY),
    _r("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", True, verbs=CREATE_ONLY),
    _r("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False, verbs=CREATE_ONLY),
    _r("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False, verbs=CREATE_ONLY),
    _r("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False, verbs=CREATE_ONLY),
]

# Group order as upstream's /apis lists them (kubectl's api-resources follows it).
GROUP_ORDER = [
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
]

# Preferred version per group when several are served.
PREFERRED_VERSION = {"autoscaling": "v2"}

# Resources that are not objects in storage (review APIs, bindings).
VIRTUAL = {"bindings", "componentstatuses", "selfsubjectreviews", "tokenreviews", "localsubjectaccessreviews",
           "selfsubjectaccessreviews", "selfsubjectrulesreviews", "subjectaccessreviews"}


@dataclass
class ResourceIndex:
    """Lookup of served resources by group/version/plural and by kind."""

    types: list[ResourceType] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str, str], ResourceType] = {}
        for rt in self.types:
            self._add(rt)

    def _add(self, rt: ResourceType) -> None:
        self._by_path[(rt.group, rt.version, rt.plural)] = rt
        self._by_kind[(rt.group, rt.version, rt.kind)] = rt

    def add(self, rt: ResourceType) -> None:
        self.types = [t for t in self.types if (t.group, t.version, t.plural) != (rt.group, rt.version, rt.plural)]
        self.types.append(rt)
        self._add(rt)

    def remove(self, group: str, version: str, plural: str) -> None:
        rt = self._by_path.pop((group, version, plural), None)
        if rt is not None:
            self.types = [t for t in self.types if t is not rt]
            self._by_kind.pop((rt.group, rt.version, rt.kind), None)

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((group, version, kind))

    def groups(self) -> dict[str, list[str]]:
        """group -> versions, preferred first, groups in upstream's order."""
        out: dict[str, list[str]] = {}
        for rt in self.types:
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        for group, versions in out.items():
            preferred = PREFERRED_VERSION.get(group)
            versions.sort(key=lambda v: (v != preferred, _version_priority(v)))
        order = {g: i for i, g in enumerate(GROUP_ORDER)}
        return dict(sorted(out.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted((t for t in self.types if t.group == group and t.version == version), key=lambda t: t.plural)


def _version_priority(version: str) -> tuple:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, version)


def version_priority(version: str) -> tuple:
    return _version_priority(version)
