"""Validation of object metadata, names and built-in kinds, with upstream's messages."""

from __future__ import annotations

import copy

import pytest

from kybernetes.api import validation
from kybernetes.api.naming import name_validator
from kybernetes.api.quantity import is_valid_quantity, parse_quantity
from kybernetes.api.validation.meta import (
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    validate_annotations,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)


def messages(errs) -> list[str]:
    return [e.message() for e in errs]


def pod(**spec) -> dict:
    base = {"containers": [{"name": "app", "image": "nginx"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": base}


def deployment(labels=None, selector=None) -> dict:
    labels = {"app": "web"} if labels is None else labels
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}} if selector is None else selector,
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    }


# --- names ------------------------------------------------------------------------------
def test_dns1123_subdomain():
    assert is_dns1123_subdomain("example.com") == []
    assert is_dns1123_subdomain("a" * 253) == []
    assert is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]
    msgs = is_dns1123_subdomain("Bad_Name")
    assert msgs == [
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
        "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
        r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    ]


def test_dns_labels():
    assert is_dns1123_label("my-name") == []
    assert is_dns1123_label("a.b")
    assert is_dns1123_label("a" * 64)[0] == "must be no more than 63 characters"
    assert is_dns1123_label("1abc") == []
    assert is_dns1035_label("1abc")
    assert "start with an alphabetic character" in is_dns1035_label("1abc")[0]
    assert is_dns1035_label("abc-1") == []


def test_prefix_allows_trailing_dash():
    assert is_dns1123_subdomain("web-", True) == []
    assert is_dns1123_subdomain("web-")
    assert is_dns1035_label("svc-", True) == []


def test_qualified_names_and_label_values():
    assert is_qualified_name("app") == []
    assert is_qualified_name("example.com/app") == []
    assert is_qualified_name("Example.com/app") == [
        "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
        "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
        r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    ]
    assert is_qualified_name("/app") == ["prefix part must be non-empty"]
    assert is_qualified_name("a/b/c")[0].startswith("a qualified name must consist")
    assert "name part must be non-empty" in is_qualified_name("example.com/")
    assert is_qualified_name("-x")[0].startswith("name part must consist of alphanumeric characters")
    assert is_valid_label_value("") == []
    assert is_valid_label_value("v1.2_3") == []
    assert is_valid_label_value("bad value")[0].startswith("a valid label must be an empty string")


def test_name_validator_per_resource():
    assert name_validator("", "pods")("a.b", False) == []
    assert name_validator("", "namespaces")("a.b", False)
    assert name_validator("", "services")("1svc", False)
    rbac = name_validator("rbac.authorization.k8s.io", "clusterroles")
    assert rbac("system:controller:job", False) == []
    assert rbac("a/b", False) == ["may not contain '/'"]
    assert rbac("..", False) == ["may not be '..'"]
    assert rbac("x%", True) == ["may not contain '%'"]


# --- metadata ---------------------------------------------------------------------------------
def test_object_meta_name_required():
    errs = validate_object_meta({"namespace": "default"}, True, name_validator("", "pods"))
    assert messages(errs) == ["metadata.name: Required value: name or generateName is required"]


def test_object_meta_generate_name_is_enough():
    assert validate_object_meta({"generateName": "web-", "namespace": "d"}, True, is_dns1123_subdomain)[0].field \
        == "metadata.name"
    errs = validate_object_meta({"generateName": "Web-", "name": "x", "namespace": "d"}, True, is_dns1123_subdomain)
    assert [e.field for e in errs] == ["metadata.generateName"]


def test_object_meta_invalid_name():
    errs = validate_object_meta({"name": "Bad", "namespace": "d"}, True, name_validator("", "configmaps"))
    assert messages(errs)[0].startswith('metadata.name: Invalid value: "Bad": a lowercase RFC 1123 subdomain')


def test_object_meta_uses_the_given_name_rule():
    assert validate_object_meta({"name": "Bad"}, False, lambda name, prefix: []) == []


