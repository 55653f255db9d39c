"""End to end with the official `kubernetes` Python client (typed API and Watch)."""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def api(cluster):
    return config.new_client_from_config(str(cluster.kubeconfig))


def test_namespaces_and_configmaps(api):
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))
    cm = core.create_namespaced_config_map("py", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="one", labels={"tier": "a"}), data={"k": "v"}))
    assert cm.metadata.uid and cm.metadata.resource_version
    got = core.read_namespaced_config_map("one", "py")
    assert got.data == {"k": "v"}
    got.data["k"] = "w"
    updated = core.replace_namespaced_config_map("one", "py", got)
    assert int(updated.metadata.resource_version) > int(cm.metadata.resource_version)
    # a stale resourceVersion is a Conflict
    got.data["k"] = "x"
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("one", "py", got)
    assert e.value.status == 409
    listed = core.list_namespaced_config_map("py", label_selector="tier in (a,b)")
    assert [i.metadata.name for i in listed.items] == ["one"]
    assert core.list_namespaced_config_map("py", label_selector="tier notin (a)").items == []


def test_generate_name_and_paging(api):
    core = client.CoreV1Api(api)
    names = set()
    for _ in range(7):
        cm = core.create_namespaced_config_map("py", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(generate_name="gen-", labels={"paged": "yes"})))
        assert cm.metadata.name.startswith("gen-") and len(cm.metadata.name) == 9
        names.add(cm.metadata.name)
    seen = []
    token = None
    while True:
        page = core.list_namespaced_config_map("py", label_selector="paged=yes", limit=3, _continue=token)
        assert len(page.items) <= 3
        seen += [i.metadata.name for i in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert sorted(seen) == sorted(names)


def test_deployment_status_and_scale(api):
    apps = client.AppsV1Api(api)
    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="d1"),
        spec=client.V1DeploymentSpec(
            replicas=1, selector=client.V1LabelSelector(match_labels={"app": "d1"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "d1"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]))))
    d = apps.create_namespaced_deployment("py", body)
    assert d.spec.strategy.type == "RollingUpdate"
    assert d.spec.strategy.rolling_update.max_surge == "25%"
    assert d.metadata.generation == 1
    # the main endpoint ignores status; /status changes only status
    d.status = client.V1DeploymentStatus(replicas=7)
    d = apps.replace_namespaced_deployment("d1", "py", d)
    assert not (d.status and d.status.replicas)
    apps.patch_namespaced_deployment_status("d1", "py", {"status": {"replicas": 1, "readyReplicas": 1}})
    d = apps.read_namespaced_deployment("d1", "py")
    assert d.status.replicas == 1 and d.spec.replicas == 1
    scale = apps.read_namespaced_deployment_scale("d1", "py")
    assert scale.spec.replicas == 1 and scale.status.selector == "app=d1"
    apps.patch_namespaced_deployment_scale("d1", "py", {"spec": {"replicas": 4}})
    d = apps.read_namespaced_deployment("d1", "py")
    assert d.spec.replicas == 4 and d.metadata.generation == 2


def test_watch_receives_changes(api):
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map("py").metadata.resource_version
    events = []
    done = threading.Event()

    def run():
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, "py", resource_version=rv, timeout_seconds=20):
            events.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED" and ev["object"].metadata.name == "watched":
                w.stop()
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched")))
    core.patch_namespaced_config_map("watched", "py", {"data": {"a": "b"}})
    core.delete_namespaced_config_map("watched", "py")
    assert done.wait(20), f"watch did not finish; saw {events}"
    mine = [e for e in events if e[1] == "watched"]
    assert mine == [("ADDED", "watched"), ("MODIFIED", "watched"), ("DELETED", "watched")]


def test_watch_too_old_resource_version_is_410(tmp_path):
    """A watch older than the cache's history gets one ERROR event: 410 Expired, as upstream sends it."""
    from .cluster import Cluster, free_port

    c = Cluster(tmp_path, free_port(), extra_args=["--watch-cache-history", "10"])
    c.start()
    try:
        api = config.new_client_from_config(str(c.kubeconfig))
        core = client.CoreV1Api(api)
        first = core.create_namespaced_config_map("default", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="c0")))
        for i in range(1, 25):
            core.create_namespaced_config_map("default", client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"c{i}")))
        rv = first.metadata.resource_version
        status, _, data = c.raw("GET", f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}")
        assert status == 200
        event = json.loads(data.splitlines()[0])
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
        assert event["object"]["message"].startswith(f"too old resource version: {rv} (")
        with pytest.raises(ApiException) as e:
            for _ in watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=rv,
                                          timeout_seconds=5):
                pass
        assert e.value.status == 410
        # a recent revision still resumes without loss
        latest = core.list_namespaced_config_map("default").metadata.resource_version
        core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late")))
        seen = []
        for ev in watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=latest,
                                       timeout_seconds=5):
            seen.append(ev["object"].metadata.name)
            break
        assert seen == ["late"]
    finally:
        c.stop()


def test_delete_with_preconditions(api):
    core = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="pre")))
    with pytest.raises(ApiException) as e:
        core.delete_namespaced_config_map("pre", "py", body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid="not-the-uid")))
    assert e.value.status == 409
    core.delete_namespaced_config_map("pre", "py", body=client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=cm.metadata.uid)))
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("pre", "py")
    assert e.value.status == 404


def test_custom_objects(api):
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.org"},
        "spec": {"group": "example.org", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "required": ["size"],
                                            "properties": {"size": {"type": "integer"}}}}}}}]}})
    crd = ext.read_custom_resource_definition("gadgets.example.org")
    conds = {c.type: c.status for c in crd.status.conditions}
    assert conds["Established"] == "True"
    co = client.CustomObjectsApi(api)
    obj = co.create_namespaced_custom_object("example.org", "v1", "py", "gadgets", {
        "apiVersion": "example.org/v1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"size": 2}})
    assert obj["metadata"]["generation"] == 1
    with pytest.raises(ApiException) as e:
        co.create_namespaced_custom_object("example.org", "v1", "py", "gadgets", {
            "apiVersion": "example.org/v1", "kind": "Gadget", "metadata": {"name": "g2"}, "spec": {}})
    assert e.value.status == 422
    co.patch_namespaced_custom_object("example.org", "v1", "py", "gadgets", "g1", {"spec": {"size": 5}})
    assert co.get_namespaced_custom_object("example.org", "v1", "py", "gadgets", "g1")["spec"]["size"] == 5
    ext.delete_custom_resource_definition("gadgets.example.org")
