"""Field ownership and server-side apply (kybernetes.api.managedfields)."""

from __future__ import annotations

import copy

import pytest

from kybernetes.api import managedfields as mf
from kybernetes.api import schema
from kybernetes.api.errors import StatusError

T0 = "2024-01-01T00:00:00Z"
T1 = "2024-01-01T00:01:00Z"
T2 = "2024-01-01T00:02:00Z"

CONTAINER = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "image": {"type": "string"},
        "args": {"type": "array", "items": {"type": "string"}},
    },
}
DEPLOY = schema.for_openapi({
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "resourceVersion": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "managedFields": {"type": "array", "items": {"type": "object"}},
            },
        },
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer"},
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                             "properties": {"matchLabels": {"type": "object",
                                                            "additionalProperties": {"type": "string"}}}},
                "containers": {"type": "array", "items": CONTAINER, "x-kubernetes-list-type": "map",
                               "x-kubernetes-list-map-keys": ["name"]},
            },
        },
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
    },
})


def deploy(**spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": spec}


def entry(obj: dict, manager: str, operation: str | None = None) -> dict:
    found = [e for e in obj["metadata"].get("managedFields", [])
             if e["manager"] == manager and (operation is None or e["operation"] == operation)]
    assert len(found) == 1, obj["metadata"].get("managedFields")
    return found[0]


def managers(obj: dict) -> list[tuple[str, str]]:
    return [(e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields", [])]


# --- field sets --------------------------------------------------------------------------------------
def test_fields_of_and_fieldsv1_round_trip():
    obj = deploy(replicas=2, containers=[{"name": "nginx", "image": "nginx:1"}])
    obj["metadata"]["labels"] = {"app": "web"}
    obj["status"] = {"replicas": 1}
    paths = mf.fields_of(obj, DEPLOY)
    assert paths == {
        ("f:metadata", "f:labels", "f:app"),
        ("f:spec", "f:replicas"),
        ("f:spec", "f:containers", 'k:{"name":"nginx"}'),
        ("f:spec", "f:containers", 'k:{"name":"nginx"}', "f:name"),
        ("f:spec", "f:containers", 'k:{"name":"nginx"}', "f:image"),
    }
    v1 = mf.to_fields_v1(paths)
    assert v1 == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:containers": {'k:{"name":"nginx"}': {".": {}, "f:image": {}, "f:name": {}}}, "f:replicas": {}},
    }
    assert mf.from_fields_v1(v1) == paths
    assert mf.fields_of(obj, DEPLOY, subresource="status") == {("f:status", "f:replicas")}


def test_fields_without_schema_and_sets():
    obj = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "a", "finalizers": ["a", "b"]},
           "spec": {"list": [1, 2], "m": {"k": "v"}}}
    assert mf.fields_of(obj, None) == {
        ("f:metadata", "f:finalizers"),
        ("f:spec",), ("f:spec", "f:list"), ("f:spec", "f:m"), ("f:spec", "f:m", "f:k"),
    }
    assert ("f:metadata", "f:finalizers", 'v:"a"') in mf.fields_of(obj, DEPLOY)
    assert mf.path_string(("f:spec", "f:containers", 'k:{"name":"a"}', "f:image")) == '.spec.containers[name="a"].image'
    assert mf.path_string(("f:metadata", "f:finalizers", 'v:"a"')) == '.metadata.finalizers[="a"]'


