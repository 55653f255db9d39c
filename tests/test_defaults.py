"""Defaults of built-in kinds, as upstream's defaults.go set them."""

from __future__ import annotations

from kybernetes.api.defaults import apply_defaults


def pod_spec(**extra) -> dict:
    spec = {"containers": [{"name": "app", "image": "nginx"}]}
    spec.update(extra)
    return spec


def defaulted(group: str, version: str, kind: str, obj: dict) -> dict:
    obj.setdefault("metadata", {"name": "x", "namespace": "default"})
    apply_defaults(group, version, kind, obj)
    return obj


def test_pod_spec_defaults():
    spec = defaulted("", "v1", "Pod", {"spec": pod_spec()})["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    c = spec["containers"][0]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["imagePullPolicy"] == "Always"
    assert c["resources"] == {}


def test_explicit_values_are_kept():
    spec = defaulted("", "v1", "Pod", {"spec": pod_spec(restartPolicy="Never", dnsPolicy="Default")})["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["dnsPolicy"] == "Default"


def test_image_pull_policy():
    def policy(image):
        obj = defaulted("", "v1", "Pod", {"spec": {"containers": [{"name": "a", "image": image}]}})
        return obj["spec"]["containers"][0]["imagePullPolicy"]

    assert policy("nginx") == "Always"
    assert policy("nginx:latest") == "Always"
    assert policy("nginx:1.25") == "IfNotPresent"
    assert policy("registry:5000/nginx") == "Always"
    assert policy("registry:5000/nginx:1.0") == "IfNotPresent"
    assert policy("nginx@sha256:" + "a" * 64) == "IfNotPresent"


def test_ports_probes_and_resources():
    container = {"name": "a", "image": "x:1", "ports": [{"containerPort": 80}],
                 "livenessProbe": {"httpGet": {"port": 80}},
                 "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}}
    c = defaulted("", "v1", "Pod", {"spec": {"containers": [container]}})["spec"]["containers"][0]
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    probe = c["livenessProbe"]
    assert (probe["timeoutSeconds"], probe["periodSeconds"], probe["successThreshold"],
            probe["failureThreshold"]) == (1, 10, 1, 3)
    assert probe["httpGet"]["scheme"] == "HTTP"
    assert c["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}


def test_host_network_copies_host_port():
    spec = pod_spec(hostNetwork=True)
    spec["containers"][0]["ports"] = [{"containerPort": 8080}]
    port = defaulted("", "v1", "Pod", {"spec": spec})["spec"]["containers"][0]["ports"][0]
    assert port["hostPort"] == 8080


def template() -> dict:
    return {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()}


def test_deployment_defaults():
    spec = defaulted("apps", "v1", "Deployment", {"spec": {"template": template()}})["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert spec["template"]["spec"]["containers"][0]["terminationMessagePolicy"] == "File"


def test_recreate_deployment_has_no_rolling_update():
    spec = defaulted("apps", "v1", "Deployment", {"spec": {"strategy": {"type": "Recreate"}, "template": template()}})
    assert spec["spec"]["strategy"] == {"type": "Recreate"}


def test_replica_set_and_rc_defaults():
    assert defaulted("apps", "v1", "ReplicaSet", {"spec": {"template": template()}})["spec"]["replicas"] == 1
    rc = defaulted("", "v1", "ReplicationController", {"spec": {"template": template()}})
    assert rc["spec"]["replicas"] == 1
    assert rc["spec"]["selector"] == {"app": "web"}
    assert rc["metadata"]["labels"] == {"app": "web"}


def test_stateful_set_defaults():
    spec = defaulted("apps", "v1", "StatefulSet", {"spec": {"template": template()}})["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}


def test_daemon_set_defaults():
    spec = defaulted("apps", "v1", "DaemonSet", {"spec": {"template": template()}})["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert spec["revisionHistoryLimit"] == 10


def job_template() -> dict:
    t = template()
    t["spec"]["restartPolicy"] = "Never"
    return t


def test_job_defaults():
    spec = defaulted("batch", "v1", "Job", {"spec": {"template": job_template()}})["spec"]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert "manualSelector" not in spec


def test_job_with_parallelism_only_leaves_completions_unset():
    spec = defaulted("batch", "v1", "Job", {"spec": {"parallelism": 3, "template": job_template()}})["spec"]
    assert spec["parallelism"] == 3
    assert "completions" not in spec


def test_job_with_pod_failure_policy():
    policy = {"rules": [{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    spec = defaulted("batch", "v1", "Job", {"spec": {"podFailurePolicy": policy, "template": job_template()}})["spec"]
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


def test_cron_job_defaults():
    obj = {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": job_template()}}}}
    spec = defaulted("batch", "v1", "CronJob", obj)["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert spec["successfulJobsHistoryLimit"] == 3
    assert spec["failedJobsHistoryLimit"] == 1
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 6
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


def test_pod_template_defaults():
    obj = defaulted("", "v1", "PodTemplate", {"template": template()})
    assert obj["template"]["spec"]["schedulerName"] == "default-scheduler"


def test_service_defaults():
    spec = defaulted("", "v1", "Service", {"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["internalTrafficPolicy"] == "Cluster"
    # set with the ClusterIP by the registry, after defaulting (the writer does not own them)
    assert "ipFamilyPolicy" not in spec and "ipFamilies" not in spec
    assert "externalTrafficPolicy" not in spec


def test_node_port_and_load_balancer_services():
    spec = defaulted("", "v1", "Service", {"spec": {"type": "NodePort", "ports": [{"port": 80,
                                                                                    "targetPort": "http"}]}})["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["ports"][0]["targetPort"] == "http"
    lb = defaulted("", "v1", "Service", {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})["spec"]
    assert lb["externalTrafficPolicy"] == "Cluster"
    assert lb["allocateLoadBalancerNodePorts"] is True


def test_external_name_service_has_no_ip_families():
    spec = defaulted("", "v1", "Service", {"spec": {"type": "ExternalName", "externalName": "a.b"}})["spec"]
    assert "ipFamilies" not in spec and "ipFamilyPolicy" not in spec


def test_session_affinity_client_ip():
    spec = defaulted("", "v1", "Service", {"spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 1}]}})["spec"]
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_simple_kind_defaults():
    assert defaulted("", "v1", "Secret", {})["type"] == "Opaque"
    assert defaulted("", "v1", "Secret", {"type": "kubernetes.io/tls"})["type"] == "kubernetes.io/tls"
    pv = defaulted("", "v1", "PersistentVolume", {"spec": {}})
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    pvc = defaulted("", "v1", "PersistentVolumeClaim", {"spec": {}})
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    pc = defaulted("scheduling.k8s.io", "v1", "PriorityClass", {"value": 10})
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"
    sc = defaulted("storage.k8s.io", "v1", "StorageClass", {"provisioner": "x"})
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")


def test_network_policy_types():
    np = defaulted("networking.k8s.io", "v1", "NetworkPolicy", {"spec": {"podSelector": {}}})
    assert np["spec"]["policyTypes"] == ["Ingress"]
    np = defaulted("networking.k8s.io", "v1", "NetworkPolicy",
                   {"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}})
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert np["spec"]["egress"][0]["ports"][0]["protocol"] == "TCP"


def test_endpoint_ports():
    ep = defaulted("", "v1", "Endpoints", {"subsets": [{"ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    es = defaulted("discovery.k8s.io", "v1", "EndpointSlice", {"addressType": "IPv4", "ports": [{"port": 80}]})
    assert es["ports"][0] == {"port": 80, "protocol": "TCP", "name": ""}


def test_limit_range_defaults():
    lr = defaulted("", "v1", "LimitRange", {"spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "10Mi"}}]}})
    item = lr["spec"]["limits"][0]
    assert item["default"] == {"cpu": "2"}
    assert item["defaultRequest"] == {"cpu": "2", "memory": "10Mi"}


def test_role_binding_subject_api_group():
    rb = defaulted("rbac.authorization.k8s.io", "v1", "RoleBinding", {"subjects": [
        {"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default", "namespace": "d"}]})
    assert rb["subjects"][0]["apiGroup"] == "rbac.authorization.k8s.io"
    assert rb["subjects"][1]["apiGroup"] == ""


def test_hpa_defaults_by_version():
    v1 = defaulted("autoscaling", "v1", "HorizontalPodAutoscaler", {"spec": {"maxReplicas": 3}})
    assert v1["spec"] == {"maxReplicas": 3, "minReplicas": 1}
    v2 = defaulted("autoscaling", "v2", "HorizontalPodAutoscaler", {"spec": {"maxReplicas": 3, "behavior": {}}})
    assert v2["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 80}
    assert v2["spec"]["behavior"]["scaleUp"]["policies"][0] == {"type": "Pods", "value": 4, "periodSeconds": 15}
    assert v2["spec"]["behavior"]["scaleDown"]["selectPolicy"] == "Max"


def test_unknown_kinds_untouched():
    obj = {"metadata": {"name": "x"}, "spec": {"a": 1}}
    apply_defaults("example.com", "v1", "Widget", obj)
    assert obj == {"metadata": {"name": "x"}, "spec": {"a": 1}}
    ns = defaulted("", "v1", "Namespace", {"metadata": {"name": "n"}})
    assert ns == {"metadata": {"name": "n"}}