def test_object_meta_namespace_rules():
    errs = validate_object_meta({"name": "x"}, True, is_dns1123_subdomain)
    assert messages(errs) == ["metadata.namespace: Required value"]
    errs = validate_object_meta({"name": "x", "namespace": "d"}, False, is_dns1123_subdomain)
    assert messages(errs) == ["metadata.namespace: Forbidden: not allowed on this type"]
    assert validate_object_meta({"name": "x", "namespace": ""}, False, is_dns1123_subdomain) == []


def test_labels_and_annotations():
    assert validate_labels({"app": "web", "example.com/tier": ""}, "metadata.labels") == []
    errs = validate_labels({"bad key!": "v", "k": "bad value"}, "metadata.labels")
    assert [e.field for e in errs] == ["metadata.labels", "metadata.labels"]
    assert messages(errs)[1].startswith('metadata.labels: Invalid value: "bad value": a valid label')
    assert validate_annotations({"Example.com/A": "x" * 1000}, "metadata.annotations") == []
    errs = validate_annotations({"big": "x" * (256 * 1024)}, "metadata.annotations")
    assert messages(errs) == ["metadata.annotations: Too long: may not be more than 262144 bytes"]


def test_owner_references():
    meta = {"name": "x", "namespace": "d", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": True},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": True},
        {"apiVersion": "v1", "kind": "Pod"},
    ]}
    msgs = messages(validate_object_meta(meta, True, is_dns1123_subdomain))
    assert 'metadata.ownerReferences[2].name: Invalid value: "": name must not be empty' in msgs
    assert 'metadata.ownerReferences[2].uid: Invalid value: "": uid must not be empty' in msgs
    assert any("Only one reference can have Controller set to true" in m and "ReplicaSet/a and ReplicaSet/b" in m
               for m in msgs)


def test_finalizers():
    ok = {"name": "x", "finalizers": ["kubernetes", "orphan", "example.com/cleanup"]}
    assert validate_object_meta(ok, False, is_dns1123_subdomain) == []
    errs = validate_object_meta({"name": "x", "finalizers": ["cleanup"]}, False, is_dns1123_subdomain)
    assert messages(errs) == ['metadata.finalizers: Invalid value: "cleanup": '
                              "name is neither a standard finalizer name nor is it fully qualified"]
    errs = validate_object_meta({"name": "x", "finalizers": ["orphan", "foregroundDeletion"]}, False,
                                is_dns1123_subdomain)
    assert "cannot be both set" in messages(errs)[0]


def test_object_meta_update_immutable_fields():
    old = {"name": "x", "namespace": "d", "uid": "u1", "creationTimestamp": "2024-01-01T00:00:00Z", "generation": 3}
    new = dict(old, name="y", uid="u2", generation=2)
    msgs = messages(validate_object_meta_update(new, old))
    assert 'metadata.name: Invalid value: "y": field is immutable' in msgs
    assert 'metadata.uid: Invalid value: "u2": field is immutable' in msgs
    assert "metadata.generation: Invalid value: 2: must not be decremented" in msgs
    assert validate_object_meta_update(dict(old), old) == []


