"""Cluster DNS (`kyb dns`) against a real `kyb server`, queried over UDP and TCP on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from .cluster import manifest, wait_until

ZONE = "cluster.local"


class FakeUpstream:
    """A resolver on loopback that answers every A query with 192.0.2.7 (a test-only address)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.asked: list[str] = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            self.asked.append(query.question[0].name.to_text())
            resp = dns.message.make_response(query)
            resp.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "192.0.2.7"))
            self.sock.sendto(resp.to_wire(), addr)


def _free_udp_tcp_port() -> int:
    while True:
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


@pytest.fixture(scope="module")
def dns_server(cluster):
    upstream = FakeUpstream()
    port = _free_udp_tcp_port()
    objs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "shop"},
         "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "db-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "db"}},
         "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
         "endpoints": [{"addresses": ["10.42.0.11"], "hostname": "db-0", "conditions": {"ready": True}},
                       {"addresses": ["10.42.1.12"], "hostname": "db-1", "conditions": {"ready": True}},
                       {"addresses": ["10.42.2.13"], "hostname": "db-2", "conditions": {"ready": False}}]},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "search", "namespace": "shop"},
         "spec": {"type": "ExternalName", "externalName": "search.example.com"}},
    ]
    cluster.kubectl("apply", "-f", "-", input=manifest(*objs))
    proc = subprocess.Popen([sys.executable, "-m", "kybernetes.cli.main", "dns", "--kubeconfig",
                             str(cluster.kubeconfig), "--listen", f"127.0.0.1:{port}",
                             "--upstream", f"127.0.0.1:{upstream.port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def answers():
        try:
            return query(port, f"web.shop.svc.{ZONE}", "A").answer
        except dns.exception.Timeout:
            return None

    try:
        wait_until(answers, timeout=30, what="kyb dns to answer")
        yield port, upstream, cluster
    finally:
        proc.terminate()
        proc.wait(10)


def query(port: int, name: str, rdtype: str, tcp: bool = False) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(q, "127.0.0.1", port=port, timeout=2)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=2)


def _values(resp: dns.message.Message) -> list[str]:
    return sorted(rd.to_text() for rrset in resp.answer for rd in rrset)


def test_cluster_ip_service_and_srv(dns_server):
    port, _, cluster = dns_server
    ip = cluster.kubectl_json("get", "svc", "web", "-n", "shop")["spec"]["clusterIP"]
    assert _values(query(port, f"web.shop.svc.{ZONE}", "A")) == [ip]
    assert _values(query(port, f"web.shop.svc.{ZONE}", "A", tcp=True)) == [ip]
    srv = query(port, f"_http._tcp.web.shop.svc.{ZONE}", "SRV")
    assert _values(srv) == [f"0 100 80 web.shop.svc.{ZONE}."]
    assert _values(query(port, f"kubernetes.default.svc.{ZONE}", "A")) == ["10.43.0.1"]


def test_headless_service_returns_ready_pod_addresses_and_hostnames(dns_server):
    port, _, _ = dns_server
    assert _values(query(port, f"db.shop.svc.{ZONE}", "A")) == ["10.42.0.11", "10.42.1.12"]
    assert _values(query(port, f"db-1.db.shop.svc.{ZONE}", "A")) == ["10.42.1.12"]
    srv = query(port, f"_pg._tcp.db.shop.svc.{ZONE}", "SRV")
    assert _values(srv) == [f"0 50 5432 db-0.db.shop.svc.{ZONE}.", f"0 50 5432 db-1.db.shop.svc.{ZONE}."]
    assert sorted(rd.to_text() for rr in srv.additional for rd in rr) == ["10.42.0.11", "10.42.1.12"]


def test_external_name_pod_records_nxdomain_and_nodata(dns_server):
    port, _, _ = dns_server
    assert _values(query(port, f"search.shop.svc.{ZONE}", "A")) == ["search.example.com."]
    assert _values(query(port, f"10-42-3-4.shop.pod.{ZONE}", "A")) == ["10.42.3.4"]
    missing = query(port, f"nothere.shop.svc.{ZONE}", "A")
    assert missing.rcode() == dns.rcode.NXDOMAIN and not missing.answer
    assert missing.authority and missing.authority[0].rdtype == dns.rdatatype.SOA
    nodata = query(port, f"web.shop.svc.{ZONE}", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer and nodata.authority
    assert query(port, f"shop.svc.{ZONE}", "A").rcode() == dns.rcode.NOERROR
    assert query(port, f"nope.svc.{ZONE}", "A").rcode() == dns.rcode.NXDOMAIN


def test_other_names_are_forwarded_and_changes_are_seen(dns_server):
    port, upstream, cluster = dns_server
    assert _values(query(port, "www.example.org", "A")) == ["192.0.2.7"]
    assert "www.example.org." in upstream.asked
    cluster.kubectl("delete", "svc", "web", "-n", "shop")
    wait_until(lambda: query(port, f"web.shop.svc.{ZONE}", "A").rcode() == dns.rcode.NXDOMAIN,
               timeout=20, what="the deleted Service to vanish from DNS")
