"""A pod's environment, volumes and DNS on a real node, checked with kubectl (issues 4 and 5).

The cluster (`kyb server` with its embedded agent on containerd) runs inside network namespaces
this module creates, as in `test_agent_cri` (whose helpers it reuses): no route leaves the
machine. Needs root, containerd, runc, CNI plugins, busybox-static and kubectl; skipped otherwise.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

import pytest

from .test_agent_cri import TOOLS, Node, _setup_network, _teardown, sh

pytestmark = pytest.mark.timeout(400)

IMAGE = "kybernetes/busybox:1.36"


@pytest.fixture(scope="module")
def node():
    n = Node(f"{(os.getpid() + 7) % 0xfff:03x}")
    try:
        _setup_network(n)
        sh(sys.executable, str(TOOLS / "build_images.py"), str(n.data / "agent" / "images"), timeout=60)
        log = open(n.data / "server.log", "wb")  # noqa: SIM115 - closed with the process
        n.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{n.ns}", "unshare", "--mount", "--propagation", "private",
             sys.executable, "-m", "kybernetes.cli.main", "server", "--data-dir", str(n.data), "--port", "6443",
             "--cgroup-root", n.cgroup_root, "--agent-loopback-routes", "--node-name", "node-a"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

        def ready():
            if not n.kubeconfig.exists():
                return False
            obj = n.get("node", "node-a")
            cond = [c for c in obj["status"].get("conditions", []) if c["type"] == "Ready"]
            return cond and cond[0]["status"] == "True" and obj["spec"].get("podCIDR")

        n.wait("node-a Ready with a pod CIDR", ready, 90)
        n.wait("ConfigMap kube-root-ca.crt", lambda: n.get("configmap", "kube-root-ca.crt")["data"]["ca.crt"], 30)
        yield n
    finally:
        _teardown(n)


def pod(name: str, script: str, **spec) -> dict:
    containers = spec.pop("containers", None) or [{"name": "c", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                                                   "command": ["sh", "-c", script], **spec.pop("container", {})}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default",
                                                            **spec.pop("metadata", {})},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": containers, **spec}}


def running(n: Node, name: str, timeout: float = 90) -> dict:
    def check():
        p = n.get("pod", name)
        return p if p["status"].get("phase") == "Running" else None
    return n.wait(f"pod {name} Running", check, timeout)


def execute(n: Node, name: str, *cmd: str) -> str:
    return n.kubectl("exec", name, "--", *cmd, timeout=30)


def delete(n: Node, *names: str) -> None:
    n.kubectl("delete", "pod", *names, "--ignore-not-found", "--wait=false", check=False)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_environment_from_sources_fields_resources_and_services(node):
    node.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "env-cm", "namespace": "default"},
                "data": {"color": "blue", "size": "L"}})
    node.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "env-secret", "namespace": "default"},
                "data": {"password": b64("hunter2"), "user": b64("admin"), "1st": b64("not a variable name")}})
    node.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "redis-master", "namespace": "default"},
                "spec": {"ports": [{"name": "redis", "port": 6379}], "selector": {"app": "redis"}}})
    env = [
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "color"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "password"}}},
        {"name": "MAYBE", "valueFrom": {"secretKeyRef": {"name": "no-such-secret", "key": "x", "optional": True}}},
        {"name": "GREETING", "value": "$(COLOR)-$(CFG_size)-$(REDIS_MASTER_SERVICE_PORT)-$(UNDEFINED)-$$(COLOR)"},
        *({"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}} for k, v in (
            ("POD_NAME", "metadata.name"), ("POD_NS", "metadata.namespace"), ("POD_UID", "metadata.uid"),
            ("APP", "metadata.labels['app']"), ("NOTE", "metadata.annotations['note']"),
            ("NODE", "spec.nodeName"), ("SA", "spec.serviceAccountName"), ("POD_IP", "status.podIP"),
            ("POD_IPS", "status.podIPs"), ("HOST_IP", "status.hostIP"))),
        {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "CPU_REQ_M", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
        {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
    ]
    manifest = pod("env", "env; sleep 3600", metadata={"labels": {"app": "envtest"}, "annotations": {"note": "hi"}},
                   container={"env": env, "envFrom": [{"configMapRef": {"name": "env-cm"}, "prefix": "CFG_"},
                                                      {"secretRef": {"name": "env-secret"}},
                                                      {"configMapRef": {"name": "absent", "optional": True}}],
                              "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}})
    node.apply(manifest)
    try:
        p = running(node, "env")
        def printed():
            env = dict(line.split("=", 1) for line in node.kubectl("logs", "env").splitlines() if "=" in line)
            return env if "POD_NAME" in env else None

        got = node.wait("env output", printed, 30)
        svc = node.get("service", "redis-master")["spec"]["clusterIP"]
        kube = node.get("service", "kubernetes")["spec"]["clusterIP"]
        assert got["COLOR"] == "blue" and got["PASSWORD"] == "hunter2" and "MAYBE" not in got
        assert got["CFG_color"] == "blue" and got["CFG_size"] == "L" and "1st" not in got
        assert got["user"] == "admin" and got["password"] == "hunter2"
        assert got["GREETING"] == "blue-L-6379-$(UNDEFINED)-$(COLOR)"
        assert (got["POD_NAME"], got["POD_NS"], got["POD_UID"]) == ("env", "default", p["metadata"]["uid"])
        assert (got["APP"], got["NOTE"], got["NODE"], got["SA"]) == ("envtest", "hi", "node-a", "default")
        assert got["POD_IP"] == got["POD_IPS"] == p["status"]["podIP"] and got["HOST_IP"] == node.ip
        assert got["MEM_MI"] == "64" and got["CPU_REQ_M"] == "250"
        assert got["CPU_LIMIT"] == node.get("node", "node-a")["status"]["allocatable"]["cpu"]
        assert got["REDIS_MASTER_SERVICE_HOST"] == svc and got["REDIS_MASTER_SERVICE_PORT"] == "6379"
        assert got["REDIS_MASTER_SERVICE_PORT_REDIS"] == "6379"
        assert got["REDIS_MASTER_PORT"] == got["REDIS_MASTER_PORT_6379_TCP"] == f"tcp://{svc}:6379"
        assert got["REDIS_MASTER_PORT_6379_TCP_PROTO"] == "tcp" and got["REDIS_MASTER_PORT_6379_TCP_PORT"] == "6379"
        assert got["REDIS_MASTER_PORT_6379_TCP_ADDR"] == svc and got["KUBERNETES_SERVICE_HOST"] == kube
    finally:
        delete(node, "env")


def test_missing_key_is_a_create_container_config_error(node):
    node.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "has-one", "namespace": "default"},
                "data": {"one": "1"}})
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "has-one", "key": "two"}}}]
    node.apply(pod("nokey", "sleep 3600", container={"env": env}))
    node.apply(pod("nocm", "sleep 3600", container={"envFrom": [{"configMapRef": {"name": "not-there"}}]}))
    try:
        def waiting(name):
            cs = (node.get("pod", name)["status"].get("containerStatuses") or [{}])[0]
            w = (cs.get("state") or {}).get("waiting") or {}
            return w if w.get("reason") == "CreateContainerConfigError" else None

        assert node.wait("nokey waiting", lambda: waiting("nokey"), 60)["message"] == \
            "couldn't find key two in ConfigMap default/has-one"
        assert node.wait("nocm waiting", lambda: waiting("nocm"), 60)["message"] == 'configmap "not-there" not found'
        assert node.get("pod", "nokey")["status"]["phase"] == "Pending"
    finally:
        delete(node, "nokey", "nocm")


def test_volumes_files_modes_updates_token_and_dns(node):
    node.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "vol-cm", "namespace": "default"},
                "data": {"a": "first", "b": "bee"}})
    node.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vol-secret", "namespace": "default"},
                "data": {"key": b64("s3cret")}})
    volumes = [
        {"name": "cm", "configMap": {"name": "vol-cm", "items": [{"key": "a", "path": "dir/a.txt", "mode": 0o400}]}},
        {"name": "sec", "secret": {"secretName": "vol-secret", "defaultMode": 0o440}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                                                   {"path": "mem", "resourceFieldRef": {
                                                       "containerName": "c", "resource": "limits.memory",
                                                       "divisor": "1Mi"}}]}},
        {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
        {"name": "whole", "configMap": {"name": "vol-cm"}},
    ]
    mounts = [{"name": "cm", "mountPath": "/cm"}, {"name": "sec", "mountPath": "/sec"},
              {"name": "info", "mountPath": "/info"}, {"name": "cache", "mountPath": "/cache"},
              {"name": "whole", "mountPath": "/b.txt", "subPath": "b"}]
    node.apply(pod("vols", "sleep 3600", volumes=volumes, hostname="web-0", subdomain="web",
                   metadata={"labels": {"app": "vols", "tier": "x"}},
                   container={"volumeMounts": mounts, "resources": {"limits": {"memory": "32Mi"}}}))
    try:
        p = running(node, "vols")
        spec = p["spec"]
        sa_vol = [v for v in spec["volumes"] if v["name"].startswith("kube-api-access-")]
        assert spec["serviceAccountName"] == "default" and len(sa_vol) == 1 and len(sa_vol[0]["name"]) == 21
        assert {"name": sa_vol[0]["name"], "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"} \
            in spec["containers"][0]["volumeMounts"]
        assert execute(node, "vols", "cat", "/cm/dir/a.txt") == "first"
        assert execute(node, "vols", "stat", "-L", "-c", "%a", "/cm/dir/a.txt").strip() == "400"
        assert execute(node, "vols", "cat", "/sec/key") == "s3cret"
        assert execute(node, "vols", "stat", "-L", "-c", "%a", "/sec/key").strip() == "440"
        assert execute(node, "vols", "cat", "/b.txt") == "bee"
        assert execute(node, "vols", "cat", "/info/labels") == 'app="vols"\ntier="x"'
        assert execute(node, "vols", "cat", "/info/mem") == "32"
        assert "..data" in execute(node, "vols", "ls", "-a", "/cm")
        assert "read-only" in execute(node, "vols", "sh", "-c", "(echo x > /cm/new) 2>&1 || true").lower()
        mount_lines = [ln for ln in execute(node, "vols", "mount").splitlines() if " /cache " in ln]
        assert mount_lines and mount_lines[0].startswith("tmpfs") and "size=16384k" in mount_lines[0]
        resolv = execute(node, "vols", "cat", "/etc/resolv.conf")
        assert "nameserver 10.43.0.10" in resolv and "options ndots:5" in resolv
        assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv
        hosts = execute(node, "vols", "cat", "/etc/hosts")
        assert f"{p['status']['podIP']}\tweb-0.web.default.svc.cluster.local\tweb-0" in hosts
        assert execute(node, "vols", "hostname").strip() == "web-0"

        # updates of the ConfigMap, the Secret and the labels reach the running pod
        node.kubectl("patch", "configmap", "vol-cm", "-p", '{"data": {"a": "second"}}')
        node.kubectl("patch", "secret", "vol-secret", "-p", json.dumps({"data": {"key": b64("rotated")}}))
        node.kubectl("label", "pod", "vols", "tier=y", "--overwrite")
        node.wait("configMap update in the pod", lambda: execute(node, "vols", "cat", "/cm/dir/a.txt") == "second", 45)
        node.wait("secret update in the pod", lambda: execute(node, "vols", "cat", "/sec/key") == "rotated", 30)
        node.wait("label update in the pod", lambda: 'tier="y"' in execute(node, "vols", "cat", "/info/labels"), 30)

        # the projected token, CA and namespace; the API server accepts the token
        base = "/var/run/secrets/kubernetes.io/serviceaccount"
        token = execute(node, "vols", "cat", f"{base}/token")
        ca = execute(node, "vols", "cat", f"{base}/ca.crt")
        assert execute(node, "vols", "cat", f"{base}/namespace") == "default"
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert claims["sub"] == "system:serviceaccount:default:default"
        assert claims["kubernetes.io"]["pod"]["uid"] == p["metadata"]["uid"]
        ca_file = node.data / "pod-ca.crt"
        ca_file.write_text(ca)
        server = json.loads(node.kubectl("config", "view", "--minify", "-o", "json"))["clusters"][0]["cluster"]["server"]
        out = sh("ip", "netns", "exec", node.ns, "kubectl", "--kubeconfig", "/dev/null", "--server", server,
                 "--certificate-authority", str(ca_file), "--token", token, "auth", "whoami", "-o", "json")
        assert json.loads(out)["status"]["userInfo"]["username"] == "system:serviceaccount:default:default"
    finally:
        delete(node, "vols")


def test_dns_policy_none_and_default(node):
    cfg = {"nameservers": ["192.0.2.53"], "searches": ["example.test"],
           "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}
    node.apply(pod("dnsnone", "sleep 3600", dnsPolicy="None", dnsConfig=cfg, automountServiceAccountToken=False))
    node.apply(pod("dnsmerge", "sleep 3600", dnsConfig={"searches": ["extra.test"],
                                                         "options": [{"name": "ndots", "value": "3"}]}))
    try:
        running(node, "dnsnone")
        assert sorted(execute(node, "dnsnone", "cat", "/etc/resolv.conf").splitlines()) == [
            "nameserver 192.0.2.53", "options ndots:2 edns0", "search example.test"]
        assert "volumeMounts" not in node.get("pod", "dnsnone")["spec"]["containers"][0]
        running(node, "dnsmerge")
        resolv = execute(node, "dnsmerge", "cat", "/etc/resolv.conf")
        assert "search default.svc.cluster.local svc.cluster.local cluster.local extra.test" in resolv
        assert "options ndots:3" in resolv and "ndots:5" not in resolv
    finally:
        delete(node, "dnsnone", "dnsmerge")


def test_local_path_claim_survives_pod_recreation(node):
    base = node.data / "local-path"
    config = {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [str(base)]}]}
    node.apply({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "local-path-config", "namespace": "kube-system"},
                "data": {"config.json": json.dumps(config)}})
    node.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "default"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}})
    volume = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    mount = {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    try:
        node.apply(pod("writer", "echo kept > /data/file; sleep 3600", volumes=volume, container=mount))
        running(node, "writer")
        assert node.get("pvc", "data")["status"]["phase"] == "Bound"
        node.wait("file written", lambda: execute(node, "writer", "cat", "/data/file") == "kept\n", 20)
        pv = node.get("pv", node.get("pvc", "data")["spec"]["volumeName"])
        assert pv["spec"]["hostPath"]["path"].startswith(str(base))
        node.kubectl("delete", "pod", "writer", "--wait=true", "--timeout=40s", timeout=60)
        node.apply(pod("reader", "cat /data/file; sleep 3600", volumes=volume, container=mount))
        running(node, "reader")
        node.wait("reader log", lambda: node.kubectl("logs", "reader") == "kept\n", 20)
    finally:
        delete(node, "writer", "reader")
        node.kubectl("delete", "pvc", "data", "--ignore-not-found", "--wait=false", check=False)
        time.sleep(0.5)