def test_no_new_finalizers_while_deleting():
    old = {"name": "x", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a.io/x"]}
    new = dict(old, finalizers=["a.io/x", "a.io/y"])
    assert messages(validate_object_meta_update(new, old)) == [
        'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, '
        'found new finalizers []string{"a.io/y"}']


# --- registry ----------------------------------------------------------------------------------------------
def test_unknown_kind_validates_clean():
    assert validation.validate("example.com", "Widget", {"spec": None}) == []
    assert validation.validate_update("example.com", "Widget", {}, {}) == []
    assert validation.validate_status_update("example.com", "Widget", {}, {}) == []


# --- pods ----------------------------------------------------------------------------------------------
def test_valid_pod():
    assert validation.validate("", "Pod", pod()) == []


def test_pod_containers_required():
    assert messages(validation.validate("", "Pod", pod(containers=[]))) == ["spec.containers: Required value"]


def test_container_image_required_and_names():
    obj = pod(containers=[{"name": "a"}, {"name": "a", "image": "x"}, {"name": "Bad_", "image": "x"}])
    msgs = messages(validation.validate("", "Pod", obj))
    assert "spec.containers[0].image: Required value" in msgs
    assert 'spec.containers[1].name: Duplicate value: "a"' in msgs
    assert any(m.startswith('spec.containers[2].name: Invalid value: "Bad_": a lowercase RFC 1123 label')
               for m in msgs)


def test_container_ports():
    obj = pod(containers=[{"name": "a", "image": "x", "ports": [
        {"containerPort": 0}, {"containerPort": 80, "protocol": "HTTP"}, {"containerPort": 70000}]}])
    msgs = messages(validation.validate("", "Pod", obj))
    assert "spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive" \
        in msgs
    assert 'spec.containers[0].ports[1].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", ' \
        '"UDP"' in msgs
    assert any(m.startswith("spec.containers[0].ports[2].containerPort") for m in msgs)


def test_env_names():
    obj = pod(containers=[{"name": "a", "image": "x", "env": [{"name": "OK_1"}, {"value": "v"}, {"name": "A=B"}]}])
    msgs = messages(validation.validate("", "Pod", obj))
    assert "spec.containers[0].env[1].name: Required value" in msgs
    assert any(m.startswith('spec.containers[0].env[2].name: Invalid value: "A=B"') for m in msgs)
    assert len(msgs) == 2


def test_volume_mounts_and_volumes():
    obj = pod(containers=[{"name": "a", "image": "x", "volumeMounts": [{"name": "missing", "mountPath": "/m"}]}],
              volumes=[{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}},
                       {"name": "w"}, {"name": "z", "emptyDir": {}, "hostPath": {"path": "/"}}])
    msgs = messages(validation.validate("", "Pod", obj))
    assert 'spec.containers[0].volumeMounts[0].name: Not found: "missing"' in msgs
    assert 'spec.volumes[1].name: Duplicate value: "v"' in msgs
    assert "spec.volumes[2]: Required value: must specify a volume type" in msgs
    assert "spec.volumes[3].emptyDir: Forbidden: may not specify more than 1 volume type" in msgs


def test_pod_policies():
    msgs = messages(validation.validate("", "Pod", pod(restartPolicy="Sometimes", dnsPolicy="Maybe")))
    assert 'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", ' \
        '"Never"' in msgs
    assert any(m.startswith('spec.dnsPolicy: Unsupported value: "Maybe"') for m in msgs)


def test_resources():
    obj = pod(containers=[{"name": "a", "image": "x", "resources": {
        "limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "12x"}}}])
    msgs = messages(validation.validate("", "Pod", obj))
    assert 'spec.containers[0].resources.requests: Invalid value: "1": must be less than or equal to cpu limit ' \
        'of 500m' in msgs
    assert any(m.startswith('spec.containers[0].resources.requests[memory]: Invalid value: "12x": quantities must')
               for m in msgs)
    ok = pod(containers=[{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1"},
                                                                   "requests": {"cpu": "100m"}}}])
    assert validation.validate("", "Pod", ok) == []


def test_pod_update_only_image_and_deadline():
    old = pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:2"
    new["spec"]["activeDeadlineSeconds"] = 30
    assert validation.validate_update("", "Pod", new, old) == []
    new["spec"]["restartPolicy"] = "Never"
    msgs = messages(validation.validate_update("", "Pod", new, old))
    assert len(msgs) == 1
    assert msgs[0].startswith("spec: Forbidden: pod updates may not change fields other than "
                              "`spec.containers[*].image`")


# --- services --------------------------------------------------------------------------------------------
def service(**spec) -> dict:
    base = {"ports": [{"port": 80}], "selector": {"app": "web"}}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "d"}, "spec": base}


def test_service_valid_and_ports():
    assert validation.validate("", "Service", service()) == []
    assert messages(validation.validate("", "Service", service(ports=[]))) == ["spec.ports: Required value"]
    assert validation.validate("", "Service", service(ports=[], clusterIP="None")) == []
    assert validation.validate("", "Service", service(ports=[], type="ExternalName", externalName="a.b")) == []


def test_service_port_rules():
    msgs = messages(validation.validate("", "Service", service(ports=[{"port": 80}, {"name": "a", "port": 0},
                                                                      {"name": "a", "port": 81}])))
    assert "spec.ports[0].name: Required value" in msgs
    assert 'spec.ports[2].name: Duplicate value: "a"' in msgs
    assert "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive" in msgs


def test_service_type_and_selector():
    msgs = messages(validation.validate("", "Service", service(type="Magic", selector={"a": "b c"})))
    assert 'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", ' \
        '"LoadBalancer", "NodePort"' in msgs
    assert any(m.startswith("spec.selector: Invalid value") for m in msgs)


def test_service_cluster_ip_immutable():
    old = service(clusterIP="10.0.0.10", clusterIPs=["10.0.0.10"])
    new = service(clusterIP="10.0.0.11", clusterIPs=["10.0.0.11"])
    assert messages(validation.validate_update("", "Service", new, old)) == [
        'spec.clusterIPs[0]: Invalid value: []string{"10.0.0.11"}: may not change once set',
        'spec.clusterIP: Invalid value: "10.0.0.11": field is immutable']


# --- workloads ---------------------------------------------------------------------------------------
def test_deployment_valid():
    assert validation.validate("apps", "Deployment", deployment()) == []


def test_deployment_selector_must_match_template():
    msgs = messages(validation.validate("apps", "Deployment", deployment(labels={"app": "x"})))
    assert msgs == ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"x"}: '
                    "`selector` does not match template `labels`"]


