"""Units of the kubelet's pod environment, volumes and DNS: no node, no API server."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from kybernetes.apiserver.serviceaccount import MOUNT_PATH, admit_pod
from kybernetes.kubelet.atomic_writer import FileProjection, write_payload
from kybernetes.kubelet.dns import parse_resolv_conf, pod_dns, read_host_dns
from kybernetes.kubelet.envvars import EnvError, container_env, expand, resource_value, service_env
from kybernetes.kubelet.volume_sources import TokenManager, VolumeError, volume_payload


class Source:
    def __init__(self):
        self.configmaps = {"cm": {"data": {"a": "1", "b": "two"}}}
        self.secrets = {"s": {"data": {"pw": base64.b64encode(b"hunter2").decode()}}}
        self.issued = 0

    async def configmap(self, ns, name):
        return self.configmaps.get(name)

    async def secret(self, ns, name):
        return self.secrets.get(name)

    async def services(self, ns):
        return [{"metadata": {"name": "kubernetes", "namespace": "default"},
                 "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}},
                {"metadata": {"name": "db", "namespace": ns}, "spec": {"clusterIP": "None"}}]

    async def token(self, ns, account, spec):
        self.issued += 1
        import time

        exp = time.gmtime(self.now + spec["expirationSeconds"])
        return {"token": f"t{self.issued}", "expirationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", exp)}


POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"b": "2", "a": "1"}},
       "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "500m"}}}]}}


def test_expansion_and_service_links():
    assert expand("$(A)-$(B)-$$(A)-$(", {"A": "x"}, {"B": "y"}) == "x-y-$(A)-$("
    env = service_env([{"metadata": {"name": "redis-master"},
                        "spec": {"clusterIP": "10.43.0.9", "ports": [{"port": 6379, "protocol": "UDP"}]}}])
    assert env["REDIS_MASTER_PORT"] == "udp://10.43.0.9:6379" and env["REDIS_MASTER_PORT_6379_UDP_PROTO"] == "udp"


def test_env_order_and_errors():
    src = Source()
    c = {"name": "c", "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "P_"}],
         "env": [{"name": "X", "value": "$(P_b)/$(KUBERNETES_SERVICE_HOST)"},
                 {"name": "KUBERNETES_SERVICE_HOST", "value": "mine"}]}
    env = dict(asyncio.run(container_env(POD, c, src, [], [], {})))
    assert env["X"] == "two/10.43.0.1" and env["KUBERNETES_SERVICE_HOST"] == "mine" and "DB_SERVICE_HOST" not in env
    bad = {"name": "c", "env": [{"name": "Y", "valueFrom": {"secretKeyRef": {"name": "s", "key": "nope"}}}]}
    with pytest.raises(EnvError, match="couldn't find key nope in Secret ns/s"):
        asyncio.run(container_env(POD, bad, src, [], [], {}))
    assert resource_value(POD, "c", "limits.cpu", "1", {}) == "1"  # 500m rounds up
    assert resource_value(POD, "c", "limits.memory", "1Mi", {"memory": "2Gi"}) == "2048"


def test_payloads_and_token_refresh_at_80_percent(tmp_path):
    src = Source()
    tokens = TokenManager(src, clock=lambda: src.now)
    src.now = 1_000_000
    vol = {"name": "v", "projected": {"defaultMode": 0o600, "sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 1000}},
        {"configMap": {"name": "cm", "items": [{"key": "a", "path": "x/a"}]}},
        {"secret": {"name": "gone", "optional": True}},
        {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}}
    payload = asyncio.run(volume_payload(src, tokens, POD, vol, {}))
    assert payload["token"] == FileProjection(b"t1", 0o600) and payload["x/a"].data == b"1"
    assert payload["labels"].data == b'a="1"\nb="2"'
    src.now += 700
    assert asyncio.run(volume_payload(src, tokens, POD, vol, {}))["token"].data == b"t1"
    src.now += 150  # past 80% of the token's life
    assert asyncio.run(volume_payload(src, tokens, POD, vol, {}))["token"].data == b"t2"
    with pytest.raises(VolumeError, match='configmap "nope" not found'):
        asyncio.run(volume_payload(src, tokens, POD, {"name": "v", "configMap": {"name": "nope"}}, {}))


def test_atomic_writer_swaps_data_link(tmp_path):
    assert write_payload(tmp_path, {"a": FileProjection(b"1", 0o400), "d/b": FileProjection(b"2")})
    first = os.readlink(tmp_path / "..data")
    assert not write_payload(tmp_path, {"a": FileProjection(b"1", 0o400), "d/b": FileProjection(b"2")})
    assert write_payload(tmp_path, {"a": FileProjection(b"3")})
    assert os.readlink(tmp_path / "a") == "..data/a" and (tmp_path / "a").read_text() == "3"
    assert not (tmp_path / "d").exists() and not (tmp_path / first).exists()


def test_dns_policies(tmp_path):
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 192.0.2.1\nsearch corp.example .\noptions timeout:2\n")
    assert parse_resolv_conf(host.read_text()).searches == ["corp.example"]
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {}}
    cfg = pod_dns(pod, ["10.43.0.10"], "cluster.local", str(host))
    assert cfg.servers == ["10.43.0.10"] and cfg.options == ["ndots:5"]
    assert cfg.searches == ["ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"]
    hostnet = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"hostNetwork": True}}
    assert pod_dns(hostnet, ["10.43.0.10"], resolv_conf=str(host)).servers == ["192.0.2.1"]
    hostnet["spec"]["dnsPolicy"] = "ClusterFirstWithHostNet"
    assert pod_dns(hostnet, ["10.43.0.10"], resolv_conf=str(host)).servers == ["10.43.0.10"]
    none = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"dnsPolicy": "None", "dnsConfig": {
        "nameservers": ["1.1.1.1", "1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"], "options": [{"name": "edns0"}]}}}
    cfg = pod_dns(none, ["10.43.0.10"], resolv_conf=str(host))
    assert cfg.servers == ["1.1.1.1", "2.2.2.2", "3.3.3.3"] and cfg.searches == [] and cfg.options == ["edns0"]


def test_host_resolv_conf_is_read_again_when_it_changes(tmp_path):
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 192.0.2.1\n")
    first = read_host_dns(str(host))
    first.servers.append("changed by a caller")  # pod_dns changes the lists it gets
    assert read_host_dns(str(host)).servers == ["192.0.2.1"]
    host.write_text("nameserver 192.0.2.2\nsearch corp.example\n")  # another size: a new stamp
    assert read_host_dns(str(host)).servers == ["192.0.2.2"]
    replaced = tmp_path / "new"
    replaced.write_text("nameserver 192.0.2.3\nsearch corp.example\n")  # same size, another inode
    replaced.replace(host)
    assert read_host_dns(str(host)).servers == ["192.0.2.3"]
    host.unlink()
    assert read_host_dns(str(host)).servers == []


def test_service_account_admission_shape():
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b", "volumeMounts": [
        {"name": "own", "mountPath": MOUNT_PATH}]}], "initContainers": [{"name": "i"}]}}
    admit_pod(pod, {"imagePullSecrets": [{"name": "reg"}]})
    spec = pod["spec"]
    vol = spec["volumes"][0]
    assert spec["serviceAccountName"] == "default" and spec["imagePullSecrets"] == [{"name": "reg"}]
    assert vol["name"].startswith("kube-api-access-") and len(vol["name"]) == 21
    assert [s.popitem()[0] for s in vol["projected"]["sources"]] == ["serviceAccountToken", "configMap", "downwardAPI"]
    assert spec["containers"][0]["volumeMounts"] == [{"name": vol["name"], "readOnly": True, "mountPath": MOUNT_PATH}]
    assert len(spec["containers"][1]["volumeMounts"]) == 1 and len(spec["initContainers"][0]["volumeMounts"]) == 1
    off = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}}
    admit_pod(off, {"automountServiceAccountToken": False})
    assert "volumes" not in off["spec"]
