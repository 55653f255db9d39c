"""CEL validation rules (`x-kubernetes-validations`) of a CRD, through kubectl and the REST API."""

from __future__ import annotations

import json

import pytest

from kybernetes.api import celrules

from .cluster import manifest, wait_until

pytestmark = pytest.mark.timeout(120)

NS = "rules"
BASE = f"/apis/example.com/v1/namespaces/{NS}/scalers"
SPEC = {"type": "object", "x-kubernetes-validations": [
    {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
    {"rule": "self.mode == oldSelf.mode", "message": "mode is immutable", "reason": "FieldValueForbidden",
     "fieldPath": ".mode"}],
    "properties": {
        "minReplicas": {"type": "integer"}, "maxReplicas": {"type": "integer"},
        "mode": {"type": "string"},
        "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('app-')"}]},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "required": ["name"], "properties": {
                      "name": {"type": "string"}, "port": {"type": "integer"}},
                      "x-kubernetes-validations": [{"rule": "self.port > 0 && self.port < 65536",
                                                    "messageExpression": "'port ' + string(self.port) + "
                                                                         "' is out of range'"}]}}}}
CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "scalers.example.com"},
       "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "scalers", "singular": "scaler", "kind": "Scaler"},
                "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                    "type": "object", "properties": {"spec": SPEC}}}}]}}


def _scaler(object_name: str, **spec) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Scaler", "metadata": {"name": object_name, "namespace": NS},
            "spec": {"minReplicas": 1, "maxReplicas": 3, "mode": "fast", "name": "app-x", **spec}}


@pytest.fixture(scope="module")
def rules(cluster):
    cluster.kubectl("apply", "-f", "-", input=manifest(CRD, {"apiVersion": "v1", "kind": "Namespace",
                                                              "metadata": {"name": NS}}))
    wait_until(lambda: cluster.request("GET", BASE)[0] == 200, timeout=10, what="scalers served")
    return cluster


def test_rules_pass_and_fail_on_create(rules):
    code, body = rules.request("POST", BASE, _scaler("ok", ports=[{"name": "http", "port": 80}]))
    assert code == 201, body
    proc = rules.kubectl("apply", "-f", "-", input=json.dumps(_scaler("bad", minReplicas=5)), check=False)
    assert proc.returncode != 0
    assert ('The Scaler "bad" is invalid: spec: Invalid value: "object": minReplicas must not exceed maxReplicas'
            in proc.stderr), proc.stderr
    code, body = rules.request("POST", BASE, _scaler("bad2", name="x", ports=[{"name": "a", "port": 70000}]))
    assert code == 422, body
    assert {(c["field"], c["message"]) for c in body["details"]["causes"]} == {
        ("spec.name", 'Invalid value: "string": failed rule: self.startsWith(\'app-\')'),
        ("spec.ports[0]", 'Invalid value: "object": port 70000 is out of range')}, body
    for name in ("bad", "bad2"):
        assert rules.request("GET", f"{BASE}/{name}")[0] == 404


def test_transition_rule_on_update_only(rules):
    code, body = rules.request("POST", BASE, _scaler("moving"))
    assert code == 201, body
    proc = rules.kubectl("patch", "scaler", "moving", "-n", NS, "--type", "merge", "-p",
                         '{"spec": {"mode": "slow"}}', check=False)
    assert proc.returncode != 0
    assert 'The Scaler "moving" is invalid: spec.mode: Forbidden: mode is immutable' in proc.stderr, proc.stderr
    out = rules.kubectl("patch", "scaler", "moving", "-n", NS, "--type", "merge", "-p",
                        '{"spec": {"maxReplicas": 9}}').stdout
    assert "patched" in out
    assert rules.kubectl_json("get", "scaler", "moving", "-n", NS)["spec"]["mode"] == "fast"


def test_wrong_type_blocks_the_rules(rules):
    code, body = rules.request("POST", BASE, _scaler("typed", minReplicas="one"))
    assert code == 422, body
    messages = [c["message"] for c in body["details"]["causes"]]
    assert any("must be of type integer" in m for m in messages), messages
    assert any("some validation rules were not checked" in m for m in messages), messages


def test_a_rule_that_does_not_compile_is_refused_with_the_crd(rules):
    bad = json.loads(json.dumps(CRD))
    bad["metadata"]["name"] = "brokens.example.com"
    bad["spec"]["names"] = {"plural": "brokens", "singular": "broken", "kind": "Broken"}
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] = [
        {"rule": "self.minReplicas <="}]
    code, body = rules.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", bad)
    assert code == 422, body
    cause = body["details"]["causes"][0]
    assert cause["field"].endswith("x-kubernetes-validations[0].rule"), cause
    assert "compilation failed" in cause["message"], cause


def test_check_unit():
    schema = {"type": "object", "properties": {"spec": SPEC}}
    ok = {"spec": {"minReplicas": 1, "maxReplicas": 2, "mode": "a", "name": "app-1"}}
    assert celrules.check(ok, schema) == []
    assert celrules.check(ok, schema, {"spec": {**ok["spec"], "mode": "b"}})[0].message() == (
        "spec.mode: Forbidden: mode is immutable")
    # a list-map item correlates with the old item of the same key, and only that one
    assert celrules.has_rules(schema) and not celrules.has_rules({"type": "object"})
