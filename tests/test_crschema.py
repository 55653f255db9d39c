"""Custom objects against structural schemas: pruning, defaulting, validation messages."""

from __future__ import annotations

import copy

from kybernetes.api import cropenapi, crschema

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["cronSpec", "image"],
            "properties": {
                "cronSpec": {"type": "string", "pattern": "^[0-9*/ ]+$", "maxLength": 20},
                "image": {"type": "string", "minLength": 1},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                "mode": {"type": "string", "enum": ["Allow", "Forbid"]},
                "port": {"x-kubernetes-int-or-string": True},
                "since": {"type": "string", "format": "date-time"},
                "note": {"type": "string", "nullable": True},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "minItems": 1,
                         "x-kubernetes-list-type": "set"},
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string"},
                        "protocol": {"type": "string", "default": "TCP"},
                    }},
                },
                "env": {"type": "object", "additionalProperties": {
                    "type": "object", "properties": {"value": {"type": "string", "default": "unset"}}}},
                "template": {"type": "object", "default": {}, "properties": {
                    "restart": {"type": "string", "default": "Always"},
                    "limits": {"type": "object", "properties": {"cpu": {"type": "string", "default": "1"}}},
                }},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                          "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
            },
        },
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
    },
}


def crontab(**spec) -> dict:
    body = {"cronSpec": "*/5 * * * *", "image": "busybox"}
    body.update(spec)
    return {"apiVersion": "stable.example.com/v1", "kind": "CronTab",
            "metadata": {"name": "c", "namespace": "default"}, "spec": body}


def messages(obj: dict) -> list[str]:
    return [e.message() for e in crschema.validate(obj, SCHEMA)]


def test_valid_object():
    assert messages(crontab(replicas=3, mode="Allow", port="http", tags=["a"], note=None)) == []


def test_missing_required_field():
    obj = crontab()
    del obj["spec"]["image"]
    errs = crschema.validate(obj, SCHEMA)
    assert [e.message() for e in errs] == ["spec.image: Required value"]
    assert errs[0].reason == "FieldValueRequired"


def test_wrong_type():
    errs = crschema.validate(crontab(replicas="three"), SCHEMA)
    assert [e.message() for e in errs] == [
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'
    ]
    assert errs[0].reason == "FieldValueInvalid"
    assert messages(crontab(replicas=2.0)) == []  # an integral JSON number is an integer
    assert messages(crontab(replicas=None)) == [
        'spec.replicas: Invalid value: "null": spec.replicas in body must be of type integer: "null"'
    ]


def test_enum_violation():
    errs = crschema.validate(crontab(mode="Replace"), SCHEMA)
    assert [e.message() for e in errs] == [
        'spec.mode: Unsupported value: "Replace": supported values: "Allow", "Forbid"'
    ]
    assert errs[0].reason == "FieldValueNotSupported"


def test_numeric_bounds():
    assert messages(crontab(replicas=0)) == [
        "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
    ]
    assert messages(crontab(replicas=11)) == [
        "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"
    ]
    exclusive = {"type": "object", "properties": {"x": {"type": "number", "minimum": 0.5, "exclusiveMinimum": True,
                                                        "multipleOf": 0.5}}}
    assert [e.message() for e in crschema.validate({"x": 0.5}, exclusive)] == [
        "x: Invalid value: 0.5: x in body should be greater than 0.5"
    ]
    assert [e.message() for e in crschema.validate({"x": 1.2}, exclusive)] == [
        "x: Invalid value: 1.2: x in body should be a multiple of 0.5"
    ]


def test_string_rules():
    assert messages(crontab(image="")) == [
        'spec.image: Invalid value: "": spec.image in body should be at least 1 chars long'
    ]
    assert messages(crontab(cronSpec="every minute")) == [
        "spec.cronSpec: Invalid value: \"every minute\": spec.cronSpec in body should match '^[0-9*/ ]+$'"
    ]
    assert messages(crontab(cronSpec="1" * 21)) == ["spec.cronSpec: Too long: may not be more than 20 bytes"]


def test_format_date_time():
    assert messages(crontab(since="2026-11-24T10:00:00Z")) == []
    assert messages(crontab(since="yesterday")) == [
        'spec.since: Invalid value: "yesterday": spec.since in body must be of type date-time: "yesterday"'
    ]


def test_int_or_string_and_nullable():
    assert messages(crontab(port=8080)) == []
    assert messages(crontab(port="http")) == []
    assert messages(crontab(port=True)) == [
        'spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"'
    ]
    assert messages(crontab(note=None)) == []


def test_array_rules_and_list_types():
    assert messages(crontab(tags=[])) == [
        "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"
    ]
    errs = crschema.validate(crontab(tags=["a", "b", "c"]), SCHEMA)
    assert [(e.type, e.field, e.detail) for e in errs] == [("too_many", "spec.tags", "must have at most 2 items")]
    assert messages(crontab(tags=["a", "a"])) == ['spec.tags[1]: Duplicate value: "a"']
    dup_ports = crontab(ports=[{"name": "http"}, {"name": "http", "protocol": "UDP"}])
    errs = crschema.validate(dup_ports, SCHEMA)
    assert [(e.type, e.field, e.bad_value) for e in errs] == [("duplicate", "spec.ports[1]", {"name": "http"})]
    assert messages(crontab(ports=[{"protocol": "TCP"}])) == ["spec.ports[0].name: Required value"]


