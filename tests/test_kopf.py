"""A real kopf operator against `kyb server`: the create, update and delete cycle of a custom resource.

kopf (as operator authors use it) discovers the CRD, lists and watches it, adds its finalizer by JSON
patch (with a resourceVersion `test`), runs the handlers, writes their results to the status
subresource and its progress to annotations, posts Events, and removes the finalizer on delete.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .cluster import manifest, stop_process, wait_until

pytestmark = pytest.mark.timeout(180)

OPERATOR = Path(__file__).parent / "fixtures" / "kopf" / "widget_operator.py"
NS = "kopf-test"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
             "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                               "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]},
}


def _widget(cluster) -> dict | None:
    proc = cluster.kubectl("get", "widget", "w1", "-n", NS, "-o", "json", check=False)
    return None if proc.returncode else __import__("json").loads(proc.stdout)


def _configmap(cluster, name: str) -> dict | None:
    code, body = cluster.request("GET", f"/api/v1/namespaces/{NS}/configmaps/{name}")
    return body if code == 200 else None


def test_kopf_operator_create_update_delete(cluster, tmp_path):
    cluster.kubectl("apply", "-f", "-", input=manifest(CRD, {"apiVersion": "v1", "kind": "Namespace",
                                                              "metadata": {"name": NS}}))
    wait_until(lambda: cluster.kubectl("get", "widgets", "-n", NS, check=False).returncode == 0, timeout=10,
               what="the widgets resource served")
    log = tmp_path / "kopf.log"
    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig), HOME=str(tmp_path))
    with log.open("wb") as out:
        operator = subprocess.Popen([sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", NS,
                                     "--verbose", str(OPERATOR)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                    cwd=tmp_path)
    try:
        cluster.kubectl("apply", "-n", NS, "-f", "-", input=manifest(
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}))
        # the handler's result goes to status first; the handled configuration is recorded when the cycle ends
        widget = wait_until(lambda: (w := _widget(cluster)) and (w.get("status") or {}).get("create_fn")
                            and "kopf.zalando.org/last-handled-configuration" in w["metadata"].get("annotations", {})
                            and w, timeout=60, interval=0.3, what=f"kopf's create handler\n{log.read_text()[-3000:]}")
        assert widget["status"]["create_fn"] == {"children": "w1-data"}
        assert "kopf.zalando.org/KopfFinalizerMarker" in widget["metadata"]["finalizers"]
        assert "kopf.zalando.org/last-handled-configuration" in widget["metadata"]["annotations"]
        data = _configmap(cluster, "w1-data")
        assert data["data"] == {"size": "3"}
        owner = data["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("Widget", "w1", widget["metadata"]["uid"])
        wait_until(lambda: any(e.get("reason") == "Created" and e.get("message") == "made w1-data"
                               for e in cluster.kubectl_json("get", "events", "-n", NS)["items"]),
                   timeout=20, interval=0.3, what="kopf's Event")

        cluster.kubectl("patch", "widget", "w1", "-n", NS, "--type", "merge", "-p", '{"spec": {"size": 5}}')
        wait_until(lambda: (_configmap(cluster, "w1-data") or {}).get("data") == {"size": "5"}, timeout=30,
                   interval=0.3, what=f"kopf's field handler\n{log.read_text()[-3000:]}")
        wait_until(lambda: ((_widget(cluster) or {}).get("status") or {}).get("size_fn/spec.size") == {"resized": 5},
                   timeout=20, interval=0.3, what=f"the field handler's result in status: {_widget(cluster)}")

        cluster.kubectl("delete", "widget", "w1", "-n", NS, "--timeout=60s")  # waits for kopf's finalizer
        assert _widget(cluster) is None
        assert _configmap(cluster, "w1-deleted")["data"] == {"by": "kopf"}
        wait_until(lambda: _configmap(cluster, "w1-data") is None, timeout=30, interval=0.3,
                   what="the adopted ConfigMap garbage-collected")
    finally:
        stop_process(operator, signal.SIGINT, 30)
    text = log.read_text()
    assert "inconsistencies" not in text and "Traceback" not in text, text[-5000:]
