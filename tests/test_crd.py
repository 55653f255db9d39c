"""CustomResourceDefinition defaults, validation (upstream-worded), status and serving records."""

from __future__ import annotations

import copy

from kybernetes.api import crd
from kybernetes.api.resources import ResourceType


def crontab_crd(**spec_overrides) -> dict:
    obj = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {"plural": "crontabs", "kind": "CronTab", "shortNames": ["ct"], "categories": ["all"]},
            "versions": [{
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                         "statusReplicasPath": ".status.replicas"}},
                "additionalPrinterColumns": [{"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "required": ["cronSpec"], "properties": {
                            "cronSpec": {"type": "string"},
                            "replicas": {"type": "integer", "minimum": 1, "default": 1},
                        }},
                        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
                    },
                }},
            }],
        },
    }
    obj["spec"].update(spec_overrides)
    return obj


def created(obj: dict, existing: list[dict] | None = None) -> dict:
    obj = copy.deepcopy(obj)
    crd.default_crd(obj)
    obj["status"] = crd.crd_status_after_create(obj, existing or [], now="2026-11-24T10:00:00Z")
    return obj


def messages(obj: dict) -> list[str]:
    return [e.message() for e in crd.validate_crd(created(obj))]


def test_defaults_singular_list_kind_and_conversion():
    obj = crontab_crd()
    crd.default_crd(obj)
    names = obj["spec"]["names"]
    assert names["singular"] == "crontab"
    assert names["listKind"] == "CronTabList"
    assert obj["spec"]["conversion"] == {"strategy": "None"}
    assert obj["status"]["storedVersions"] == ["v1"]


def test_valid_crd_has_no_errors():
    assert messages(crontab_crd()) == []


def test_name_must_be_plural_dot_group():
    obj = crontab_crd()
    obj["metadata"]["name"] = "crontab.stable.example.com"
    assert messages(obj) == [
        'metadata.name: Invalid value: "crontab.stable.example.com": must be spec.names.plural+"."+spec.group'
    ]


def test_group_needs_a_dot_and_scope_is_an_enum():
    obj = crontab_crd(group="example", scope="Global")
    obj["metadata"]["name"] = "crontabs.example"
    assert messages(obj) == [
        'spec.group: Invalid value: "example": should be a domain with at least one dot',
        'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"',
    ]


def test_exactly_one_storage_version():
    obj = crontab_crd()
    second = copy.deepcopy(obj["spec"]["versions"][0])
    second["name"] = "v2"
    obj["spec"]["versions"].append(second)
    errs = crd.validate_crd(created(obj))
    assert [(e.field, e.detail) for e in errs] == [
        ("spec.versions", "must have exactly one version marked as storage version"),
        ("status.storedVersions", "must have the storage version v2"),
    ]
    assert errs[0].reason == "FieldValueInvalid"


def test_version_names_unique_and_dns1035():
    obj = crontab_crd()
    second = copy.deepcopy(obj["spec"]["versions"][0])
    second["storage"] = False
    obj["spec"]["versions"].append(second)
    obj["spec"]["versions"][0]["name"] = obj["spec"]["versions"][1]["name"] = "V1"
    obj["status"] = {}
    errs = crd.validate_crd(created(obj))
    details = [(e.field, e.detail.split(" (")[0]) for e in errs]
    assert ("spec.versions[0].name", "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
            "start with an alphabetic character, and end with an alphanumeric character") in details
    assert ("spec.versions", "must contain unique version names") in details


def test_schema_is_required_in_v1():
    obj = crontab_crd()
    del obj["spec"]["versions"][0]["schema"]
    assert messages(obj) == ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"]


def test_structural_schema_needs_types_single_version_reported_at_top_level():
    obj = crontab_crd()
    obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["x"] = {
        "description": "untyped"}
    assert messages(obj) == [
        "spec.validation.openAPIV3Schema.properties[spec].properties[x].type: Required value: "
        "must not be empty for specified object fields"
    ]


