"""Garbage collector and namespace controller, through a real `kyb server` and kubectl."""

from __future__ import annotations

import json

from .cluster import manifest, wait_until


def _cm(name: str, ns: str, owner: dict | None = None, block: bool = False) -> dict:
    meta: dict = {"name": name, "namespace": ns}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"], "blockOwnerDeletion": block}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def _gone(cluster, *args) -> bool:
    return cluster.kubectl("get", *args, check=False).returncode != 0


def test_background_deletion_removes_dependents(cluster):
    cluster.kubectl("apply", "-f", "-", input=manifest(_cm("owner-bg", "default")))
    owner = cluster.kubectl_json("get", "cm", "owner-bg")
    cluster.kubectl("apply", "-f", "-", input=manifest(_cm("dep-bg", "default", owner)))
    cluster.kubectl("delete", "cm", "owner-bg")
    wait_until(lambda: _gone(cluster, "cm", "dep-bg"), timeout=20, what="dependent to be collected")


def test_orphan_deletion_keeps_dependents_without_the_reference(cluster):
    cluster.kubectl("apply", "-f", "-", input=manifest(_cm("owner-or", "default")))
    owner = cluster.kubectl_json("get", "cm", "owner-or")
    cluster.kubectl("apply", "-f", "-", input=manifest(_cm("dep-or", "default", owner)))
    cluster.kubectl("delete", "cm", "owner-or", "--cascade=orphan")
    wait_until(lambda: _gone(cluster, "cm", "owner-or"), timeout=20, what="owner to go")
    dep = cluster.kubectl_json("get", "cm", "dep-or")
    assert not dep["metadata"].get("ownerReferences")


def test_foreground_deletion_waits_for_blocking_dependents(cluster):
    cluster.kubectl("apply", "-f", "-", input=manifest(_cm("owner-fg", "default")))
    owner = cluster.kubectl_json("get", "cm", "owner-fg")
    dep = _cm("dep-fg", "default", owner, block=True)
    dep["metadata"]["finalizers"] = ["example.com/hold"]
    cluster.kubectl("apply", "-f", "-", input=manifest(dep))
    cluster.kubectl("delete", "cm", "owner-fg", "--cascade=foreground", "--wait=false")
    # the dependent is being deleted but held by its finalizer, so the owner must stay
    wait_until(lambda: cluster.kubectl_json("get", "cm", "dep-fg")["metadata"].get("deletionTimestamp"),
               timeout=20, what="dependent deletion to start")
    held = cluster.kubectl_json("get", "cm", "owner-fg")
    assert "foregroundDeletion" in held["metadata"]["finalizers"] and held["metadata"]["deletionTimestamp"]
    cluster.kubectl("patch", "cm", "dep-fg", "--type=json", "-p",
                    json.dumps([{"op": "remove", "path": "/metadata/finalizers"}]))
    wait_until(lambda: _gone(cluster, "cm", "owner-fg"), timeout=20, what="owner to be deleted")


def test_deleting_a_namespace_deletes_its_contents_then_itself(cluster):
    cluster.kubectl("apply", "-f", "-", input=manifest(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}},
        _cm("a", "doomed"), _cm("b", "doomed"),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "doomed"}}))
    cluster.kubectl("delete", "namespace", "doomed", "--wait=false")
    ns = cluster.kubectl_json("get", "namespace", "doomed")
    assert ns["status"]["phase"] == "Terminating"
    created = cluster.request("POST", "/api/v1/namespaces/doomed/configmaps", {"metadata": {"name": "late"}})
    assert created[0] in (403, 404), created  # no new content while terminating (or already gone)
    wait_until(lambda: _gone(cluster, "namespace", "doomed"), timeout=30, what="namespace to be deleted")