def test_builtin_schema_keys():
    node = schema.for_kind("apps", "v1", "Deployment")
    assert node is not None, "schema_data.json has no apps/v1 Deployment"
    obj = deploy(template={"spec": {"containers": [{"name": "c", "image": "i",
                                                     "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}})
    paths = mf.fields_of(obj, node)
    assert ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"c"}', "f:ports",
            'k:{"containerPort":80,"protocol":"TCP"}', "f:protocol") in paths


# --- update ------------------------------------------------------------------------------------------
def test_create_and_update_ownership():
    obj = deploy(replicas=1, containers=[{"name": "a", "image": "a:1"}])
    mf.update_managed_fields(None, obj, "kubectl-create", "apps/v1", "Update", DEPLOY, now=T0)
    e = entry(obj, "kubectl-create")
    assert e == {"manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": T0,
                 "fieldsType": "FieldsV1", "fieldsV1": mf.to_fields_v1(mf.fields_of(obj, DEPLOY))}

    new = copy.deepcopy(obj)
    new["spec"]["replicas"] = 3
    mf.update_managed_fields(obj, new, "kubectl-edit", "apps/v1", "Update", DEPLOY, now=T1)
    assert managers(new) == [("kubectl-create", "Update"), ("kubectl-edit", "Update")]
    assert mf.from_fields_v1(entry(new, "kubectl-edit")["fieldsV1"]) == {("f:spec", "f:replicas")}
    assert ("f:spec", "f:replicas") not in mf.from_fields_v1(entry(new, "kubectl-create")["fieldsV1"])
    assert entry(new, "kubectl-create")["time"] == T0

    # a write changing nothing leaves everything alone (no entry for the writer)
    same = copy.deepcopy(new)
    mf.update_managed_fields(new, same, "noop", "apps/v1", "Update", DEPLOY, now=T2)
    assert same["metadata"]["managedFields"] == new["metadata"]["managedFields"]

    # removing a field drops it from its owner; empty entries disappear
    gone = copy.deepcopy(new)
    del gone["spec"]["replicas"]
    mf.update_managed_fields(new, gone, "other", "apps/v1", "Update", DEPLOY, now=T2)
    assert managers(gone) == [("kubectl-create", "Update")]


def test_update_managed_fields_reset_and_subresource():
    obj = deploy(replicas=1)
    mf.update_managed_fields(None, obj, "a", "apps/v1", "Update", DEPLOY, now=T0)
    new = copy.deepcopy(obj)
    new["metadata"]["managedFields"] = [{}]
    mf.update_managed_fields(obj, new, "b", "apps/v1", "Update", DEPLOY, now=T1)
    assert "managedFields" not in new["metadata"]

    st = copy.deepcopy(obj)
    st["status"] = {"replicas": 1}
    st["metadata"]["managedFields"] = []  # ignored on a subresource
    mf.update_managed_fields(obj, st, "ctrl", "apps/v1", "Update", DEPLOY, subresource="status", now=T1)
    e = entry(st, "ctrl")
    assert e["subresource"] == "status"
    assert mf.from_fields_v1(e["fieldsV1"]) == {("f:status", "f:replicas")}
    assert managers(st) == [("a", "Update"), ("ctrl", "Update")]


# --- apply -------------------------------------------------------------------------------------------
def test_apply_create_records_apply_entry():
    cfg = deploy(replicas=1)
    cfg["metadata"]["labels"] = {"app": "web", "tier": "fe"}
    obj = mf.apply(None, cfg, "kubectl", "apps/v1", DEPLOY, force=False, now=T0)
    assert obj["spec"] == {"replicas": 1}
    e = entry(obj, "kubectl", "Apply")
    assert e["time"] == T0 and e["apiVersion"] == "apps/v1" and "subresource" not in e
    assert mf.from_fields_v1(e["fieldsV1"]) == {("f:metadata", "f:labels", "f:app"),
                                                ("f:metadata", "f:labels", "f:tier"), ("f:spec", "f:replicas")}


def test_apply_again_removes_dropped_label():
    cfg = deploy(replicas=1)
    cfg["metadata"]["labels"] = {"app": "web", "tier": "fe"}
    obj = mf.apply(None, cfg, "kubectl", "apps/v1", DEPLOY, force=False, now=T0)
    cfg2 = copy.deepcopy(cfg)
    del cfg2["metadata"]["labels"]["tier"]
    obj2 = mf.apply(obj, cfg2, "kubectl", "apps/v1", DEPLOY, force=False, now=T1)
    assert obj2["metadata"]["labels"] == {"app": "web"}
    assert mf.from_fields_v1(entry(obj2, "kubectl", "Apply")["fieldsV1"]) == {
        ("f:metadata", "f:labels", "f:app"), ("f:spec", "f:replicas")}
    assert entry(obj2, "kubectl", "Apply")["time"] == T1

    # identical re-apply is a no-op: same object, same timestamps
    assert mf.apply(obj2, cfg2, "kubectl", "apps/v1", DEPLOY, force=False, now=T2) == obj2


def test_dropped_field_kept_when_another_manager_owns_it():
    obj = mf.apply(None, deploy(replicas=2), "a", "apps/v1", DEPLOY, force=False, now=T0)
    obj = mf.apply(obj, deploy(replicas=2), "b", "apps/v1", DEPLOY, force=False, now=T1)  # shared
    assert len(obj["metadata"]["managedFields"]) == 2
    bare = deploy()
    del bare["spec"]
    obj = mf.apply(obj, bare, "a", "apps/v1", DEPLOY, force=False, now=T2)
    assert obj["spec"]["replicas"] == 2
    assert managers(obj) == [("b", "Apply")]


def test_apply_conflict_and_force():
    obj = mf.apply(None, deploy(replicas=1), "a", "apps/v1", DEPLOY, force=False, now=T0)
    with pytest.raises(StatusError) as info:
        mf.apply(obj, deploy(replicas=5), "b", "apps/v1", DEPLOY, force=False, now=T1)
    err = info.value
    assert err.code == 409 and err.reason == "Conflict"
    assert err.message == 'Apply failed with 1 conflict: conflict with "a": .spec.replicas'
    assert err.details == {"causes": [{"reason": "FieldManagerConflict", "message": 'conflict with "a"',
                                       "field": ".spec.replicas"}]}
    assert err.status()["details"]["causes"][0]["field"] == ".spec.replicas"

    forced = mf.apply(obj, deploy(replicas=5), "b", "apps/v1", DEPLOY, force=True, now=T1)
    assert forced["spec"]["replicas"] == 5
    assert managers(forced) == [("b", "Apply")]
    assert obj["spec"]["replicas"] == 1  # inputs untouched


def test_update_then_apply_conflict_message():
    obj = deploy(replicas=1)
    mf.update_managed_fields(None, obj, "kubectl-client-side-apply", "apps/v1", "Update", DEPLOY, now=T0)
    edited = copy.deepcopy(obj)
    edited["spec"]["replicas"] = 2
    edited["spec"]["containers"] = [{"name": "c", "image": "x"}]
    mf.update_managed_fields(obj, edited, "kubectl-edit", "apps/v1", "Update", DEPLOY, now=T1)

    with pytest.raises(StatusError) as info:
        mf.apply(edited, deploy(replicas=3), "kubectl", "apps/v1", DEPLOY, force=False, now=T2)
    assert info.value.message == 'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas'
    assert info.value.details["causes"][0]["message"] == 'conflict with "kubectl-edit" using apps/v1'

    with pytest.raises(StatusError) as info:
        mf.apply(edited, deploy(replicas=3, containers=[{"name": "c", "image": "y"}]), "kubectl", "apps/v1",
                 DEPLOY, force=False, now=T2)
    assert info.value.message == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-edit" using apps/v1:\n'
        '- .spec.containers[name="c"].image\n- .spec.replicas'
    )
    assert len(info.value.details["causes"]) == 2

    # same value -> no conflict, shared ownership
    shared = mf.apply(edited, deploy(replicas=2), "kubectl", "apps/v1", DEPLOY, force=False, now=T2)
    assert ("f:spec", "f:replicas") in mf.from_fields_v1(entry(shared, "kubectl-edit")["fieldsV1"])
    assert ("f:spec", "f:replicas") in mf.from_fields_v1(entry(shared, "kubectl", "Apply")["fieldsV1"])
    assert managers(shared)[0] == ("kubectl", "Apply")  # Apply entries sort first


def test_list_map_merge_by_key_between_managers():
    obj = mf.apply(None, deploy(containers=[{"name": "a", "image": "a:1"}]), "ma", "apps/v1", DEPLOY, False, T0)
    obj = mf.apply(obj, deploy(containers=[{"name": "b", "image": "b:1"}]), "mb", "apps/v1", DEPLOY, False, T1)
    assert obj["spec"]["containers"] == [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]
    owned_b = mf.from_fields_v1(entry(obj, "mb")["fieldsV1"])
    assert all('k:{"name":"b"}' in p for p in owned_b)

    obj = mf.apply(obj, deploy(containers=[{"name": "a", "image": "a:2", "args": ["x"]}]), "ma", "apps/v1",
                   DEPLOY, False, T2)
    assert obj["spec"]["containers"] == [{"name": "a", "image": "a:2", "args": ["x"]}, {"name": "b", "image": "b:1"}]

    # mb stops applying its container: it goes away; ma's stays
    obj = mf.apply(obj, deploy(replicas=1), "mb", "apps/v1", DEPLOY, False, T2)
    assert [c["name"] for c in obj["spec"]["containers"]] == ["a"]

    # atomic list replaced wholesale
    obj = mf.apply(obj, deploy(containers=[{"name": "a", "image": "a:2", "args": ["y"]}]), "ma", "apps/v1",
                   DEPLOY, False, T2)
    assert obj["spec"]["containers"][0]["args"] == ["y"]


def test_set_list_union_and_atomic_map():
    cfg = deploy()
    cfg["metadata"]["finalizers"] = ["a/x"]
    obj = mf.apply(None, cfg, "m1", "apps/v1", DEPLOY, False, T0)
    cfg2 = deploy(selector={"matchLabels": {"app": "web"}})
    cfg2["metadata"]["finalizers"] = ["b/y"]
    obj = mf.apply(obj, cfg2, "m2", "apps/v1", DEPLOY, False, T1)
    assert obj["metadata"]["finalizers"] == ["a/x", "b/y"]
    assert ("f:spec", "f:selector") in mf.from_fields_v1(entry(obj, "m2")["fieldsV1"])
    with pytest.raises(StatusError):
        mf.apply(obj, deploy(selector={"matchLabels": {"app": "web", "x": "y"}}), "m3", "apps/v1", DEPLOY, False, T2)
    cfg2["metadata"]["finalizers"] = []
    obj = mf.apply(obj, cfg2, "m2", "apps/v1", DEPLOY, False, T2)
    assert obj["metadata"]["finalizers"] == ["a/x"]


def test_apply_validation_and_status_ignored():
    with pytest.raises(StatusError) as info:
        mf.apply(None, {"kind": "Deployment", "metadata": {"name": "x"}}, "m", "apps/v1", DEPLOY, False)
    assert info.value.code == 400
    with pytest.raises(StatusError) as info:
        mf.apply(None, {"apiVersion": "apps/v1", "metadata": {"name": "x"}}, "m", "apps/v1", DEPLOY, False)
    assert info.value.code == 400
    cfg = deploy(replicas=1)
    cfg["status"] = {"replicas": 9}
    obj = mf.apply(None, cfg, "m", "apps/v1", DEPLOY, False, T0)
    assert "status" not in obj
    assert entry(obj, "m")["time"] == T0
    assert mf.apply(None, deploy(replicas=1), "m", "apps/v1", DEPLOY, False)["metadata"]["managedFields"][0]["time"]


def test_update_records_created_maps():
    obj = deploy(replicas=1)
    obj["metadata"]["labels"] = {"app": "web"}
    mf.update_managed_fields(None, obj, "kubectl-create", "apps/v1", "Update", DEPLOY, now=T0)
    assert entry(obj, "kubectl-create")["fieldsV1"]["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    new = copy.deepcopy(obj)
    new["metadata"]["labels"]["tier"] = "fe"
    mf.update_managed_fields(obj, new, "kubectl-label", "apps/v1", "Update", DEPLOY, now=T1)
    assert entry(new, "kubectl-label")["fieldsV1"] == {"f:metadata": {"f:labels": {"f:tier": {}}}}
    # managedFields sent by the client replace the live ones when they differ
    custom = copy.deepcopy(new)
    custom["metadata"]["managedFields"] = [e for e in new["metadata"]["managedFields"] if e["manager"] == "kubectl-label"]
    mf.update_managed_fields(new, custom, "x", "apps/v1", "Update", DEPLOY, now=T2)
    assert managers(custom) == [("kubectl-label", "Update")]
