"""Validation of the smaller kinds: RBAC, scheduling, policy, storage, networking, quotas."""

from __future__ import annotations

import json

from ..errors import FieldError, forbidden, invalid, not_supported, required
from ..quantity import is_valid_quantity
from . import CREATE, UPDATE
from .meta import is_dns1123_subdomain, is_path_segment_name, validate_finalizers

RBAC_GROUP = "rbac.authorization.k8s.io"
QUANTITY_MESSAGE = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
SYSTEM_PRIORITY_CLASSES = ("system-node-critical", "system-cluster-critical")
HIGHEST_USER_PRIORITY = 1_000_000_000


class _Raw:
    """A bad value printed as upstream prints structs (unquoted)."""

    def __init__(self, value):
        self.text = json.dumps(value, sort_keys=True, separators=(",", ":"))

    def __str__(self) -> str:
        return self.text


def _spec(obj: dict) -> dict:
    return obj.get("spec") if isinstance(obj.get("spec"), dict) else {}


def _int_at_least(value, minimum: int, path: str, message: str | None = None) -> list[FieldError]:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        return [invalid(path, value, message or f"must be greater than or equal to {minimum}")]
    return []


# --- rbac ---------------------------------------------------------------------------------------------
def _policy_rules(obj: dict, namespaced: bool) -> list[FieldError]:
    errs = []
    for i, rule in enumerate(obj.get("rules") or ()):
        path = f"rules[{i}]"
        if not isinstance(rule, dict):
            errs.append(invalid(path, rule, "must be an object"))
            continue
        if not rule.get("verbs"):
            errs.append(required(f"{path}.verbs", "verbs must contain at least one value"))
        urls = rule.get("nonResourceURLs")
        if urls:
            if namespaced:
                errs.append(invalid(f"{path}.nonResourceURLs", _Raw(urls),
                                    "namespaced rules cannot apply to non-resource URLs"))
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                errs.append(invalid(f"{path}.nonResourceURLs", _Raw(urls),
                                    "rules cannot apply to both regular resources and non-resource URLs"))
            continue
        if not rule.get("apiGroups"):
            errs.append(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            errs.append(required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errs


def validate_role(obj: dict) -> list[FieldError]:
    return _policy_rules(obj, True)


def validate_cluster_role(obj: dict) -> list[FieldError]:
    if obj.get("aggregationRule") is not None:
        selectors = (obj.get("aggregationRule") or {}).get("clusterRoleSelectors")
        if not selectors:
            return [required("aggregationRule.clusterRoleSelectors", "at least one clusterRoleSelector required if "
                                                                     "aggregationRule is non-nil")]
        return []
    return _policy_rules(obj, False)


def _binding(obj: dict, kinds: tuple[str, ...], namespaced: bool) -> list[FieldError]:
    errs = []
    ref = obj.get("roleRef")
    if not isinstance(ref, dict):
        ref = {}
    if ref.get("apiGroup") != RBAC_GROUP:
        errs.append(not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), (RBAC_GROUP,)))
    if not ref.get("kind"):
        errs.append(not_supported("roleRef.kind", "", kinds))
    elif ref["kind"] not in kinds:
        errs.append(not_supported("roleRef.kind", ref["kind"], kinds))
    if not ref.get("name"):
        errs.append(required("roleRef.name", ""))
    else:
        errs += [invalid("roleRef.name", ref["name"], m) for m in is_path_segment_name(str(ref["name"]))]
    for i, subject in enumerate(obj.get("subjects") or ()):
        path = f"subjects[{i}]"
        if not isinstance(subject, dict):
            errs.append(invalid(path, subject, "must be an object"))
            continue
        kind = subject.get("kind")
        if not subject.get("name"):
            errs.append(required(f"{path}.name", ""))
        if kind == "ServiceAccount":
            if subject.get("apiGroup"):
                errs.append(not_supported(f"{path}.apiGroup", subject["apiGroup"], ("",)))
            if not namespaced and not subject.get("namespace"):
                errs.append(required(f"{path}.namespace", ""))
        elif kind in ("User", "Group"):
            if subject.get("apiGroup") != RBAC_GROUP:
                errs.append(not_supported(f"{path}.apiGroup", subject.get("apiGroup", ""), (RBAC_GROUP,)))
        else:
            errs.append(not_supported(f"{path}.kind", kind or "", ("ServiceAccount", "User", "Group")))
    return errs


