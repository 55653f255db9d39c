"""Pure patch algorithms: JSON patch, merge patch, strategic merge patch."""

from __future__ import annotations

import copy

import pytest

from kybernetes.api import schema
from kybernetes.api.errors import StatusError
from kybernetes.api.patch import (
    MAX_OPERATIONS,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
    create_merge_patch,
)

DEFS = {
    "Pod": {"type": "object", "properties": {
        "metadata": {"$ref": "#/definitions/ObjectMeta"},
        "spec": {"$ref": "#/definitions/PodSpec"},
    }},
    "ObjectMeta": {"type": "object", "properties": {
        "name": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-patch-strategy": "merge"},
        "ownerReferences": {"type": "array", "items": {"type": "object"},
                            "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "uid"},
    }},
    "PodSpec": {"type": "object", "properties": {
        "containers": {"type": "array", "items": {"$ref": "#/definitions/Container"},
                       "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"},
        "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
        "tolerations": {"type": "array", "items": {"type": "object"}},
        "volumes": {"type": "array", "items": {"$ref": "#/definitions/Volume"},
                    "x-kubernetes-patch-strategy": "merge,retainKeys", "x-kubernetes-patch-merge-key": "name"},
    }},
    "Container": {"type": "object", "properties": {
        "name": {"type": "string"},
        "image": {"type": "string"},
        "args": {"type": "array", "items": {"type": "string"}},
        "env": {"type": "array", "items": {"type": "object"},
                "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"},
        "ports": {"type": "array", "items": {"type": "object"},
                  "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "containerPort"},
    }},
    "Volume": {"type": "object", "properties": {
        "name": {"type": "string"}, "emptyDir": {"type": "object"}, "hostPath": {"type": "object"},
    }},
    "Deployment": {"type": "object", "properties": {
        "metadata": {"$ref": "#/definitions/ObjectMeta"},
        "spec": {"type": "object", "properties": {
            "replicas": {"type": "integer"},
            "strategy": {"$ref": "#/definitions/DeploymentStrategy", "x-kubernetes-patch-strategy": "retainKeys"},
            "template": {"type": "object", "properties": {"spec": {"$ref": "#/definitions/PodSpec"}}},
        }},
    }},
    "DeploymentStrategy": {"type": "object", "properties": {
        "type": {"type": "string"}, "rollingUpdate": {"type": "object"},
    }},
}
POD = schema.for_openapi({"$ref": "#/definitions/Pod"}, DEFS)
DEPLOYMENT = schema.for_openapi({"$ref": "#/definitions/Deployment"}, DEFS)


def pod():
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "web", "tier": "front"}, "finalizers": ["a.io/x", "b.io/y"]},
        "spec": {"containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "sidecar", "image": "side:1"},
        ]},
    }


def smp(doc, patch, node=POD):
    before = copy.deepcopy(doc), copy.deepcopy(patch)
    out = apply_strategic_merge_patch(doc, patch, node)
    assert (doc, patch) == before, "inputs must be left untouched"
    return out


def names(items):
    return [i["name"] for i in items]


def expect_status(code, fn, *args):
    with pytest.raises(StatusError) as info:
        fn(*args)
    assert info.value.code == code, info.value
    assert info.value.status()["kind"] == "Status"
    return info.value


# --- JSON patch -----------------------------------------------------------------------------------------------------
def test_json_patch_operations():
    doc = {"metadata": {"name": "x", "labels": {"a/b": "1", "m~n": "2"}}, "list": [1, 2, 3]}
    ops = [
        {"op": "add", "path": "/list/-", "value": 4},
        {"op": "add", "path": "/list/0", "value": 0},
        {"op": "remove", "path": "/metadata/labels/a~1b"},
        {"op": "replace", "path": "/metadata/labels/m~0n", "value": "3"},
        {"op": "copy", "from": "/metadata/name", "path": "/metadata/generateName"},
        {"op": "move", "from": "/list/1", "path": "/first"},
        {"op": "test", "path": "/list", "value": [0, 2, 3, 4]},
        {"op": "test", "path": "/first", "value": 1},
    ]
    out = apply_json_patch(doc, ops)
    assert out == {"metadata": {"name": "x", "generateName": "x", "labels": {"m~n": "3"}},
                   "list": [0, 2, 3, 4], "first": 1}
    assert doc["list"] == [1, 2, 3] and "a/b" in doc["metadata"]["labels"]