def test_deployment_selector_required_and_replicas():
    obj = deployment()
    del obj["spec"]["selector"]
    obj["spec"]["replicas"] = -1
    msgs = messages(validation.validate("apps", "Deployment", obj))
    assert "spec.selector: Required value" in msgs
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in msgs


def test_deployment_template_pod_spec_paths():
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0].pop("image")
    assert "spec.template.spec.containers[0].image: Required value" in messages(
        validation.validate("apps", "Deployment", obj))


def test_deployment_strategy_type():
    obj = deployment()
    obj["spec"]["strategy"] = {"type": "BlueGreen"}
    assert messages(validation.validate("apps", "Deployment", obj)) == [
        'spec.strategy.type: Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"']


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"])
def test_apps_selector_immutable(kind):
    old = deployment()
    old["kind"] = kind
    new = deployment(labels={"app": "web", "v": "2"}, selector={"matchLabels": {"app": "web", "v": "2"}})
    new["kind"] = kind
    msgs = messages(validation.validate_update("apps", kind, new, old))
    if kind == "StatefulSet":
        assert msgs == ["spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                        "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                        "are forbidden"]
    else:
        assert any(m.startswith("spec.selector: Invalid value") and m.endswith("field is immutable") for m in msgs)


def test_stateful_set_template_and_replicas_may_change():
    old = deployment()
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert validation.validate_update("apps", "StatefulSet", new, old) == []


def test_job_template_immutable_unless_suspended():
    old = job()
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    assert [e.field for e in validation.validate_update("batch", "Job", new, old)] == ["spec.template"]
    old["spec"]["suspend"] = True
    assert validation.validate_update("batch", "Job", new, old) == []


def job(**spec) -> dict:
    base = {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}
    base.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "d"}, "spec": base}


def test_job_rules():
    assert validation.validate("batch", "Job", job()) == []
    obj = job(parallelism=-1)
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    msgs = messages(validation.validate("batch", "Job", obj))
    assert "spec.parallelism: Invalid value: -1: must be greater than or equal to 0" in msgs
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", ' \
        '"Never"' in msgs


def test_job_selector_immutable():
    old = job(selector={"matchLabels": {"a": "b"}})
    new = job(selector={"matchLabels": {"a": "c"}})
    msgs = messages(validation.validate_update("batch", "Job", new, old))
    assert any(m.startswith("spec.selector: Invalid value") for m in msgs)


def cron(**spec) -> dict:
    base = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": job()["spec"]}}
    base.update(spec)
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "d"}, "spec": base}


