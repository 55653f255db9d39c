"""Per-kind defaulters, keyed by (group, kind)."""

from __future__ import annotations

from .core import default_pod_spec, default_pod_template


def _spec(obj: dict) -> dict:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {} if spec is None else spec
    return spec if isinstance(spec, dict) else {}


def pod(obj: dict) -> None:
    default_pod_spec(_spec(obj))


def service(obj: dict) -> None:
    spec = _spec(obj)
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":  # ipFamilyPolicy and ipFamilies come with the ClusterIP, later
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec.get("sessionAffinity") == "ClientIP":
        cfg = spec.setdefault("sessionAffinityConfig", {}).setdefault("clientIP", {})
        cfg.setdefault("timeoutSeconds", 10800)
    for p in spec.get("ports") or ():
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            if p.get("targetPort") in (None, 0, ""):
                p["targetPort"] = p.get("port")


def _replicas(spec: dict) -> None:
    spec.setdefault("replicas", 1)


def deployment(obj: dict) -> None:
    spec = _spec(obj)
    _replicas(spec)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    default_pod_template(spec.get("template"))


def replica_set(obj: dict) -> None:
    spec = _spec(obj)
    _replicas(spec)
    default_pod_template(spec.get("template"))


def replication_controller(obj: dict) -> None:
    spec = _spec(obj)
    _replicas(spec)
    template = spec.get("template")
    if not spec.get("selector") and isinstance(template, dict):
        labels = (template.get("metadata") or {}).get("labels")
        if labels:
            spec["selector"] = dict(labels)
    if isinstance(template, dict) and not (obj.get("metadata") or {}).get("labels"):
        labels = (template.get("metadata") or {}).get("labels")
        if labels:
            obj["metadata"]["labels"] = dict(labels)
    default_pod_template(template)


def stateful_set(obj: dict) -> None:
    spec = _spec(obj)
    _replicas(spec)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    us = spec.setdefault("updateStrategy", {})
    us.setdefault("type", "RollingUpdate")
    if us["type"] == "RollingUpdate":
        us.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    policy = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    policy.setdefault("whenDeleted", "Retain")
    policy.setdefault("whenScaled", "Retain")
    for claim in spec.get("volumeClaimTemplates") or ():
        if isinstance(claim, dict):
            claim.setdefault("apiVersion", "v1")
            claim.setdefault("kind", "PersistentVolumeClaim")
            claim.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
            claim.setdefault("status", {"phase": "Pending"})
    default_pod_template(spec.get("template"))


def daemon_set(obj: dict) -> None:
    spec = _spec(obj)
    us = spec.setdefault("updateStrategy", {})
    us.setdefault("type", "RollingUpdate")
    if us["type"] == "RollingUpdate":
        ru = us.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", 1)
        ru.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    default_pod_template(spec.get("template"))


def job(obj: dict) -> None:
    spec = _spec(obj)
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    for rule in (spec.get("podFailurePolicy") or {}).get("rules") or ():
        for pattern in rule.get("onPodConditions") or () if isinstance(rule, dict) else ():
            if isinstance(pattern, dict):
                pattern.setdefault("status", "True")
    default_pod_template(spec.get("template"))


def cron_job(obj: dict) -> None:
    spec = _spec(obj)
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    template = spec.setdefault("jobTemplate", {})
    if isinstance(template, dict):
        job_obj = {"spec": template.setdefault("spec", {})}
        job(job_obj)
        template.setdefault("metadata", {}).setdefault("creationTimestamp", None)


def secret(obj: dict) -> None:
    obj.setdefault("type", "Opaque")


def persistent_volume(obj: dict) -> None:
    spec = _spec(obj)
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def persistent_volume_claim(obj: dict) -> None:
    _spec(obj).setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def pod_template(obj: dict) -> None:
    default_pod_template(obj.get("template"))


def network_policy(obj: dict) -> None:
    spec = _spec(obj)
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    network_policy_ports(obj)


def priority_class(obj: dict) -> None:
    obj.setdefault("preemptionPolicy", "PreemptLowerPriority")


def storage_class(obj: dict) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


def _ports_tcp(ports) -> None:
    for p in ports or ():
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")


def network_policy_ports(obj: dict) -> None:
    spec = _spec(obj)
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or ():
            if isinstance(rule, dict):
                _ports_tcp(rule.get("ports"))


def limit_range(obj: dict) -> None:
    for item in _spec(obj).get("limits") or ():
        if not isinstance(item, dict) or item.get("type") != "Container":
            continue
        default = item.setdefault("default", {})
        request = item.setdefault("defaultRequest", {})
        for name, value in (item.get("max") or {}).items():
            default.setdefault(name, value)
        for name, value in default.items():
            request.setdefault(name, value)
        for name, value in (item.get("min") or {}).items():
            request.setdefault(name, value)
        if not default:
            item.pop("default")
        if not request:
            item.pop("defaultRequest")