def validate_role_binding(obj: dict) -> list[FieldError]:
    return _binding(obj, ("Role", "ClusterRole"), True)


def validate_cluster_role_binding(obj: dict) -> list[FieldError]:
    return _binding(obj, ("ClusterRole",), False)


def _role_ref_fixed(validate):
    def check(new: dict, old: dict) -> list[FieldError]:
        errs = validate(new)
        if new.get("roleRef") != old.get("roleRef"):
            errs.append(invalid("roleRef", _Raw(new.get("roleRef")), "cannot change roleRef"))
        return errs
    return check


# --- scheduling ----------------------------------------------------------------------------------------
def validate_priority_class(obj: dict) -> list[FieldError]:
    errs = []
    name = (obj.get("metadata") or {}).get("name") or ""
    value = obj.get("value")
    if not isinstance(value, int) or isinstance(value, bool):
        errs.append(required("value", ""))
    elif name not in SYSTEM_PRIORITY_CLASSES and value > HIGHEST_USER_PRIORITY:
        errs.append(forbidden("value", f"maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"))
    if name.startswith("system-") and name not in SYSTEM_PRIORITY_CLASSES:
        errs.append(invalid("metadata.name", name, "priority class names with 'system-' prefix are reserved"))
    policy = obj.get("preemptionPolicy")
    if policy is not None and policy not in ("Never", "PreemptLowerPriority"):
        errs.append(not_supported("preemptionPolicy", policy, ("Never", "PreemptLowerPriority")))
    return errs


def validate_priority_class_update(new: dict, old: dict) -> list[FieldError]:
    errs = validate_priority_class(new)
    if new.get("value") != old.get("value"):
        errs.append(forbidden("value", "may not be changed in an update."))
    if new.get("preemptionPolicy") != old.get("preemptionPolicy"):
        errs.append(invalid("preemptionPolicy", new.get("preemptionPolicy"), "field is immutable"))
    return errs


# --- autoscaling and policy ----------------------------------------------------------------------------
def validate_hpa(obj: dict) -> list[FieldError]:
    spec = _spec(obj)
    errs = []
    ref = spec.get("scaleTargetRef") if isinstance(spec.get("scaleTargetRef"), dict) else {}
    if not ref.get("kind"):
        errs.append(required("spec.scaleTargetRef.kind", ""))
    if not ref.get("name"):
        errs.append(required("spec.scaleTargetRef.name", ""))
    else:
        errs += [invalid("spec.scaleTargetRef.name", ref["name"], m) for m in is_path_segment_name(str(ref["name"]))]
    low = spec.get("minReplicas")
    errs += _int_at_least(low, 1, "spec.minReplicas")
    high = spec.get("maxReplicas")
    if not isinstance(high, int) or isinstance(high, bool) or high < 1:
        errs.append(invalid("spec.maxReplicas", high, "must be greater than 0"))
    elif isinstance(low, int) and high < low:
        errs.append(invalid("spec.maxReplicas", high, "must be greater than or equal to `minReplicas`"))
    errs += _int_at_least(spec.get("targetCPUUtilizationPercentage"), 1, "spec.targetCPUUtilizationPercentage")
    return errs


