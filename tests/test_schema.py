"""Built-in kind schemas (schema_data.json), duplicate-field detection and unknown-field pruning."""

import copy

import pytest
import yaml

from kybernetes.api import schema

LISTED = [
    ("", "v1", k) for k in (
        "Namespace", "Pod", "Service", "Endpoints", "ConfigMap", "Secret", "ServiceAccount", "Node", "Event",
        "LimitRange", "ResourceQuota", "PersistentVolume", "PersistentVolumeClaim", "ReplicationController",
        "PodTemplate", "Binding", "ComponentStatus", "DeleteOptions",
    )
] + [
    ("apps", "v1", k) for k in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "ControllerRevision")
] + [
    ("batch", "v1", "Job"), ("batch", "v1", "CronJob"),
    ("autoscaling", "v1", "HorizontalPodAutoscaler"), ("autoscaling", "v1", "Scale"),
    ("autoscaling", "v2", "HorizontalPodAutoscaler"),
    ("coordination.k8s.io", "v1", "Lease"), ("discovery.k8s.io", "v1", "EndpointSlice"),
    ("events.k8s.io", "v1", "Event"),
    ("networking.k8s.io", "v1", "Ingress"), ("networking.k8s.io", "v1", "IngressClass"),
    ("networking.k8s.io", "v1", "NetworkPolicy"),
    ("policy", "v1", "PodDisruptionBudget"), ("policy", "v1", "Eviction"),
    ("rbac.authorization.k8s.io", "v1", "Role"), ("rbac.authorization.k8s.io", "v1", "ClusterRole"),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding"), ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
    ("storage.k8s.io", "v1", "StorageClass"), ("scheduling.k8s.io", "v1", "PriorityClass"),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
    ("authentication.k8s.io", "v1", "TokenReview"),
    ("authorization.k8s.io", "v1", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "v1", "SubjectAccessReview"),
    ("authorization.k8s.io", "v1", "SelfSubjectRulesReview"),
]


@pytest.mark.parametrize("gvk", LISTED, ids=lambda g: "/".join(g))
def test_every_listed_kind_has_a_schema(gvk):
    group, version, kind = gvk
    name = schema.definition_name(group, version, kind)
    assert name is not None and name.endswith("." + kind)
    d = schema.definitions()[name]
    assert {"group": group, "version": version, "kind": kind} in d["x-kubernetes-group-version-kind"]
    node = schema.for_kind(group, version, kind)
    assert node.type == "object" and "kind" in node.properties


def test_upstream_definition_names():
    assert schema.definition_name("", "v1", "Pod") == "io.k8s.api.core.v1.Pod"
    assert schema.definition_name("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert schema.definition_name("autoscaling", "v2", "HorizontalPodAutoscaler") == \
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler"
    assert schema.definition_name("apiextensions.k8s.io", "v1", "CustomResourceDefinition") == \
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
    defs = schema.definitions()
    for name in ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "io.k8s.apimachinery.pkg.api.resource.Quantity",
                 "io.k8s.apimachinery.pkg.util.intstr.IntOrString", "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
                 "io.k8s.api.core.v1.TopologySelectorTerm", "io.k8s.api.core.v1.PodTemplateSpec"):
        assert name in defs
    pod = defs["io.k8s.api.core.v1.Pod"]["properties"]
    assert pod["metadata"]["$ref"] == "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def test_patch_metadata():
    spec = schema.for_kind("", "v1", "Pod").field("spec")
    containers = spec.field("containers")
    assert containers.patch_strategy == "merge" and containers.patch_merge_key == "name"
    assert containers.list_type == "map" and containers.list_map_keys == ["name"]
    volumes = spec.field("volumes")
    assert volumes.patch_strategy == "merge,retainKeys" and volumes.patch_merge_key == "name"
    assert spec.field("tolerations").list_type == "atomic"
    ports = containers.items().field("ports")
    assert ports.patch_merge_key == "containerPort" and ports.list_map_keys == ["containerPort", "protocol"]
    assert containers.items().field("env").patch_merge_key == "name"
    assert containers.items().field("volumeMounts").patch_merge_key == "mountPath"
    tsc = spec.field("topologySpreadConstraints")
    assert tsc.list_map_keys == ["topologyKey", "whenUnsatisfiable"]
    svc_ports = schema.for_kind("", "v1", "Service").field("spec").field("ports")
    assert svc_ports.patch_merge_key == "port" and svc_ports.list_map_keys == ["port", "protocol"]
    meta = schema.for_kind("", "v1", "Pod").field("metadata")
    assert meta.field("finalizers").list_type == "set"
    assert meta.field("ownerReferences").patch_merge_key == "uid"
    assert meta.field("managedFields").list_type == "atomic"
    assert meta.field("labels").is_map() and meta.field("labels").map_type == "granular"
    dep = schema.for_kind("apps", "v1", "Deployment")
    assert dep.field("spec").field("strategy").patch_strategy == "retainKeys"
    assert dep.field("status").field("conditions").patch_merge_key == "type"
    sel = dep.field("spec").field("selector")
    assert sel.field("matchExpressions").list_type == "atomic"
    assert schema.for_kind("rbac.authorization.k8s.io", "v1", "Role").field("rules").list_type == "atomic"