def test_cron_job_schedule_and_policy():
    assert validation.validate("batch", "CronJob", cron()) == []
    assert validation.validate("batch", "CronJob", cron(schedule="@hourly")) == []
    msgs = messages(validation.validate("batch", "CronJob", cron(schedule="every minute",
                                                                    concurrencyPolicy="Sometimes")))
    assert msgs[0] == 'spec.schedule: Invalid value: "every minute": expected exactly 5 fields, found 2: ' \
        '[every minute]'
    assert 'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", ' \
        '"Replace"' in msgs
    assert messages(validation.validate("batch", "CronJob", cron(schedule=None))) == ["spec.schedule: Required value"]
    assert validation.validate("batch", "CronJob", cron(schedule="0 9-17/2 * JAN-jun mon,fri")) == []
    assert messages(validation.validate("batch", "CronJob", cron(schedule="60 * * * *"))) == [
        'spec.schedule: Invalid value: "60 * * * *": end of range (60) above maximum (59): 60']
    assert messages(validation.validate("batch", "CronJob", cron(schedule="TZ=UTC 0 * * * *")))[0].endswith(
        "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")


def test_pod_tolerations_may_only_be_added():
    old = pod(tolerations=[{"key": "a", "operator": "Exists"}])
    added = copy.deepcopy(old)
    added["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    assert validation.validate_update("", "Pod", added, old) == []
    removed = copy.deepcopy(old)
    removed["spec"]["tolerations"] = []
    assert [e.field for e in validation.validate_update("", "Pod", removed, old)] == ["spec"]


# --- config maps and secrets ---------------------------------------------------------------------------
def test_config_map_keys_and_size():
    cm = {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d"}, "data": {"good.key": "v", "bad/key": "v"}}
    msgs = messages(validation.validate("", "ConfigMap", cm))
    assert len(msgs) == 1 and msgs[0].startswith('data[bad/key]: Invalid value: "bad/key": a valid config key')
    big = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "x" * (1024 * 1024 + 1)}}
    assert len(validation.validate("", "ConfigMap", big)) == 1


def test_immutable_config_map_and_secret_type():
    old = {"kind": "ConfigMap", "metadata": {"name": "c"}, "immutable": True, "data": {"a": "1"}}
    new = dict(old, data={"a": "2"})
    assert [e.field for e in validation.validate_update("", "ConfigMap", new, old)] == ["data"]
    old_secret = {"kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque", "data": {}}
    new_secret = dict(old_secret, type="kubernetes.io/tls")
    assert messages(validation.validate_update("", "Secret", new_secret, old_secret)) == [
        'type: Invalid value: "kubernetes.io/tls": field is immutable']


# --- quantities -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [("100m", "1/10"), ("1Gi", str(2**30)), ("1e3", "1000"), ("0.5", "1/2"),
                                        ("2k", "2000"), (".5", "1/2"), ("3", "3")])
def test_parse_quantity(text, value):
    from fractions import Fraction
    assert parse_quantity(text) == Fraction(value)


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "1Gb", "--1", "1 Gi"])
def test_invalid_quantity(text):
    assert not is_valid_quantity(text)
    with pytest.raises(ValueError):
        parse_quantity(text)


# --- other kinds -------------------------------------------------------------------------------------------------
RBAC = "rbac.authorization.k8s.io"


def test_role_rules():
    role = {"rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
                      {"apiGroups": [""], "resources": ["pods"]},
                      {"verbs": ["get"], "resources": ["pods"]},
                      {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}
    msgs = messages(validation.validate(RBAC, "Role", role))
    assert msgs == [
        "rules[1].verbs: Required value: verbs must contain at least one value",
        "rules[2].apiGroups: Required value: resource rules must supply at least one api group",
        'rules[3].nonResourceURLs: Invalid value: ["/healthz"]: namespaced rules cannot apply to non-resource URLs',
    ]
    assert validation.validate(RBAC, "ClusterRole", {"rules": role["rules"][3:]}) == []


def test_role_binding():
    binding = {"roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "r"},
               "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "alice"},
                            {"kind": "ServiceAccount", "name": "default", "namespace": "d"}]}
    assert validation.validate(RBAC, "RoleBinding", binding) == []
    msgs = messages(validation.validate(RBAC, "ClusterRoleBinding", dict(binding, subjects=[
        {"kind": "ServiceAccount", "name": "x"}, {"kind": "Robot", "name": "r"}])))
    assert msgs == ['roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
                    "subjects[0].namespace: Required value",
                    'subjects[1].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", '
                    '"Group"']
    changed = dict(binding, roleRef={"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"})
    assert [e.detail for e in validation.validate_update(RBAC, "RoleBinding", changed, binding)] == [
        "cannot change roleRef"]