def node(obj: dict) -> None:
    status = obj.get("status")
    if isinstance(status, dict) and status.get("capacity") and not status.get("allocatable"):
        status["allocatable"] = dict(status["capacity"])


def role_binding(obj: dict) -> None:
    for subject in obj.get("subjects") or ():
        if not isinstance(subject, dict) or subject.get("apiGroup"):
            continue
        if subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = "rbac.authorization.k8s.io"
        elif subject.get("kind") == "ServiceAccount":
            subject["apiGroup"] = ""


def csi_driver(obj: dict) -> None:
    spec = _spec(obj)
    spec.setdefault("attachRequired", True)
    spec.setdefault("podInfoOnMount", False)
    spec.setdefault("storageCapacity", False)
    spec.setdefault("fsGroupPolicy", "ReadWriteOnceWithFSType")
    spec.setdefault("volumeLifecycleModes", ["Persistent"])
    spec.setdefault("requiresRepublish", False)
    spec.setdefault("seLinuxMount", False)


def _webhooks(obj: dict, mutating: bool) -> None:
    for hook in obj.get("webhooks") or ():
        if not isinstance(hook, dict):
            continue
        hook.setdefault("failurePolicy", "Fail")
        hook.setdefault("matchPolicy", "Equivalent")
        hook.setdefault("namespaceSelector", {})
        hook.setdefault("objectSelector", {})
        hook.setdefault("timeoutSeconds", 10)
        if mutating:
            hook.setdefault("reinvocationPolicy", "Never")
        for rule in hook.get("rules") or ():
            if isinstance(rule, dict):
                rule.setdefault("scope", "*")
        service = (hook.get("clientConfig") or {}).get("service")
        if isinstance(service, dict):
            service.setdefault("port", 443)


def mutating_webhooks(obj: dict) -> None:
    _webhooks(obj, True)


def validating_webhooks(obj: dict) -> None:
    _webhooks(obj, False)


def endpoints(obj: dict) -> None:
    for subset in obj.get("subsets") or ():
        if isinstance(subset, dict):
            _ports_tcp(subset.get("ports"))


def endpoint_slice(obj: dict) -> None:
    _ports_tcp(obj.get("ports"))
    for p in obj.get("ports") or ():
        if isinstance(p, dict):
            p.setdefault("name", "")


def namespace(obj: dict) -> None:
    pass


def hpa(obj: dict) -> None:
    _spec(obj).setdefault("minReplicas", 1)


def custom_resource_definition(obj: dict) -> None:
    from ..crd import default_crd

    default_crd(obj)


def _scaling_rules(rules, defaults: dict) -> dict:
    rules = dict(rules) if isinstance(rules, dict) else {}
    for key, value in defaults.items():
        if rules.get(key) is None:
            rules[key] = value
    return rules


def hpa_v2(obj: dict) -> None:
    spec = _spec(obj)
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _scaling_rules(behavior.get("scaleUp"), {
            "stabilizationWindowSeconds": 0, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                         {"type": "Percent", "value": 100, "periodSeconds": 15}]})
        behavior["scaleDown"] = _scaling_rules(behavior.get("scaleDown"), {
            "selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]})


DEFAULTERS = {
    ("", "Pod"): pod,
    ("", "Service"): service,
    ("", "Secret"): secret,
    ("", "PersistentVolume"): persistent_volume,
    ("", "PersistentVolumeClaim"): persistent_volume_claim,
    ("", "PodTemplate"): pod_template,
    ("", "ReplicationController"): replication_controller,
    ("", "Endpoints"): endpoints,
    ("apps", "Deployment"): deployment,
    ("apps", "ReplicaSet"): replica_set,
    ("apps", "StatefulSet"): stateful_set,
    ("apps", "DaemonSet"): daemon_set,
    ("batch", "Job"): job,
    ("batch", "CronJob"): cron_job,
    ("networking.k8s.io", "NetworkPolicy"): network_policy,
    ("scheduling.k8s.io", "PriorityClass"): priority_class,
    ("storage.k8s.io", "StorageClass"): storage_class,
    ("discovery.k8s.io", "EndpointSlice"): endpoint_slice,
    ("autoscaling", "HorizontalPodAutoscaler"): hpa,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): custom_resource_definition,
    ("", "LimitRange"): limit_range,
    ("", "Node"): node,
    ("rbac.authorization.k8s.io", "RoleBinding"): role_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): role_binding,
    ("storage.k8s.io", "CSIDriver"): csi_driver,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): mutating_webhooks,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): validating_webhooks,
}

# version-specific defaulters, consulted before DEFAULTERS
VERSIONED = {
    ("autoscaling", "v2", "HorizontalPodAutoscaler"): hpa_v2,
}