def test_composition_keywords():
    schema = {"type": "object", "properties": {"x": {"type": "string", "anyOf": [{"enum": ["a"]}, {"enum": ["b"]}],
                                                     "not": {"enum": ["z"]}}}}
    assert crschema.validate({"x": "a"}, schema) == []
    errs = [e.message() for e in crschema.validate({"x": "c"}, schema)]
    assert 'Invalid value: "": "x" must validate at least one schema (anyOf)' in errs
    assert 'x: Unsupported value: "c": supported values: "a"' in errs
    errs = [e.message() for e in crschema.validate({"x": "z"}, schema)]
    assert 'Invalid value: "": "x" must not validate the schema (not)' in errs


def test_prune_unknown_fields():
    obj = crontab(bogus=1, ports=[{"name": "a", "nope": True}], extra={"anything": {"deep": 1}, "known": {"a": "x", "b": 1}})
    obj["junk"] = "x"
    obj["metadata"]["whatever"] = 1
    assert crschema.unknown_fields(obj, SCHEMA) == ["junk", "spec.bogus", "spec.extra.known.b", "spec.ports[0].nope"]
    assert "bogus" in obj["spec"]  # unknown_fields does not modify
    pruned = crschema.prune(obj, SCHEMA)
    assert pruned == ["junk", "spec.bogus", "spec.extra.known.b", "spec.ports[0].nope"]
    assert "junk" not in obj and "bogus" not in obj["spec"]
    assert obj["spec"]["ports"] == [{"name": "a"}]
    # preserve-unknown-fields keeps unknown content, apiVersion/kind/metadata are never pruned
    assert obj["spec"]["extra"] == {"anything": {"deep": 1}, "known": {"a": "x"}}
    assert obj["apiVersion"] == "stable.example.com/v1" and obj["kind"] == "CronTab"
    assert obj["metadata"] == {"name": "c", "namespace": "default", "whatever": 1}


def test_prune_without_schema_keeps_only_type_and_object_meta():
    obj = {"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"}, "spec": {"a": 1}}
    assert crschema.prune(obj, None) == ["spec"]
    assert obj == {"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"}}


def test_defaults_nested_items_and_additional_properties():
    obj = crontab(ports=[{"name": "http"}, {"name": "dns", "protocol": "UDP"}], env={"A": {}, "B": {"value": "b"}})
    crschema.apply_defaults(obj, SCHEMA)
    spec = obj["spec"]
    assert spec["ports"] == [{"name": "http", "protocol": "TCP"}, {"name": "dns", "protocol": "UDP"}]
    assert spec["env"] == {"A": {"value": "unset"}, "B": {"value": "b"}}
    # a defaulted object is itself defaulted; nested objects that are absent stay absent
    assert spec["template"] == {"restart": "Always"}
    obj = crontab(template={"limits": {}})
    crschema.apply_defaults(obj, SCHEMA)
    assert obj["spec"]["template"] == {"limits": {"cpu": "1"}, "restart": "Always"}


def test_defaults_do_not_override_and_are_copies():
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "list": {"type": "array", "items": {"type": "string"}, "default": ["a"]}}}}}
    one, two = {"spec": {}}, {"spec": {}}
    crschema.apply_defaults(one, schema)
    crschema.apply_defaults(two, schema)
    one["spec"]["list"].append("b")
    assert two["spec"]["list"] == ["a"]
    kept = {"spec": {"list": []}}
    crschema.apply_defaults(kept, schema)
    assert kept["spec"]["list"] == []


def test_null_handling_in_defaulting():
    obj = crontab(replicas=None, note=None)
    obj["spec"]["template"] = None
    crschema.apply_defaults(obj, SCHEMA)
    assert "replicas" not in obj["spec"]  # non-nullable null without default is dropped
    assert obj["spec"]["note"] is None  # nullable null is kept
    assert obj["spec"]["template"] == {"restart": "Always"}  # non-nullable null with default is defaulted


def test_validate_with_prefix_reports_under_it():
    errs = crschema.validate("x", {"type": "integer"}, prefix="spec.validation.openAPIV3Schema.default")
    assert [e.message() for e in errs] == [
        'spec.validation.openAPIV3Schema.default: Invalid value: "string":  in body must be of type integer: "string"'
    ]


def test_openapi_schema_for_cr():
    crd = {"spec": {"group": "stable.example.com", "names": {"kind": "CronTab", "plural": "crontabs"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": copy.deepcopy(SCHEMA)}}]}}
    out = cropenapi.openapi_schema_for_cr(crd, "v1")
    assert out["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}]
    assert out["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
    assert out["properties"]["apiVersion"]["type"] == "string"
    assert out["properties"]["spec"] == SCHEMA["properties"]["spec"]
    assert "apiVersion" not in SCHEMA["properties"]  # the CRD's schema is not modified
    assert cropenapi.openapi_definition_name(crd, "v1") == "com.example.stable.v1.CronTab"
    listing = cropenapi.openapi_list_schema_for_cr(crd, "v1")
    assert listing["properties"]["items"]["items"] == {"$ref": "#/components/schemas/com.example.stable.v1.CronTab"}
    assert listing["x-kubernetes-group-version-kind"][0]["kind"] == "CronTabList"
