"""ClusterIP and NodePort allocation: unique under concurrency, kept across a restart."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from .cluster import Cluster, free_port


def _svc(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80}], "selector": {"app": name}, **spec}}


def _create_many(c: Cluster, names, **spec) -> list[dict]:
    def one(name):
        status, body = c.request("POST", "/api/v1/namespaces/default/services", _svc(name, **spec))
        assert status == 201, body
        return body

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, names))


def test_allocations_are_unique_and_survive_restart(tmp_path):
    c = Cluster(tmp_path, free_port(), extra_args=["--service-cluster-ip-range", "10.43.0.0/26",
                                                   "--service-node-port-range", "30000-30039"])
    c.start()
    try:
        first = _create_many(c, [f"a{i}" for i in range(20)], type="NodePort")
        ips = [s["spec"]["clusterIP"] for s in first]
        ports = [s["spec"]["ports"][0]["nodePort"] for s in first]
        assert len(set(ips)) == 20 and "10.43.0.1" not in ips  # the kubernetes Service holds .1
        assert len(set(ports)) == 20 and all(30000 <= p <= 30039 for p in ports)
        assert c.stop() == 0
        c.start()
        second = _create_many(c, [f"b{i}" for i in range(20)], type="NodePort")
        all_ips = ips + [s["spec"]["clusterIP"] for s in second]
        all_ports = ports + [s["spec"]["ports"][0]["nodePort"] for s in second]
        assert len(set(all_ips)) == 40 and len(set(all_ports)) == 40
        # the ports are now all taken: the next create is refused, as upstream refuses it, not given a duplicate
        status, body = c.request("POST", "/api/v1/namespaces/default/services", _svc("full", type="NodePort"))
        assert (status, body["reason"]) == (500, "InternalError"), body
        assert body["message"].endswith("failed to allocate a nodePort: range is full")
        assert c.request("GET", "/api/v1/namespaces/default/services/full")[0] == 404  # nothing half-written
        taken = ips[0]
        status, body = c.request("POST", "/api/v1/namespaces/default/services", _svc("dup", clusterIP=taken))
        assert status == 422 and "already allocated" in body["message"], body
        # deleting frees the address for reuse
        assert c.request("DELETE", "/api/v1/namespaces/default/services/a0")[0] == 200
        status, body = c.request("POST", "/api/v1/namespaces/default/services", _svc("reuse", clusterIP=taken))
        assert status == 201, body
        # and a ClusterIP may not change once set
        svc = c.kubectl_json("get", "svc", "reuse")
        svc["spec"]["clusterIP"] = ips[1]
        svc["spec"]["clusterIPs"] = [ips[1]]
        res = c.kubectl("replace", "-f", "-", input=json.dumps(svc), check=False)
        assert res.returncode != 0
        assert f'spec.clusterIPs[0]: Invalid value: []string{{"{ips[1]}"}}: may not change once set' in res.stderr
    finally:
        c.stop()