def test_special_types():
    spec = schema.for_kind("", "v1", "Pod").field("spec")
    c = spec.field("containers").items()
    limits = c.field("resources").field("limits")
    assert limits.is_map()
    assert limits.field("cpu").raw.get("format") == "quantity" and not limits.field("cpu").int_or_string
    svc_port = schema.for_kind("", "v1", "Service").field("spec").field("ports").items()
    assert svc_port.field("targetPort").int_or_string
    rolling = schema.for_kind("apps", "v1", "Deployment").field("spec").field("strategy").field("rollingUpdate")
    assert rolling.field("maxSurge").int_or_string
    ts = schema.for_kind("", "v1", "Pod").field("metadata").field("creationTimestamp")
    assert ts.type == "string" and ts.raw["format"] == "date-time"


def _pod():
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"any-key": "v", "x": "y"}, "annotations": {"a/b": "c"}},
        "spec": {
            "foo": 1,
            "containers": [
                {"name": "a", "image": "nginx", "bar": {"x": 1},
                 "ports": [{"containerPort": 80}],
                 "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                 "livenessProbe": {"httpGet": {"port": "http", "path": "/"}}},
                {"name": "b", "image": "busybox", "env": [{"name": "X", "value": "1", "junk": True}]},
            ],
        },
    }


def test_prune_unknown_pod():
    pod = _pod()
    dropped = schema.prune_unknown("", "v1", "Pod", pod)
    assert dropped == ["spec.foo", "spec.containers[0].bar", "spec.containers[1].env[0].junk"]
    assert "foo" not in pod["spec"] and "bar" not in pod["spec"]["containers"][0]
    assert pod["metadata"]["labels"] == {"any-key": "v", "x": "y"}
    assert pod["metadata"]["annotations"] == {"a/b": "c"}
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"cpu": 1, "memory": "1Gi"}
    assert pod["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] == "http"
    assert pod["spec"]["containers"][1]["env"] == [{"name": "X", "value": "1"}]


def test_prune_known_object_unchanged():
    pod = _pod()
    schema.prune_unknown("", "v1", "Pod", pod)
    again = copy.deepcopy(pod)
    assert schema.prune_unknown("", "v1", "Pod", again) == []
    assert again == pod


def test_prune_metadata_and_top_level():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "bogus": 1}, "data": {"k": "v"},
           "extra": "x"}
    assert schema.prune_unknown("", "v1", "ConfigMap", obj) == ["metadata.bogus", "extra"]
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}


def test_prune_any_and_raw_extension():
    rev = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"}, "revision": 1,
           "data": {"spec": {"whatever": 1}}}
    assert schema.prune_unknown("apps", "v1", "ControllerRevision", rev) == []
    mf = {"apiVersion": "v1", "kind": "Pod",
          "metadata": {"name": "p", "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]}}
    assert schema.prune_unknown("", "v1", "Pod", mf) == []


def test_prune_unknown_kind_untouched():
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"foo": 1}}
    assert schema.prune_unknown("example.com", "v1", "Widget", obj) == []
    assert obj["spec"] == {"foo": 1}


def test_find_duplicate_fields():
    assert schema.find_duplicate_fields(b'{"metadata":{"name":"a","name":"b"}}') == ["metadata.name"]
    raw = b'{"kind":"Pod","kind":"Pod","spec":{"containers":[{"name":"a","image":"x","image":"y"}]}}'
    assert schema.find_duplicate_fields(raw) == ["kind", "spec.containers[0].image"]
    assert schema.find_duplicate_fields(b'{"a":1}') == []
    assert schema.find_duplicate_fields(b"{not json") == []
    assert schema.find_duplicate_fields(b"apiVersion: v1\nkind: Pod\n") == []
    assert schema.find_duplicate_fields('{"m":{"labels":{"x":"1","x":"2"}}}') == ["m.labels.x"]


