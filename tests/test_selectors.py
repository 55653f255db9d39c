"""Label and field selectors: parsing, matching, and the errors bad selectors get."""

from __future__ import annotations

import pytest

from kybernetes.api import errors
from kybernetes.api.resources import BUILTIN, ResourceIndex
from kybernetes.api.selectors import (
    field_selector_matcher,
    label_selector_matcher,
    label_selector_string,
    selector_matches,
)

INDEX = ResourceIndex(list(BUILTIN))
PODS = INDEX.get("", "v1", "pods")


def pod(labels=None, node="", phase="Pending"):
    return {"metadata": {"name": "p", "namespace": "default", "labels": labels or {}},
            "spec": {"nodeName": node} if node else {}, "status": {"phase": phase}}


@pytest.mark.parametrize("selector,labels,expected", [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "db"}, False),
    ("app!=web", {}, True),
    ("app in (web, db),tier", {"app": "db", "tier": "x"}, True),
    ("app in (web, db),tier", {"app": "db"}, False),
    ("app notin (web)", {"app": "db"}, True),
    ("!canary", {"canary": "1"}, False),
    ("env,!canary", {"env": "prod"}, True),
    ("gen>3", {"gen": "5"}, True),
    ("gen<3", {"gen": "5"}, False),
    ("", {"any": "x"}, True),
])
def test_label_selectors(selector, labels, expected):
    assert label_selector_matcher(selector)(pod(labels)) is expected


@pytest.mark.parametrize("bad", ["app in web", "a=b,,c", "app=(x", "=x", "a=b c"])
def test_bad_label_selector_is_400(bad):
    with pytest.raises(errors.StatusError) as e:
        label_selector_matcher(bad)
    assert e.value.code == 400


def test_field_selectors_per_kind():
    unscheduled = field_selector_matcher(PODS, "spec.nodeName=")
    assert unscheduled(pod()) and not unscheduled(pod(node="n1"))
    running_on = field_selector_matcher(PODS, "spec.nodeName=n1,status.phase!=Failed")
    assert running_on(pod(node="n1", phase="Running"))
    assert not running_on(pod(node="n1", phase="Failed"))
    assert field_selector_matcher(PODS, "metadata.name==p")(pod())
    assert field_selector_matcher(PODS, r"metadata.name=a\,b")({"metadata": {"name": "a,b"}})


def test_unsupported_field_label_is_400():
    with pytest.raises(errors.StatusError) as e:
        field_selector_matcher(PODS, "spec.foo=x")
    assert e.value.code == 400 and "field label not supported: spec.foo" in e.value.message
    secrets = INDEX.get("", "v1", "secrets")
    assert field_selector_matcher(secrets, "type=Opaque")({"metadata": {}, "type": "Opaque"})


def test_label_selector_objects():
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]}
    assert selector_matches(sel, {"app": "web", "tier": "a"})
    assert not selector_matches(sel, {"app": "web"})
    assert selector_matches({}, {"x": "y"}) and not selector_matches(None, {"x": "y"})
    assert label_selector_string(sel) == "app=web,tier in (a,b)"