def test_priority_class():
    pc = {"metadata": {"name": "high"}, "value": 1000}
    assert validation.validate("scheduling.k8s.io", "PriorityClass", pc) == []
    msgs = messages(validation.validate_update("scheduling.k8s.io", "PriorityClass", dict(pc, value=5), pc))
    assert msgs == ["value: Forbidden: may not be changed in an update."]
    too_high = {"metadata": {"name": "x"}, "value": 2_000_000_000}
    assert messages(validation.validate("scheduling.k8s.io", "PriorityClass", too_high)) == [
        "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]


def test_hpa_and_pdb():
    hpa = {"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "minReplicas": 0, "maxReplicas": 0}}
    assert messages(validation.validate("autoscaling", "HorizontalPodAutoscaler", hpa)) == [
        "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
        "spec.maxReplicas: Invalid value: 0: must be greater than 0"]
    pdb = {"spec": {"minAvailable": 1, "maxUnavailable": "150%"}}
    msgs = messages(validation.validate("policy", "PodDisruptionBudget", pdb))
    assert any(m.endswith("minAvailable and maxUnavailable cannot be both set") for m in msgs)
    assert 'spec.maxUnavailable: Invalid value: "150%": must not be greater than 100%' in msgs


def test_storage_class_update_and_network_policy():
    sc = {"provisioner": "a", "parameters": {"x": "1"}}
    msgs = messages(validation.validate_update("storage.k8s.io", "StorageClass", dict(sc, parameters={}), sc))
    assert msgs == ["parameters: Forbidden: updates to parameters are forbidden."]
    assert messages(validation.validate("storage.k8s.io", "StorageClass", {})) == ["provisioner: Required value"]
    np = {"spec": {"podSelector": {}, "policyTypes": ["Sideways"]}}
    assert messages(validation.validate("networking.k8s.io", "NetworkPolicy", np)) == [
        'spec.policyTypes[0]: Unsupported value: "Sideways": supported values: "Egress", "Ingress"']


def test_ingress_paths():
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    ing = {"spec": {"rules": [{"host": "*.example.com", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": backend},
        {"path": "api", "pathType": "Exact", "backend": backend},
        {"path": "/x", "backend": {"service": {"name": "web", "port": {}}}}]}}]}}
    msgs = messages(validation.validate("networking.k8s.io", "Ingress", ing))
    assert msgs == ['spec.rules[0].http.paths[1].path: Invalid value: "api": must be an absolute path',
                    "spec.rules[0].http.paths[2].pathType: Required value: pathType must be specified",
                    "spec.rules[0].http.paths[2].backend.service.port: Invalid value: {}: port name or number is "
                    "required"]


def test_namespace_and_quotas():
    assert validation.validate("", "Namespace", {"spec": {"finalizers": ["kubernetes"]}}) == []
    assert len(validation.validate("", "Namespace", {"spec": {"finalizers": ["custom"]}})) == 1
    quota = {"spec": {"hard": {"pods": "10", "requests.cpu": "lots"}}}
    assert [e.field for e in validation.validate("", "ResourceQuota", quota)] == ["spec.hard[requests.cpu]"]
    lr = {"spec": {"limits": [{"type": "Node", "max": {"cpu": "1"}}]}}
    assert messages(validation.validate("", "LimitRange", lr)) == [
        'spec.limits[0].type: Unsupported value: "Node": supported values: "Container", "PersistentVolumeClaim", '
        '"Pod"']