def test_duplicate_check_fast_pass_agrees_with_an_exact_parser_on_random_documents():
    """The byte-counting pass of `_has_duplicates` may only ever answer "no duplicates" when a
    parser that sees every pair agrees; random documents mix escaped quotes and backslashes,
    strings that start with ':', whitespace around colons, and repeated keys."""
    import json as _json
    import random

    from kybernetes.api.schema import _has_duplicates

    rnd = random.Random(7)
    alphabet = ['a', 'b', ':', '"', '\\', ' ', 'k:{"name":"c"}', '\\":', '":x']

    class Obj(list):  # an object as a list of pairs: keys may repeat
        pass

    def text(pairs_or_value, depth=0):
        if isinstance(pairs_or_value, Obj):
            colon = rnd.choice([":", ": ", " :", "\t:\n"])
            comma = rnd.choice([",", ", ", ",\n  "])
            return "{" + comma.join(_json.dumps(k) + colon + text(v, depth + 1) for k, v in pairs_or_value) + "}"
        return _json.dumps(pairs_or_value)

    def value(depth):
        roll = rnd.random()
        if depth < 3 and roll < 0.35:
            keys = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 3))) for _ in range(rnd.randint(0, 4))]
            if keys and rnd.random() < 0.3:
                keys.append(rnd.choice(keys))  # a repeated key
            return Obj((k, value(depth + 1)) for k in keys)
        if roll < 0.7:
            return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 4)))
        return rnd.choice([1, None, True, [1, "x\\\":"]])

    def exact(raw: str) -> bool:
        found = []

        def pairs(ps):
            keys = [k for k, _ in ps]
            found.append(len(keys) != len(set(keys)))
            return dict(ps)

        _json.loads(raw, object_pairs_hook=pairs)
        return any(found)

    seen = {True: 0, False: 0}
    for _ in range(3000):
        doc = value(0)
        if not isinstance(doc, Obj):
            doc = Obj([("x", doc)])
        raw = text(doc)
        want = exact(raw)
        seen[want] += 1
        assert _has_duplicates(raw.encode()) == want, raw
    assert seen[True] > 100 and seen[False] > 100, seen


def _mistyped(kind: str, obj: dict, group: str = "") -> str:
    return schema.decode_check(group, "v1", kind, obj)[1]


def test_decode_check_words_type_errors_as_gos_decoder():
    base = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    assert _mistyped("Pod", base) == ""
    bad = copy.deepcopy(base)
    bad["spec"]["containers"][0]["image"] = 5
    assert _mistyped("Pod", bad) == (
        "json: cannot unmarshal number into Go struct field Container.spec.containers.image of type string")
    cases = [
        ({"nodeName": True}, "bool into Go struct field PodSpec.spec.nodeName of type string"),
        ({"priority": True}, "bool into Go struct field PodSpec.spec.priority of type int32"),
        ({"priority": 1.5}, "number 1.5 into Go struct field PodSpec.spec.priority of type int32"),
        ({"priority": 1 << 40}, f"number {1 << 40} into Go struct field PodSpec.spec.priority of type int32"),
        ({"activeDeadlineSeconds": "1"}, "string into Go struct field PodSpec.spec.activeDeadlineSeconds of type int64"),
        ({"securityContext": []}, "array into Go struct field PodSpec.spec.securityContext of type v1.PodSecurityContext"),
        ({"containers": {}}, "object into Go struct field PodSpec.spec.containers of type []v1.Container"),
        ({"nodeSelector": {"a": 1}}, "number into Go struct field PodSpec.spec.nodeSelector of type string"),
        ({"nodeSelector": "a"}, "string into Go struct field PodSpec.spec.nodeSelector of type map[string]string"),
    ]
    for spec, message in cases:
        obj = copy.deepcopy(base)
        obj["spec"].update(spec)
        assert _mistyped("Pod", obj) == f"json: cannot unmarshal {message}", spec
    assert _mistyped("Pod", {"metadata": {"creationTimestamp": 5}}) == (
        "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.creationTimestamp of type string")
    # the first in document order, as Go reports it
    two = {"metadata": {"labels": {"a": 1}}, "spec": {"nodeName": 2}}
    assert "ObjectMeta.metadata.labels" in _mistyped("Pod", two)


def test_decode_check_accepts_what_go_accepts():
    pod = {"metadata": {"name": "p", "labels": None}, "spec": {
        "nodeName": None, "priority": 3,
        "containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                        "ports": [{"containerPort": 80}],
                        "livenessProbe": {"httpGet": {"port": "http"}}, "readinessProbe": {"httpGet": {"port": 8080}}}]}}
    assert _mistyped("Pod", pod) == ""  # quantities as numbers, int-or-string either way, null anywhere
    dated = yaml.safe_load("metadata: {name: p, annotations: {built: 2024-01-01}}")
    assert _mistyped("ConfigMap", dated) == ""  # a YAML timestamp is a string to upstream
    assert _mistyped("ControllerRevision", {"data": {"any": [1, "x"]}, "revision": 2}, "apps") == ""
    assert schema.decode_check("example.com", "v1", "Widget", {"spec": 5}) == ([], "")