def test_structural_errors_per_version_when_schemas_differ():
    obj = crontab_crd()
    second = copy.deepcopy(obj["spec"]["versions"][0])
    second.update(name="v1beta1", storage=False)
    second["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["list"] = {"type": "array"}
    obj["spec"]["versions"].append(second)
    assert messages(obj) == [
        "spec.versions[1].schema.openAPIV3Schema.properties[spec].properties[list].items: Required value: "
        "must be specified"
    ]


def test_root_must_be_object_and_metadata_restricted():
    obj = crontab_crd()
    schema = obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["metadata"] = {"type": "object", "properties": {"labels": {"type": "object"}}}
    assert messages(obj) == [
        "spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other "
        "than name and generateName, but metadata is implicitly specified"
    ]
    ok = crontab_crd()
    ok["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["metadata"] = {
        "type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}}
    assert messages(ok) == []


def test_nested_value_validation_must_not_carry_types():
    obj = crontab_crd()
    spec = obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["anyOf"] = [{"required": ["cronSpec"]}, {"properties": {"cronSpec": {"type": "string"}}}]
    assert messages(obj) == [
        "spec.validation.openAPIV3Schema.properties[spec].anyOf[1].properties[cronSpec].type: Forbidden: "
        "must be empty to be structural"
    ]


def test_int_or_string_needs_no_type_and_preserve_unknown_fields():
    obj = crontab_crd()
    props = obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    props["port"] = {"x-kubernetes-int-or-string": True}
    props["blob"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert messages(obj) == []
    props["bad"] = {"x-kubernetes-int-or-string": True, "x-kubernetes-preserve-unknown-fields": True}
    assert messages(obj) == [
        "spec.validation.openAPIV3Schema.properties[spec].properties[bad].x-kubernetes-preserve-unknown-fields: "
        "Invalid value: true: must be false if x-kubernetes-int-or-string is true"
    ]


def test_default_must_validate_against_schema():
    obj = crontab_crd()
    props = obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    props["replicas"]["default"] = 0
    assert messages(obj) == [
        "spec.validation.openAPIV3Schema.properties[spec].properties[replicas].default: Invalid value: 0: "
        " in body should be greater than or equal to 1"
    ]


def test_default_forbidden_in_top_level_metadata():
    obj = crontab_crd()
    schema = obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["kind"] = {"type": "string", "default": "CronTab"}
    assert messages(obj) == [
        "spec.validation.openAPIV3Schema.properties[kind].default: Forbidden: must not be set in top-level kind"
    ]


def test_unique_items_forbidden():
    obj = crontab_crd()
    props = obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    props["tags"] = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    assert messages(obj) == [
        "spec.validation.openAPIV3Schema.properties[spec].properties[tags].uniqueItems: Forbidden: "
        "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
    ]


def test_list_map_keys_must_be_required_or_defaulted():
    obj = crontab_crd()
    props = obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    props["ports"] = {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port"],
                      "items": {"type": "object", "properties": {"port": {"type": "integer"}}}}
    assert messages(obj) == [
        "spec.validation.openAPIV3Schema.properties[spec].properties[ports].items.properties[port].default: "
        "Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a "
        "required property"
    ]


def test_status_subresource_restricts_root_schema():
    obj = crontab_crd()
    obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["anyOf"] = [{"required": ["spec"]}]
    errs = crd.validate_crd(created(obj))
    assert [e.field for e in errs] == ["spec.validation.openAPIV3Schema"]
    assert errs[0].detail.startswith("only [Description Type Format Title Maximum")
    assert errs[0].detail.endswith("fields are allowed at the root of the schema if the status subresource is enabled")


def test_printer_columns_and_scale_paths():
    obj = crontab_crd()
    version = obj["spec"]["versions"][0]
    version["additionalPrinterColumns"] = [{"name": "Age", "type": "time", "jsonPath": "metadata"}, {"name": "X"}]
    version["subresources"]["scale"] = {"specReplicasPath": ".status.replicas", "statusReplicasPath": ""}
    assert messages(obj) == [
        'spec.subresources.scale.specReplicasPath: Invalid value: ".status.replicas": should be a json path under .spec',
        "spec.subresources.scale.statusReplicasPath: Required value",
        'spec.additionalPrinterColumns[0].type: Invalid value: "time": must be one of boolean,date,integer,number,string',
        'spec.additionalPrinterColumns[0].JSONPath: Invalid value: "metadata": must be a simple json path starting with .',
        "spec.additionalPrinterColumns[1].type: Required value: must be one of boolean,date,integer,number,string",
        "spec.additionalPrinterColumns[1].JSONPath: Required value",
    ]


def test_names_rules():
    obj = crontab_crd()
    obj["spec"]["names"].update(kind="Cron Tab", listKind="Cron Tab", singular="crontab", shortNames=["CT"])
    errs = crd.validate_crd(created(obj))
    fields = [(e.field, e.detail.split(":")[0]) for e in errs if e.field.startswith("spec.")]
    assert fields == [
        ("spec.names.kind", "may have mixed case, but should otherwise match"),
        ("spec.names.listKind", "may have mixed case, but should otherwise match"),
        ("spec.names.shortNames[0]", "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
         "start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
         "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"),
        ("spec.names.listKind", "kind and listKind may not be the same"),
    ]


def test_protected_group_needs_approval_annotation():
    obj = crontab_crd(group="widgets.k8s.io")
    obj["metadata"]["name"] = "crontabs.widgets.k8s.io"
    assert messages(obj) == [
        "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval "
        'annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111'
    ]


def test_webhook_conversion_requirements():
    obj = crontab_crd(conversion={"strategy": "Webhook", "webhook": {}})
    assert messages(obj) == [
        "spec.conversion.webhook.clientConfig: Required value: required when strategy is set to Webhook",
        "spec.conversion.webhook.conversionReviewVersions: Required value",
    ]


def test_update_immutable_fields():
    old = created(crontab_crd())
    new = copy.deepcopy(old)
    new["spec"]["scope"] = "Cluster"
    new["spec"]["names"]["kind"] = "Crontab"
    msgs = [e.message() for e in crd.validate_crd_update(new, old)]
    assert msgs == [
        'spec.scope: Invalid value: "Cluster": field is immutable',
        'spec.names.kind: Invalid value: "Crontab": field is immutable',
    ]
    # not yet established: scope may still change
    old["status"]["conditions"] = []
    assert [e.message() for e in crd.validate_crd_update(new, old)] == []


def test_update_removing_a_stored_version():
    old = created(crontab_crd())
    new = copy.deepcopy(old)
    new["spec"]["versions"][0]["name"] = "v2"
    new["status"]["storedVersions"] = ["v1", "v2"]
    msgs = [e.message() for e in crd.validate_crd_update(new, old)]
    assert msgs == [
        'status.storedVersions[0]: Invalid value: "v1": missing from spec.versions; v1 was previously a storage '
        "version, and must remain in spec.versions until a storage migration ensures no data remains persisted "
        "in v1 and removes v1 from status.storedVersions"
    ]


def test_status_after_create_accepts_names_and_establishes():
    status = created(crontab_crd())["status"]
    assert status["acceptedNames"] == {"categories": ["all"], "kind": "CronTab", "listKind": "CronTabList",
                                       "plural": "crontabs", "shortNames": ["ct"], "singular": "crontab"}
    assert status["storedVersions"] == ["v1"]
    assert status["conditions"] == [
        {"type": "NamesAccepted", "status": "True", "lastTransitionTime": "2026-11-24T10:00:00Z",
         "reason": "NoConflicts", "message": "no conflicts found"},
        {"type": "Established", "status": "True", "lastTransitionTime": "2026-11-24T10:00:00Z",
         "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
    ]
    assert crd.is_established(created(crontab_crd()))


def test_status_after_create_reports_conflicts():
    existing = created(crontab_crd())
    clash = crontab_crd()
    clash["metadata"]["name"] = "crontabs2.stable.example.com"
    clash["spec"]["names"] = {"plural": "crontabs2", "kind": "CronTab2", "shortNames": ["ct"]}
    status = created(clash, [existing])["status"]
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["NamesAccepted"]["status"] == "False"
    assert conds["NamesAccepted"]["reason"] == "ShortNamesConflict"
    assert conds["NamesAccepted"]["message"] == '"ct" is already in use'
    assert conds["Established"]["reason"] == "NotAccepted"
    assert "shortNames" not in status["acceptedNames"]

    plural_clash = crontab_crd()
    plural_clash["metadata"]["name"] = "crontab.stable.example.com"
    plural_clash["spec"]["names"] = {"plural": "crontab", "kind": "Other"}
    status = created(plural_clash, [existing])["status"]
    assert status["conditions"][0]["reason"] == "PluralConflict"  # existing singular is "crontab"
    assert status["conditions"][0]["message"] == '"crontab" is already in use'
    assert status["acceptedNames"]["kind"] == "Other" and "plural" not in status["acceptedNames"]
    # another group never conflicts
    elsewhere = crontab_crd(group="other.example.com")
    elsewhere["metadata"]["name"] = "crontabs.other.example.com"
    assert created(elsewhere, [existing])["status"]["conditions"][0]["reason"] == "NoConflicts"


def test_resource_types_one_per_served_version():
    obj = crontab_crd(scope="Cluster")
    beta = copy.deepcopy(obj["spec"]["versions"][0])
    beta.update(name="v1beta1", storage=False, subresources={"status": {}})
    off = copy.deepcopy(beta)
    off.update(name="v1alpha1", served=False)
    obj["spec"]["versions"] += [beta, off]
    types = crd.resource_types_for(created(obj))
    assert [t.version for t in types] == ["v1", "v1beta1"]
    v1 = types[0]
    assert isinstance(v1, ResourceType)
    assert (v1.group, v1.kind, v1.plural, v1.namespaced) == ("stable.example.com", "CronTab", "crontabs", False)
    assert v1.short_names == ("ct",) and v1.categories == ("all",)
    assert [s.name for s in v1.subresources] == ["scale", "status"]
    assert v1.subresource("scale").kind == "Scale" and v1.subresource("scale").group == "autoscaling"
    assert [s.name for s in types[1].subresources] == ["status"]


def test_schema_and_printer_columns_lookup():
    obj = created(crontab_crd())
    assert crd.schema_for(obj, "v1")["properties"]["spec"]["required"] == ["cronSpec"]
    assert crd.schema_for(obj, "v9") is None
    assert crd.printer_columns(obj, "v1") == [{"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"}]
    assert crd.printer_columns(obj, "v9") == []
    assert crd.storage_version(obj) == "v1"