def test_json_patch_whole_document_and_copy_independence():
    assert apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}]) == {"b": 2}
    out = apply_json_patch({"a": {"x": [1]}}, [{"op": "copy", "from": "/a", "path": "/b"},
                                               {"op": "add", "path": "/b/x/-", "value": 2}])
    assert out == {"a": {"x": [1]}, "b": {"x": [1, 2]}}


def test_json_patch_test_failure_is_422():
    doc = {"metadata": {"resourceVersion": "12"}}
    err = expect_status(422, apply_json_patch, doc,
                        [{"op": "test", "path": "/metadata/resourceVersion", "value": "11"}])
    assert err.reason == "Invalid"
    assert err.message == ('testing value /metadata/resourceVersion failed: test operation does not apply: '
                           'is: "12", expected: "11"')
    expect_status(422, apply_json_patch, {"a": 1}, [{"op": "test", "path": "/a", "value": True}])
    expect_status(422, apply_json_patch, {"a": 1}, [{"op": "test", "path": "/b", "value": 1}])


def test_json_patch_missing_path_is_422():
    for op in ({"op": "remove", "path": "/data/missing"},
               {"op": "replace", "path": "/data/missing", "value": 1},
               {"op": "add", "path": "/nope/deeper", "value": 1},
               {"op": "add", "path": "/list/5", "value": 1},
               {"op": "move", "from": "/data/missing", "path": "/x"},
               {"op": "remove", "path": "/list/01"}):
        err = expect_status(422, apply_json_patch, {"data": {"k": "v"}, "list": [1]}, [op])
        assert err.reason == "Invalid" and op["op"] in err.message


def test_json_patch_malformed_is_400():
    for ops in ({"op": "add"}, [{"op": "frobnicate", "path": "/a"}], [{"path": "/a"}], ["x"],
                [{"op": "add", "path": "a", "value": 1}], [{"op": "add", "path": "/a~2", "value": 1}],
                [{"op": "add", "path": "/a"}], [{"op": "move", "path": "/a"}]):
        err = expect_status(400, apply_json_patch, {"a": 1}, ops)
        assert err.reason == "BadRequest"


def test_json_patch_operation_limit():
    ops = [{"op": "test", "path": "/a", "value": 1}] * (MAX_OPERATIONS + 1)
    err = expect_status(413, apply_json_patch, {"a": 1}, ops)
    assert str(MAX_OPERATIONS) in err.message
    assert apply_json_patch({"a": 1}, ops[:MAX_OPERATIONS]) == {"a": 1}


# --- merge patch ----------------------------------------------------------------------------------------------------
def test_merge_patch():
    doc = pod()
    out = apply_merge_patch(doc, {"metadata": {"labels": {"tier": None, "new": "x"}},
                                  "spec": {"containers": [{"name": "only"}]}})
    assert out["metadata"]["labels"] == {"app": "web", "new": "x"}
    assert out["spec"]["containers"] == [{"name": "only"}]
    assert doc == pod()
    assert apply_merge_patch({"a": {"b": 1}}, {"a": 5}) == {"a": 5}
    assert apply_merge_patch({"a": 5}, {"a": {"b": None, "c": 1}}) == {"a": {"c": 1}}
    expect_status(400, apply_merge_patch, {"a": 1}, [1])


