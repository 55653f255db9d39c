"""managedFields of subresource writes through a real server: status and scale writers get entries of their own
that name the subresource; a binding is nobody's (upstream binds at the storage layer)."""

from __future__ import annotations


def _managers(obj: dict) -> dict[tuple, dict]:
    return {(m["manager"], m["operation"], m.get("subresource", "")): m["fieldsV1"]
            for m in obj["metadata"].get("managedFields") or ()}


def _create_ns(cluster, name: str) -> None:
    code, body = cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert code == 201, body


def test_status_writer_and_binding(cluster):
    _create_ns(cluster, "mf-status")
    base = "/api/v1/namespaces/mf-status/pods"
    code, body = cluster.request("POST", base + "?fieldManager=creator", {
        "metadata": {"name": "p", "labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert code == 201, body
    code, body = cluster.request("POST", base + "/p/binding?fieldManager=binder", {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}})
    assert code == 201, body
    code, pod = cluster.request("PATCH", base + "/p/status?fieldManager=node-agent",
                                {"status": {"phase": "Running", "podIP": "10.42.0.9"}},
                                content_type="application/merge-patch+json")
    assert code == 200, pod
    assert pod["spec"]["nodeName"] == "n1"
    managers = _managers(pod)
    assert set(managers) == {("creator", "Update", ""), ("node-agent", "Update", "status")}, managers
    assert managers[("node-agent", "Update", "status")] == {"f:status": {"f:phase": {}, "f:podIP": {}}}
    assert "f:nodeName" not in managers[("creator", "Update", "")]["f:spec"]


def test_scale_writer(cluster):
    _create_ns(cluster, "mf-scale")
    base = "/apis/apps/v1/namespaces/mf-scale/deployments"
    labels = {"app": "web"}
    code, body = cluster.request("POST", base + "?fieldManager=creator", {
        "metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
    assert code == 201, body
    code, body = cluster.request("PATCH", base + "/web/scale?fieldManager=scaler", {"spec": {"replicas": 3}},
                                 content_type="application/merge-patch+json")
    assert code == 200, body
    code, dep = cluster.request("GET", base + "/web")
    managers = _managers(dep)
    assert managers[("scaler", "Update", "scale")] == {"f:spec": {"f:replicas": {}}}, managers
    assert "f:replicas" not in managers[("creator", "Update", "")]["f:spec"]


def test_create_owns_what_was_sent_not_what_admission_added(cluster):
    """Upstream's create handler records managedFields before mutating admission and PrepareForCreate:
    `kubectl run` owns the container and the pod's defaults, not the token volume the service account
    admission mounts, nor the tolerations; `kubectl create namespace` owns only the name label."""
    out = cluster.kubectl("create", "namespace", "mf-create").stdout
    assert "created" in out, out
    code, ns = cluster.request("GET", "/api/v1/namespaces/mf-create")
    assert code == 200, ns
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    assert _managers(ns) == {("kubectl-create", "Update", ""): {
        "f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}}}}, ns["metadata"]
    out = cluster.kubectl("run", "web", "--image=busybox", "-n", "mf-create", "--", "sleep", "3600").stdout
    assert "created" in out, out
    code, pod = cluster.request("GET", "/api/v1/namespaces/mf-create/pods/web")
    assert code == 200, pod
    assert any(v["name"].startswith("kube-api-access-") for v in pod["spec"]["volumes"]), pod["spec"]
    assert pod["spec"]["serviceAccountName"] == "default"
    fields = _managers(pod)[("kubectl-run", "Update", "")]
    assert set(fields["f:spec"]) == {"f:containers", "f:dnsPolicy", "f:enableServiceLinks", "f:restartPolicy",
                                     "f:schedulerName", "f:securityContext",
                                     "f:terminationGracePeriodSeconds"}, fields["f:spec"]
    container = fields["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert "f:volumeMounts" not in container and "f:image" in container and "f:args" in container, container


def test_service_creator_owns_its_spec_not_the_allocated_addresses(cluster):
    """As upstream's service registry: the ClusterIP, node ports and IP family fields are set while
    allocating, after managedFields are recorded; a replace without them keeps them."""
    cluster.kubectl("create", "namespace", "mf-svc")
    out = cluster.kubectl("create", "service", "nodeport", "web", "--tcp=80:8080", "-n", "mf-svc").stdout
    assert "created" in out, out
    code, svc = cluster.request("GET", "/api/v1/namespaces/mf-svc/services/web")
    assert code == 200, svc
    spec = svc["spec"]
    assert spec["ipFamilyPolicy"] == "SingleStack" and spec["ipFamilies"] == ["IPv4"], spec
    assert spec["clusterIP"] and spec["ports"][0]["nodePort"], spec
    fields = _managers(svc)[("kubectl-create", "Update", "")]["f:spec"]
    assert {"f:internalTrafficPolicy", "f:externalTrafficPolicy", "f:sessionAffinity", "f:type", "f:ports",
            "f:selector"} <= set(fields), fields
    assert not {"f:clusterIP", "f:clusterIPs", "f:ipFamilies", "f:ipFamilyPolicy"} & set(fields), fields
    port = fields["f:ports"]['k:{"port":80,"protocol":"TCP"}']
    assert "f:nodePort" not in port and "f:targetPort" in port, port
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "mf-svc"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}}
    code, replaced = cluster.request("PUT", "/api/v1/namespaces/mf-svc/services/web", body)
    assert code == 200, replaced
    assert replaced["spec"]["ipFamilies"] == ["IPv4"] and replaced["spec"]["ipFamilyPolicy"] == "SingleStack"
    assert replaced["spec"]["clusterIP"] == spec["clusterIP"]
    code, headless = cluster.request("POST", "/api/v1/namespaces/mf-svc/services", {
        "metadata": {"name": "headless"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}})
    assert code == 201, headless
    assert headless["spec"]["ipFamilyPolicy"] == "RequireDualStack", headless["spec"]
