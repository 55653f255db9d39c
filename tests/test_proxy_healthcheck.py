"""healthCheckNodePort: allocated by the API server for LoadBalancer + externalTrafficPolicy Local, and the
proxy's health check server answering on it as upstream's does (pkg/proxy/healthcheck).

The server test talks to a listener on 127.0.0.1 of this machine only.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from kybernetes.proxy.healthcheck import ServiceHealthServer, response

from .cluster import Cluster, free_port

SVCS = "/api/v1/namespaces/default/services"


def _lb(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "selector": {"app": name}, **spec}}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("hc"), free_port(),
                extra_args=["--service-node-port-range", "30000-30099"])
    c.start()
    try:
        yield c
    finally:
        c.stop()


def _create(c: Cluster, obj: dict) -> dict:
    status, body = c.request("POST", SVCS, obj)
    assert status == 201, body
    return body


def test_requested_health_check_node_port_is_honoured_and_unique(api):
    c = api
    free = 30077  # the first test of the module: nothing in the range is taken or reserved yet
    svc = _create(c, _lb("asked", externalTrafficPolicy="Local", healthCheckNodePort=free))
    assert svc["spec"]["healthCheckNodePort"] == free
    status, body = c.request("POST", SVCS, _lb("clash", externalTrafficPolicy="Local", healthCheckNodePort=free))
    assert status == 422 and "provided port is already allocated" in body["message"], body
    status, body = c.request("POST", SVCS, _lb("clash", type="NodePort", ports=[{"port": 80, "nodePort": free}]))
    assert status == 422 and "provided port is already allocated" in body["message"], body
    status, body = c.request("POST", SVCS, _lb("far", externalTrafficPolicy="Local", healthCheckNodePort=31000))
    assert status == 422 and "spec.healthCheckNodePort" in body["message"], body


def test_health_check_node_port_allocated_kept_and_released(api):
    c = api
    svc = _create(c, _lb("local", externalTrafficPolicy="Local"))
    hc = svc["spec"]["healthCheckNodePort"]
    node_ports = {p["nodePort"] for p in svc["spec"]["ports"]}
    assert 30000 <= hc <= 30099 and hc not in node_ports
    # an update that leaves it out (kubectl replace of a hand-written manifest) keeps it
    replace = _lb("local", externalTrafficPolicy="Local", selector={"app": "other"})
    replace["metadata"]["resourceVersion"] = svc["metadata"]["resourceVersion"]
    status, body = c.request("PUT", f"{SVCS}/local", replace)
    assert status == 200 and body["spec"]["healthCheckNodePort"] == hc, body
    # a Cluster policy does not need one: it goes
    status, body = c.request("PATCH", f"{SVCS}/local", {"spec": {"externalTrafficPolicy": "Cluster"}},
                             content_type="application/merge-patch+json")
    assert status == 200 and "healthCheckNodePort" not in body["spec"], body
    # and back to Local: a port again, which may be the one just released
    status, body = c.request("PATCH", f"{SVCS}/local", {"spec": {"externalTrafficPolicy": "Local"}},
                             content_type="application/merge-patch+json")
    assert status == 200 and 30000 <= body["spec"]["healthCheckNodePort"] <= 30099, body


def test_health_check_node_port_and_source_ranges_validation(api):
    c = api
    status, body = c.request("POST", SVCS, _lb("cluster-policy", healthCheckNodePort=30050))
    assert status == 422, body
    assert ("spec.healthCheckNodePort: Invalid value: 30050: may only be set when `type` is 'LoadBalancer' "
            "and `externalTrafficPolicy` is 'Local'") in body["message"]
    status, body = c.request("POST", SVCS, _lb("ranges", loadBalancerSourceRanges=["10.0.0.0/8", " 192.0.2.0/24 ",
                                                                                   "nope"]))
    assert status == 422 and 'spec.LoadBalancerSourceRanges[2]: Invalid value: "nope"' in body["message"], body
    status, body = c.request("POST", SVCS, _lb("ranges-ci", type="ClusterIP", loadBalancerSourceRanges=["10.0.0.0/8"]))
    assert status == 422 and "may only be used when `type` is 'LoadBalancer'" in body["message"], body
    svc = _create(c, _lb("ranges", loadBalancerSourceRanges=["10.0.0.0/8", " 192.0.2.0/24 "]))
    assert svc["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8", " 192.0.2.0/24 "]
    assert "healthCheckNodePort" not in svc["spec"]


def test_response_has_upstreams_shape():
    head, _, body = response("ns", "web", 2, True).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"X-Load-Balancing-Endpoint-Weight: 2" in head
    assert json.loads(body) == {"service": {"namespace": "ns", "name": "web"}, "localEndpoints": 2,
                                "serviceProxyHealthy": True}
    assert response("ns", "web", 0, True).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert response("ns", "web", 3, False).startswith(b"HTTP/1.1 503 ")


async def _get(port: int) -> tuple[int, dict]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_health_server_follows_local_endpoints():
    async def run():
        port = free_port()
        server = ServiceHealthServer(("127.0.0.1",))
        try:
            await server.sync({("default", "web"): (port, 0)})
            assert await _get(port) == (503, {"service": {"namespace": "default", "name": "web"},
                                              "localEndpoints": 0, "serviceProxyHealthy": True})
            await server.sync({("default", "web"): (port, 2)})
            status, body = await _get(port)
            assert (status, body["localEndpoints"]) == (200, 2)
            await server.sync({})  # the Service went away: so does its listener
            with pytest.raises(OSError):
                await _get(port)
        finally:
            await server.close()

    asyncio.run(run())