def test_create_merge_patch_round_trip():
    original = pod()
    modified = pod()
    modified["metadata"]["labels"].pop("tier")
    modified["metadata"]["labels"]["v"] = "2"
    modified["spec"]["containers"][1]["image"] = "side:2"
    modified["status"] = {"phase": "Running"}
    patch = create_merge_patch(original, modified)
    assert patch["metadata"] == {"labels": {"tier": None, "v": "2"}}
    assert "apiVersion" not in patch
    assert apply_merge_patch(original, patch) == modified
    assert create_merge_patch(original, original) == {}


# --- strategic merge patch ------------------------------------------------------------------------------------------
def test_containers_merge_by_name():
    out = smp(pod(), {"spec": {"containers": [{"name": "sidecar", "image": "side:2"}]}})
    containers = out["spec"]["containers"]
    assert names(containers) == ["app", "sidecar"]
    assert containers[0] == pod()["spec"]["containers"][0]
    assert containers[1] == {"name": "sidecar", "image": "side:2"}


def test_new_container_is_added_and_order_follows_upstream():
    out = smp(pod(), {"spec": {"containers": [{"name": "app", "image": "app:2"}, {"name": "new", "image": "n"}]}})
    # upstream order: patch items in patch order; a server-only item is slotted in before the
    # first patch item that comes after it on the server, and never before an item new to the list
    assert names(out["spec"]["containers"]) == ["app", "new", "sidecar"]
    assert out["spec"]["containers"][0]["env"] == pod()["spec"]["containers"][0]["env"]
    # upstream: a new item leading the patch goes before the server-only items
    out = smp(pod(), {"spec": {"containers": [{"name": "new", "image": "n"}]}})
    assert names(out["spec"]["containers"]) == ["new", "app", "sidecar"]


def test_patch_delete_removes_container():
    out = smp(pod(), {"spec": {"containers": [{"name": "app", "$patch": "delete"}]}})
    assert names(out["spec"]["containers"]) == ["sidecar"]
    err = expect_status(400, smp, pod(), {"spec": {"containers": [{"$patch": "delete"}]}})
    assert "merge key" in err.message


def test_patch_replace_list_and_map():
    out = smp(pod(), {"spec": {"containers": [{"name": "only", "image": "o"}, {"$patch": "replace"}]}})
    assert out["spec"]["containers"] == [{"name": "only", "image": "o"}]
    out = smp(pod(), {"metadata": {"labels": {"$patch": "replace", "fresh": "1"}}})
    assert out["metadata"]["labels"] == {"fresh": "1"}
    out = smp(pod(), {"metadata": {"labels": {"$patch": "delete"}}})
    assert "labels" not in out["metadata"]


def test_unknown_patch_directive_is_400():
    expect_status(400, smp, pod(), {"metadata": {"labels": {"$patch": "explode"}}})
    expect_status(400, smp, pod(), {"spec": {"containers": [{"name": "app", "$patch": "explode"}]}})
    expect_status(400, smp, pod(), {"spec": {"containers": [{"name": "app", "$patch": "merge"}]}})
    expect_status(400, smp, pod(), ["not", "an", "object"])


def test_set_element_order_reorders():
    patch = {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                      "containers": [{"name": "app", "image": "app:2"}]}}
    out = smp(pod(), patch)
    assert names(out["spec"]["containers"]) == ["sidecar", "app"]
    assert out["spec"]["containers"][1]["image"] == "app:2"
    assert "$setElementOrder/containers" not in out["spec"]
    # order alone, no list in the patch
    out = smp(pod(), {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]}})
    assert names(out["spec"]["containers"]) == ["sidecar", "app"]
    # primitive list
    out = smp(pod(), {"metadata": {"$setElementOrder/finalizers": ["b.io/y", "c.io/z", "a.io/x"],
                                   "finalizers": ["c.io/z"]}})
    assert out["metadata"]["finalizers"] == ["b.io/y", "c.io/z", "a.io/x"]


def test_env_merge_by_name():
    patch = {"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"},
                                                             {"name": "A", "$patch": "delete"}]}]}}
    out = smp(pod(), patch)
    app = out["spec"]["containers"][0]
    assert app["image"] == "app:1"
    assert app["env"] == [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]
    assert out["spec"]["containers"][1] == {"name": "sidecar", "image": "side:1"}