def validate_pdb(obj: dict) -> list[FieldError]:
    spec = _spec(obj)
    errs = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.append(invalid("spec", _Raw(spec), "minAvailable and maxUnavailable cannot be both set"))
    for field in ("minAvailable", "maxUnavailable"):
        value = spec.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            errs.append(invalid(f"spec.{field}", value, "must be greater than or equal to 0"))
        elif isinstance(value, str):
            if not value.endswith("%") or not value[:-1].isdigit():
                errs.append(invalid(f"spec.{field}", value, "a valid percent string must be a numeric string "
                                                            "followed by an ending '%' (e.g. '1%',  or '93%', "
                                                            "regex used for validation is '[0-9]+%')"))
            elif int(value[:-1]) > 100:
                errs.append(invalid(f"spec.{field}", value, "must not be greater than 100%"))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in ("AlwaysAllow", "IfHealthyBudget"):
        errs.append(not_supported("spec.unhealthyPodEvictionPolicy", policy, ("AlwaysAllow", "IfHealthyBudget")))
    return errs


# --- storage ---------------------------------------------------------------------------------------------
def validate_storage_class(obj: dict) -> list[FieldError]:
    errs = []
    if not obj.get("provisioner"):
        errs.append(required("provisioner", ""))
    policy = obj.get("reclaimPolicy")
    if policy is not None and policy not in ("Delete", "Retain"):
        errs.append(not_supported("reclaimPolicy", policy, ("Delete", "Retain")))
    mode = obj.get("volumeBindingMode")
    if mode is not None and mode not in ("Immediate", "WaitForFirstConsumer"):
        errs.append(not_supported("volumeBindingMode", mode, ("Immediate", "WaitForFirstConsumer")))
    return errs


def validate_storage_class_update(new: dict, old: dict) -> list[FieldError]:
    errs = validate_storage_class(new)
    for field in ("parameters", "provisioner", "reclaimPolicy"):
        if new.get(field) != old.get(field):
            errs.append(forbidden(field, f"updates to {field} are forbidden."))
    if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
        errs.append(invalid("volumeBindingMode", new.get("volumeBindingMode"), "field is immutable"))
    return errs


def validate_pv(obj: dict) -> list[FieldError]:
    spec = _spec(obj)
    errs = []
    if not spec.get("accessModes"):
        errs.append(required("spec.accessModes", ""))
    storage = (spec.get("capacity") or {}).get("storage")
    if storage is None:
        errs.append(required("spec.capacity", ""))
    elif not is_valid_quantity(storage):
        errs.append(invalid("spec.capacity[storage]", storage, QUANTITY_MESSAGE))
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy is not None and policy not in ("Delete", "Recycle", "Retain"):
        errs.append(not_supported("spec.persistentVolumeReclaimPolicy", policy, ("Delete", "Recycle", "Retain")))
    return errs


# --- networking -------------------------------------------------------------------------------------------
def validate_network_policy(obj: dict) -> list[FieldError]:
    spec = _spec(obj)
    errs = []
    types = spec.get("policyTypes") or []
    for i, t in enumerate(types):
        if t not in ("Ingress", "Egress"):
            errs.append(not_supported(f"spec.policyTypes[{i}]", t, ("Egress", "Ingress")))
    if len(types) > 2:
        errs.append(forbidden("spec.policyTypes", "may not specify more than two policyTypes"))
    for direction in ("ingress", "egress"):
        for i, rule in enumerate(spec.get(direction) or ()):
            for j, port in enumerate((rule or {}).get("ports") or ()):
                proto = (port or {}).get("protocol")
                if proto is not None and proto not in ("SCTP", "TCP", "UDP"):
                    errs.append(not_supported(f"spec.{direction}[{i}].ports[{j}].protocol", proto,
                                              ("SCTP", "TCP", "UDP")))
    return errs


def _ingress_backend(backend, path: str) -> list[FieldError]:
    if not isinstance(backend, dict):
        return [required(path, "")]
    service, resource = backend.get("service"), backend.get("resource")
    if service and resource:
        return [invalid(path, "", "cannot set both resource and service backends")]
    if not service and not resource:
        return [invalid(path, "", "resource or service backend is required")]
    errs = []
    if service:
        if not service.get("name"):
            errs.append(required(f"{path}.service.name", ""))
        port = service.get("port") or {}
        if port.get("name") and port.get("number"):
            errs.append(invalid(f"{path}.service.port", _Raw(port), "cannot set both port name & port number"))
        elif not port.get("name") and not port.get("number"):
            errs.append(invalid(f"{path}.service.port", _Raw(port), "port name or number is required"))
    return errs


