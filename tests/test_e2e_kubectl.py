"""End to end with the real kubectl 1.32 against a real `kyb server` on a temporary SQLite file."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from .cluster import manifest, wait_until

pytestmark = pytest.mark.timeout(180)

NS = "shop"

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "size": {"type": "integer", "minimum": 1},
                    "color": {"type": "string", "default": "blue"},
                    "replicas": {"type": "integer"},
                }},
                "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
            }}},
            "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                     "statusReplicasPath": ".status.replicas"}},
            "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
        }],
    },
}


def deployment(image: str = "nginx:1.27", replicas: int = 2) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS, "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "web", "image": image, "ports": [{"containerPort": 80}],
                 "env": [{"name": "MODE", "value": "prod"}]}]}},
        },
    }


def bundle(image: str = "nginx:1.27") -> str:
    return manifest(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        deployment(image),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": NS},
         "data": {"greeting": "hello"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "password", "namespace": NS},
         "stringData": {"redis": "s3cret"}},
        CRD,
    )


@pytest.fixture(scope="module")
def applied(cluster):
    out = cluster.kubectl("apply", "-f", "-", input=bundle()).stdout
    assert "namespace/shop created" in out
    assert "deployment.apps/web created" in out
    assert "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created" in out
    wait_until(lambda: cluster.kubectl("get", "widgets", "-n", NS, check=False).returncode == 0,
               what="widgets to be served")
    out = cluster.kubectl("apply", "-f", "-", input=manifest({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": NS},
        "spec": {"size": 3}})).stdout
    assert "widget.example.com/w1 created" in out
    return cluster


def test_version_and_nodes(cluster):
    out = cluster.kubectl("version", "-o", "json").stdout
    assert json.loads(out)["serverVersion"]["minor"] == "32"
    cluster.kubectl("get", "nodes")  # empty, but it works


def test_system_objects(cluster):
    names = cluster.kubectl("get", "ns", "-o", "name").stdout.split()
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert f"namespace/{ns}" in names
    svc = cluster.kubectl_json("get", "svc", "kubernetes", "-n", "default")
    assert svc["spec"]["clusterIP"] == "10.43.0.1"
    pcs = cluster.kubectl("get", "priorityclasses", "-o", "name").stdout
    assert "system-node-critical" in pcs and "system-cluster-critical" in pcs


def test_apply_multi_document_and_get(applied):
    c = applied
    out = c.kubectl("get", "deploy", "web", "-n", NS).stdout
    assert out.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    wide = c.kubectl("get", "deploy", "web", "-n", NS, "-o", "wide").stdout
    assert "nginx:1.27" in wide and "app=web" in wide
    svc = c.kubectl_json("get", "svc", "web", "-n", NS)
    assert svc["spec"]["clusterIP"].startswith("10.43.")
    secret = c.kubectl_json("get", "secret", "password", "-n", NS)
    assert secret["data"]["redis"] == "czNjcmV0"
    image = c.kubectl("get", "deploy", "web", "-n", NS, "-o",
                      "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert image == "nginx:1.27"
    widgets = c.kubectl("get", "wd", "-n", NS).stdout
    assert widgets.split("\n")[0].split() == ["NAME", "SIZE"]  # upstream adds Age only when no columns are given
    assert widgets.split("\n")[1].split() == ["w1", "3"]
    w = c.kubectl_json("get", "widget", "w1", "-n", NS)
    assert w["spec"]["color"] == "blue"  # schema default applied


def test_apply_again_after_edit_uses_strategic_merge(applied):
    c = applied
    out = c.kubectl("apply", "-f", "-", input=bundle("nginx:1.28")).stdout
    assert "deployment.apps/web configured" in out
    assert "configmap/settings unchanged" in out
    d = c.kubectl_json("get", "deploy", "web", "-n", NS)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert d["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "MODE", "value": "prod"}]
    assert d["metadata"]["generation"] == 2


def test_server_side_apply_and_conflict(applied):
    c = applied
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "namespace": NS},
          "data": {"a": "1"}}
    out = c.kubectl("apply", "--server-side", "-f", "-", input=manifest(cm)).stdout
    assert "configmap/ssa serverside-applied" in out
    got = c.kubectl_json("get", "cm", "ssa", "-n", NS, "--show-managed-fields")
    managers = {m["manager"]: m for m in got["metadata"]["managedFields"]}
    assert managers["kubectl"]["operation"] == "Apply"
    assert "f:a" in json.dumps(managers["kubectl"]["fieldsV1"])
    cm["data"]["a"] = "2"
    bad = c.kubectl("apply", "--server-side", "--field-manager=other", "-f", "-", input=manifest(cm), check=False)
    assert bad.returncode != 0
    assert "conflict" in bad.stderr.lower()
    c.kubectl("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-", input=manifest(cm))
    assert c.kubectl_json("get", "cm", "ssa", "-n", NS)["data"]["a"] == "2"


def test_label_annotate_scale_patch_replace(applied):
    c = applied
    c.kubectl("label", "deploy", "web", "-n", NS, "tier=frontend")
    c.kubectl("annotate", "deploy", "web", "-n", NS, "owner=team-a")
    c.kubectl("scale", "deploy", "web", "-n", NS, "--replicas=5")
    d = c.kubectl_json("get", "deploy", "web", "-n", NS)
    assert d["metadata"]["labels"]["tier"] == "frontend"
    assert d["metadata"]["annotations"]["owner"] == "team-a"
    assert d["spec"]["replicas"] == 5
    c.kubectl("patch", "deploy", "web", "-n", NS, "--type", "merge", "-p", '{"spec":{"replicas":4}}')
    c.kubectl("patch", "deploy", "web", "-n", NS, "--type", "json",
              "-p", '[{"op":"replace","path":"/spec/replicas","value":3}]')
    c.kubectl("patch", "deploy", "web", "-n", NS, "-p",
              '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}')
    d = c.kubectl_json("get", "deploy", "web", "-n", NS)
    assert d["spec"]["replicas"] == 3
    assert [x["name"] for x in d["spec"]["template"]["spec"]["containers"]] == ["sidecar", "web"]
    cm = c.kubectl_json("get", "cm", "settings", "-n", NS)
    cm["data"]["greeting"] = "bonjour"
    c.kubectl("replace", "-f", "-", input=json.dumps(cm))
    assert c.kubectl_json("get", "cm", "settings", "-n", NS)["data"]["greeting"] == "bonjour"
    c.kubectl("scale", "widget", "w1", "-n", NS, "--replicas=2")
    assert c.kubectl_json("get", "widget", "w1", "-n", NS)["spec"]["replicas"] == 2


def test_get_watch_sees_changes(applied):
    c = applied
    env = dict(__import__("os").environ, KUBECONFIG=str(c.kubeconfig), HOME=str(c.data_dir / "home"))
    proc = subprocess.Popen(["kubectl", "get", "cm", "-n", NS, "-w", "--output-watch-events"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(0)  # the watch starts from the list's resourceVersion; nothing is lost
        wait_until(lambda: c.kubectl("get", "cm", "-n", NS, check=False).returncode == 0)
        c.kubectl("create", "configmap", "watched", "-n", NS, "--from-literal=x=1")
        lines = []

        def saw_added():
            line = proc.stdout.readline()
            lines.append(line)
            return "watched" in line and "ADDED" in line

        wait_until(saw_added, timeout=20, what="the ADDED event")
    finally:
        proc.terminate()
        proc.wait(5)


def test_describe_explain_api_resources(applied):
    c = applied
    out = c.kubectl("describe", "deploy", "web", "-n", NS).stdout
    assert "Name:" in out and "web" in out and "Selector:" in out
    out = c.kubectl("explain", "deployment.spec.replicas").stdout
    assert "replicas" in out.lower() and "integer" in out.lower()
    out = c.kubectl("api-resources").stdout
    for needle in ("pods", "deployments", "customresourcedefinitions", "widgets", "leases", "priorityclasses"):
        assert needle in out


def test_wait_and_dry_run(applied):
    c = applied
    c.kubectl("wait", "--for=jsonpath={.spec.replicas}=3", "deploy/web", "-n", NS, "--timeout=20s")
    out = c.kubectl("create", "configmap", "dry", "-n", NS, "--from-literal=a=b", "--dry-run=server").stdout
    assert "created (server dry run)" in out
    assert c.kubectl("get", "cm", "dry", "-n", NS, check=False).returncode != 0


def test_errors_printed_as_upstream(applied):
    c = applied
    bad = c.kubectl("run", "bad", "-n", NS, "--image=", check=False)
    assert bad.returncode != 0
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad", "namespace": NS},
           "spec": {"containers": [{"name": "c"}]}}
    res = c.kubectl("create", "-f", "-", input=json.dumps(pod), check=False)
    assert 'The Pod "bad" is invalid: spec.containers[0].image: Required value' in res.stderr
    res = c.kubectl("get", "deploy", "nope", "-n", NS, check=False)
    assert 'Error from server (NotFound): deployments.apps "nope" not found' in res.stderr
    res = c.kubectl("create", "configmap", "settings", "-n", NS, check=False)  # typed client, protobuf body
    assert 'error: failed to create configmap: configmaps "settings" already exists' in res.stderr
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": NS}}
    res = c.kubectl("create", "-f", "-", input=json.dumps(cm), check=False)
    assert 'Error from server (AlreadyExists): error when creating "STDIN": configmaps "settings" already exists' \
        in res.stderr
    strict = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "strict", "namespace": NS},
              "dataa": {"x": "y"}}
    res = c.kubectl("apply", "-f", "-", input=json.dumps(strict), check=False)
    assert res.returncode != 0 and 'unknown field "dataa"' in res.stderr


def test_delete_foreground_waits_on_finalizers(applied):
    c = applied
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "held", "namespace": NS, "finalizers": ["example.com/hold"]}}
    c.kubectl("apply", "-f", "-", input=json.dumps(cm))
    c.kubectl("delete", "cm", "held", "-n", NS, "--wait=false")
    got = c.kubectl_json("get", "cm", "held", "-n", NS)
    assert got["metadata"].get("deletionTimestamp")
    c.kubectl("patch", "cm", "held", "-n", NS, "--type", "json",
              "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    wait_until(lambda: c.kubectl("get", "cm", "held", "-n", NS, check=False).returncode != 0,
               what="held to be gone")
    c.kubectl("create", "configmap", "fg", "-n", NS)
    out = c.kubectl("delete", "cm", "fg", "-n", NS, "--cascade=foreground", "--timeout=30s").stdout
    assert 'configmap "fg" deleted' in out
    assert c.kubectl("get", "cm", "fg", "-n", NS, check=False).returncode != 0