def test_finalizers_union_and_delete_from_primitive_list():
    out = smp(pod(), {"metadata": {"finalizers": ["b.io/y", "c.io/z"]}})
    assert out["metadata"]["finalizers"] == ["a.io/x", "b.io/y", "c.io/z"]
    out = smp(pod(), {"metadata": {"finalizers": ["a.io/x", "c.io/z"]}})
    assert out["metadata"]["finalizers"] == ["a.io/x", "c.io/z", "b.io/y"]
    out = smp(pod(), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/x"], "finalizers": ["d.io/w"]}})
    assert out["metadata"]["finalizers"] == ["d.io/w", "b.io/y"]
    assert not any(k.startswith("$") for k in out["metadata"])
    out = smp(pod(), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/x", "b.io/y"]}})
    assert out["metadata"]["finalizers"] == []


def test_retain_keys_switches_deployment_strategy():
    dep = {"spec": {"replicas": 2, "strategy": {"type": "RollingUpdate",
                                                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}}
    out = smp(dep, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}, DEPLOYMENT)
    assert out["spec"] == {"replicas": 2, "strategy": {"type": "Recreate"}}
    # without the directive, keys merge as usual
    out = smp(dep, {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}}, DEPLOYMENT)
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    expect_status(400, smp, dep, {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}, DEPLOYMENT)


def test_retain_keys_in_list_elements():
    doc = {"spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]}}
    patch = {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}}
    out = smp(doc, patch)
    assert out["spec"]["volumes"] == [{"name": "v", "hostPath": {"path": "/x"}}, {"name": "w", "emptyDir": {}}]


def test_null_deletes_label_and_maps_merge():
    out = smp(pod(), {"metadata": {"labels": {"tier": None, "env": "prod"}}})
    assert out["metadata"]["labels"] == {"app": "web", "env": "prod"}
    assert out["metadata"]["finalizers"] == pod()["metadata"]["finalizers"]


def test_lists_without_merge_strategy_replace():
    out = smp(pod(), {"spec": {"containers": [{"name": "app", "args": ["b"]}]}})
    assert out["spec"]["containers"][0]["args"] == ["b"]
    doc = pod()
    doc["spec"]["tolerations"] = [{"key": "a"}, {"key": "b"}]
    out = smp(doc, {"spec": {"tolerations": [{"key": "c"}]}})
    assert out["spec"]["tolerations"] == [{"key": "c"}]


def test_no_schema_behaves_like_merge_patch():
    doc = {"spec": {"items": [1, 2], "m": {"a": 1, "b": 2}}}
    patch = {"spec": {"items": [3], "m": {"a": None, "c": 3}}}
    assert smp(doc, patch, None) == apply_merge_patch(doc, patch) == {"spec": {"items": [3], "m": {"b": 2, "c": 3}}}
    # a field the schema does not know: same
    out = smp(pod(), {"spec": {"unknownList": [{"name": "x"}]}})
    assert out["spec"]["unknownList"] == [{"name": "x"}]


def test_directives_stripped_from_new_values():
    out = smp(pod(), {"spec": {"nodeSelector": {"$patch": "replace", "disk": "ssd", "gone": None}}})
    assert out["spec"]["nodeSelector"] == {"disk": "ssd"}
    doc = pod()
    del doc["spec"]["containers"]
    out = smp(doc, {"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]},
                                            {"name": "b", "$patch": "delete"}]}})
    assert out["spec"]["containers"] == [{"name": "a", "env": [{"name": "X", "value": "1"}]}]


def test_owner_references_merge_by_uid():
    doc = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}
    out = smp(doc, {"metadata": {"ownerReferences": [{"uid": "2", "controller": True}]}})
    assert out["metadata"]["ownerReferences"] == [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b", "controller": True}]