def validate_ingress(obj: dict) -> list[FieldError]:
    spec = _spec(obj)
    errs = []
    if spec.get("defaultBackend") is not None:
        errs += _ingress_backend(spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(spec.get("rules") or ()):
        path = f"spec.rules[{i}]"
        host = (rule or {}).get("host")
        if host:
            check = host[2:] if host.startswith("*.") else host
            errs += [invalid(f"{path}.host", host, m) for m in is_dns1123_subdomain(check)]
        http = (rule or {}).get("http")
        if http is None:
            continue
        if not (http or {}).get("paths"):
            errs.append(required(f"{path}.http.paths", ""))
        for j, p in enumerate((http or {}).get("paths") or ()):
            pp = f"{path}.http.paths[{j}]"
            kind = p.get("pathType")
            if not kind:
                errs.append(required(f"{pp}.pathType", "pathType must be specified"))
            elif kind not in ("Exact", "ImplementationSpecific", "Prefix"):
                errs.append(not_supported(f"{pp}.pathType", kind, ("Exact", "ImplementationSpecific", "Prefix")))
            elif kind in ("Exact", "Prefix") and not str(p.get("path") or "").startswith("/"):
                errs.append(invalid(f"{pp}.path", p.get("path") or "", "must be an absolute path"))
            errs += _ingress_backend(p.get("backend"), f"{pp}.backend")
    return errs


# --- namespaces and quotas ------------------------------------------------------------------------------------------
def validate_namespace(obj: dict) -> list[FieldError]:
    return validate_finalizers(_spec(obj).get("finalizers"), "spec.finalizers")


def _quantities(values, path: str) -> list[FieldError]:
    errs = []
    for name, value in (values or {}).items():
        if not is_valid_quantity(value):
            errs.append(invalid(f"{path}[{name}]", value, QUANTITY_MESSAGE))
    return errs


def validate_resource_quota(obj: dict) -> list[FieldError]:
    return _quantities(_spec(obj).get("hard"), "spec.hard")


def validate_limit_range(obj: dict) -> list[FieldError]:
    errs = []
    for i, item in enumerate(_spec(obj).get("limits") or ()):
        path = f"spec.limits[{i}]"
        kind = (item or {}).get("type")
        if kind not in ("Container", "Pod", "PersistentVolumeClaim"):
            errs.append(not_supported(f"{path}.type", kind or "", ("Container", "PersistentVolumeClaim", "Pod")))
        for field in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            errs += _quantities((item or {}).get(field), f"{path}.{field}")
    return errs


CREATE.update({
    (RBAC_GROUP, "Role"): validate_role,
    (RBAC_GROUP, "ClusterRole"): validate_cluster_role,
    (RBAC_GROUP, "RoleBinding"): validate_role_binding,
    (RBAC_GROUP, "ClusterRoleBinding"): validate_cluster_role_binding,
    ("scheduling.k8s.io", "PriorityClass"): validate_priority_class,
    ("autoscaling", "HorizontalPodAutoscaler"): validate_hpa,
    ("policy", "PodDisruptionBudget"): validate_pdb,
    ("storage.k8s.io", "StorageClass"): validate_storage_class,
    ("", "PersistentVolume"): validate_pv,
    ("networking.k8s.io", "NetworkPolicy"): validate_network_policy,
    ("networking.k8s.io", "Ingress"): validate_ingress,
    ("", "Namespace"): validate_namespace,
    ("", "ResourceQuota"): validate_resource_quota,
    ("", "LimitRange"): validate_limit_range,
})
UPDATE.update({
    (RBAC_GROUP, "RoleBinding"): _role_ref_fixed(validate_role_binding),
    (RBAC_GROUP, "ClusterRoleBinding"): _role_ref_fixed(validate_cluster_role_binding),
    ("scheduling.k8s.io", "PriorityClass"): validate_priority_class_update,
    ("storage.k8s.io", "StorageClass"): validate_storage_class_update,
})
