"""Hostile and malformed input: always a Status with the right code and reason, never a 500,
never a partial write."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(120)

CM_PATH = "/api/v1/namespaces/default/configmaps"


def assert_status(status: int, body: dict, code: int, reason: str) -> None:
    assert status == code, (status, body)
    assert body.get("kind") == "Status", body
    assert body.get("code") == code and body.get("reason") == reason, body
    assert body.get("status") == "Failure"


@pytest.fixture(scope="module")
def base(cluster):
    status, body = cluster.request("POST", CM_PATH, {"metadata": {"name": "base"}, "data": {"k": "v"}})
    assert status == 201, body
    return cluster


def base_unchanged(c) -> None:
    status, body = c.request("GET", f"{CM_PATH}/base")
    assert status == 200 and body["data"] == {"k": "v"}, body


@pytest.mark.parametrize("payload", [b"{", b"[1,2", b"\xff\xfe", b"null", b"[]", b'"str"', b"{\"metadata\": 5}"])
def test_malformed_json_create(base, payload):
    status, body = base.request("POST", CM_PATH, payload)
    assert_status(status, body, 400, "BadRequest")


def test_malformed_yaml(base):
    status, body = base.request("POST", CM_PATH, b"metadata: [unclosed", content_type="application/yaml")
    assert_status(status, body, 400, "BadRequest")


def test_yaml_body_accepted(base):
    status, body = base.request("POST", CM_PATH, b"metadata:\n  name: from-yaml\ndata:\n  a: b\n",
                                content_type="application/yaml")
    assert status == 201 and body["data"] == {"a": "b"}


def test_wrong_kind_and_version(base):
    status, body = base.request("POST", CM_PATH, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})
    assert_status(status, body, 400, "BadRequest")
    status, body = base.request("POST", CM_PATH, {"apiVersion": "apps/v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "x"}})
    assert_status(status, body, 400, "BadRequest")
    assert base.request("GET", f"{CM_PATH}/x")[0] == 404


def test_unknown_fields_strict_warn_ignore(base):
    obj = {"metadata": {"name": "uf"}, "data": {}, "bogus": 1}
    status, body = base.request("POST", CM_PATH + "?fieldValidation=Strict", obj)
    assert_status(status, body, 400, "BadRequest")
    assert 'unknown field "bogus"' in body["message"]
    status, headers, data = base.raw("POST", CM_PATH + "?fieldValidation=Warn", json.dumps(obj).encode(),
                                     {"Content-Type": "application/json"})
    assert status == 201 and "bogus" in headers.get("Warning", "")
    created = json.loads(data)
    assert "bogus" not in created
    dup = b'{"metadata": {"name": "dup", "name": "dup2"}}'
    status, body = base.request("POST", CM_PATH + "?fieldValidation=Strict", dup)
    assert_status(status, body, 400, "BadRequest")
    assert 'duplicate field "metadata.name"' in body["message"]
    status, body = base.request("POST", CM_PATH + "?fieldValidation=Bogus", {"metadata": {"name": "q"}})
    assert_status(status, body, 400, "BadRequest")


def test_invalid_names_and_labels(base):
    status, body = base.request("POST", CM_PATH, {"metadata": {"name": "a" * 254}})
    assert_status(status, body, 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    status, body = base.request("POST", CM_PATH, {"metadata": {"name": "Bad_Name"}})
    assert_status(status, body, 422, "Invalid")
    status, body = base.request("POST", CM_PATH, {"metadata": {"name": "ok", "labels": {"a": "not valid!"}}})
    assert_status(status, body, 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.labels"
    status, body = base.request("POST", CM_PATH, {"metadata": {}})
    assert_status(status, body, 422, "Invalid")
    assert base.request("GET", f"{CM_PATH}/ok")[0] == 404


def test_body_too_large(base):
    big = {"metadata": {"name": "big"}, "data": {"x": "a" * (3 * 1024 * 1024 + 10)}}
    status, body = base.request("POST", CM_PATH, big)
    assert_status(status, body, 413, "RequestEntityTooLarge")
    assert base.request("GET", f"{CM_PATH}/big")[0] == 404


def test_large_allowed_body_is_read_whole(base):
    """A body that arrives in many TCP segments is read to its end (it was once cut at the first)."""
    payload = "".join(f"line {i:06d} of a large config map\n" for i in range(20000))  # ~700 KB
    status, body = base.request("POST", CM_PATH, {"metadata": {"name": "large"}, "data": {"x": payload}})
    assert status == 201, body
    status, got = base.request("GET", f"{CM_PATH}/large")
    assert status == 200 and got["data"]["x"] == payload
    assert base.request("DELETE", f"{CM_PATH}/large")[0] == 200


def test_stale_resource_version_conflict(base):
    status, cm = base.request("GET", f"{CM_PATH}/base")
    stale = dict(cm, data={"k": "changed"})
    stale["metadata"] = dict(cm["metadata"], resourceVersion="1")
    status, body = base.request("PUT", f"{CM_PATH}/base", stale)
    assert_status(status, body, 409, "Conflict")
    base_unchanged(base)


def test_name_mismatch_on_update(base):
    status, cm = base.request("GET", f"{CM_PATH}/base")
    other = dict(cm)
    other["metadata"] = dict(cm["metadata"], name="other")
    status, body = base.request("PUT", f"{CM_PATH}/base", other)
    assert_status(status, body, 400, "BadRequest")
    base_unchanged(base)


def test_patch_errors(base):
    path = f"{CM_PATH}/base"
    status, body = base.request("PATCH", path, {"data": {"k": "z"}}, content_type="text/plain")
    assert_status(status, body, 415, "UnsupportedMediaType")
    status, body = base.request("PATCH", path, b"{not json", content_type="application/merge-patch+json")
    assert_status(status, body, 400, "BadRequest")
    status, body = base.request("PATCH", path, [{"op": "test", "path": "/data/k", "value": "nope"}],
                                content_type="application/json-patch+json")
    assert_status(status, body, 422, "Invalid")
    status, body = base.request("PATCH", path, {"op": "add"}, content_type="application/json-patch+json")
    assert_status(status, body, 400, "BadRequest")
    status, body = base.request("PATCH", path, [{"op": "remove", "path": "/data/missing"}],
                                content_type="application/json-patch+json")
    assert status in (422, 400) and body["kind"] == "Status"
    status, body = base.request("PATCH", path, {"metadata": {"name": "renamed"}},
                                content_type="application/merge-patch+json")
    assert_status(status, body, 400, "BadRequest")
    base_unchanged(base)
    status, body = base.request("PATCH", f"{CM_PATH}/absent", {"data": {}},
                                content_type="application/merge-patch+json")
    assert_status(status, body, 404, "NotFound")


def test_strategic_merge_on_custom_resource_is_415(base):
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "things.bad.example.com"},
           "spec": {"group": "bad.example.com", "scope": "Namespaced",
                    "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object",
                                                                 "x-kubernetes-preserve-unknown-fields": True}}}]}}
    status, body = base.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert status == 201, body
    path = "/apis/bad.example.com/v1/namespaces/default/things"
    status, body = base.request("POST", path, {"apiVersion": "bad.example.com/v1", "kind": "Thing",
                                               "metadata": {"name": "t"}, "spec": {"a": 1}})
    assert status == 201, body
    status, body = base.request("PATCH", path + "/t", {"spec": {"a": 2}},
                                content_type="application/strategic-merge-patch+json")
    assert_status(status, body, 415, "UnsupportedMediaType")


def test_unauthenticated_and_not_acceptable(base):
    status, _, data = base.raw("GET", CM_PATH, client_cert=False)
    body = json.loads(data)
    assert_status(status, body, 401, "Unauthorized")
    status, _, data = base.raw("GET", "/healthz", client_cert=False)
    assert status == 200 and data == b"ok"
    status, body = base.request("GET", CM_PATH, headers={"Accept": "application/vnd.kubernetes.protobuf"})
    assert_status(status, body, 406, "NotAcceptable")


def test_unknown_paths_and_methods(base):
    status, body = base.request("GET", "/api/v1/nonsense")
    assert_status(status, body, 404, "NotFound")
    status, body = base.request("GET", "/apis/nogroup.example.com/v1/things")
    assert_status(status, body, 404, "NotFound")
    status, body = base.request("POST", f"{CM_PATH}/base", {"metadata": {"name": "base"}})
    assert_status(status, body, 405, "MethodNotAllowed")
    status, body = base.request("GET", "/api/v1/namespaces/missing/configmaps/x")
    assert_status(status, body, 404, "NotFound")
    status, body = base.request("POST", "/api/v1/namespaces/missing/configmaps", {"metadata": {"name": "x"}})
    assert_status(status, body, 404, "NotFound")


def test_bad_query_parameters(base):
    status, body = base.request("GET", CM_PATH + "?labelSelector=a%20in%20(")
    assert_status(status, body, 400, "BadRequest")
    status, body = base.request("GET", CM_PATH + "?fieldSelector=spec.bogus%3Dx")
    assert_status(status, body, 400, "BadRequest")
    status, body = base.request("GET", CM_PATH + "?limit=abc")
    assert_status(status, body, 400, "BadRequest")
    status, body = base.request("GET", CM_PATH + "?limit=1&continue=%%%")
    assert_status(status, body, 400, "BadRequest")
    status, body = base.request("POST", CM_PATH + "?dryRun=Some", {"metadata": {"name": "dr"}})
    assert_status(status, body, 400, "BadRequest")
    status, body = base.request("DELETE", f"{CM_PATH}/base", {"propagationPolicy": "Sideways"})
    assert_status(status, body, 422, "Invalid")
    base_unchanged(base)


def test_dry_run_writes_nothing(base):
    status, body = base.request("POST", CM_PATH + "?dryRun=All", {"metadata": {"name": "dry"}})
    assert status == 201 and body["metadata"]["name"] == "dry"
    assert base.request("GET", f"{CM_PATH}/dry")[0] == 404
    status, body = base.request("DELETE", f"{CM_PATH}/base?dryRun=All")
    assert status == 200
    base_unchanged(base)


POD_PATH = "/api/v1/namespaces/default/pods"


def _typed_pod(name: str, image) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": image}]}}


@pytest.mark.parametrize("validation", ["Strict", "Warn", "Ignore"])
def test_wrong_json_type_is_refused_like_gos_decoder(base, validation):
    status, body = base.request("POST", f"{POD_PATH}?fieldValidation={validation}", _typed_pod("typed", 5))
    assert_status(status, body, 400, "BadRequest")
    assert body["message"] == ('Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number into '
                               "Go struct field Container.spec.containers.image of type string"), body
    status, body = base.request("PUT", f"{CM_PATH}/base", {"metadata": {"name": "base"}, "data": {"k": ["v"]}})
    assert_status(status, body, 400, "BadRequest")
    assert body["message"].endswith("cannot unmarshal array into Go struct field ConfigMap.data of type string")
    assert base.request("GET", f"{POD_PATH}/typed")[0] == 404
    base_unchanged(base)


def test_wrong_json_type_through_kubectl_and_patch(base):
    proc = base.kubectl("apply", "-f", "-", input=json.dumps(_typed_pod("typed-k", 5)), check=False)
    assert proc.returncode != 0
    assert ('Error from server (BadRequest): error when creating "STDIN": Pod in version "v1" cannot be handled '
            "as a Pod: json: cannot unmarshal number into Go struct field Container.spec.containers.image of type "
            "string") in proc.stderr, proc.stderr
    status, body = base.request("PATCH", f"{CM_PATH}/base", {"data": {"k": 7}},
                                content_type="application/merge-patch+json")
    assert_status(status, body, 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "patch", body
    assert "cannot unmarshal number into Go struct field ConfigMap.data of type string" in body["message"]
    base_unchanged(base)
