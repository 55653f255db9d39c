"""Proxy rule generation (pure functions): services + slices + node -> iptables-restore text."""

from __future__ import annotations

import asyncio

from kybernetes.proxy.hostgw import desired_routes
from kybernetes.proxy.iptables import IptablesProxier
from kybernetes.proxy.model import NodeConfig, changed_keys, health_checks, service_ports, stale_udp_flows
from kybernetes.proxy.rules import build, chain_hash, restore_text, service_chains_in, svc_chain
from kybernetes.proxy.userspace import Balancer, endpoints_for, listen_addresses

NODE = NodeConfig("node-a", "10.42.0.0/16")


def svc(name, ip="10.43.0.20", ports=None, ns="default", **spec):
    ports = ports or [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "type": "ClusterIP",
                                                                  "ports": ports, **spec}}


def eps(name, *endpoints, port=8080, pname="http", proto="TCP", ns="default"):
    items = []
    for ip, node, ready in endpoints:
        items.append({"addresses": [ip], "nodeName": node, "conditions": {"ready": ready, "serving": ready,
                                                                            "terminating": False}})
    return {"metadata": {"name": name + "-x", "namespace": ns, "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "endpoints": items, "ports": [{"name": pname, "port": port, "protocol": proto}]}


def text(services, slices, node=NODE):
    return restore_text(build(service_ports(services, slices), node)).text


def test_chain_names_match_upstream():
    assert chain_hash("default/kubernetes:https", "tcp") == "NPX46M4PTMTKRN6Y"
    assert chain_hash("kube-system/kube-dns:dns", "udp") == "TCOU7JCQXEZGVUNU"


def test_cluster_ip_random_split_over_ready_endpoints_only():
    t = text([svc("web")], [eps("web", ("10.42.0.5", "node-a", True), ("10.42.0.6", "node-a", True),
                                ("10.42.1.7", "node-b", True), ("10.42.1.8", "node-b", False))])
    chain = "KUBE-SVC-" + chain_hash("default/web:http", "tcp")
    assert (f'-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp '
            f'-d 10.43.0.20/32 --dport 80 -j {chain}') in t
    lines = [line for line in t.splitlines() if line.startswith(f"-A {chain} ")]
    assert lines[0].endswith("! -s 10.42.0.0/16 -j KUBE-MARK-MASQ")
    assert "--probability 0.3333333333" in lines[1] and "--probability 0.5000000000" in lines[2]
    assert "statistic" not in lines[3] and len(lines) == 4
    assert "10.42.1.8" not in t
    sep = "KUBE-SEP-" + chain_hash("default/web:http", "tcp", "10.42.0.5:8080")
    assert f'-A {sep} -m comment --comment "default/web:http" -s 10.42.0.5/32 -j KUBE-MARK-MASQ' in t
    assert f'-A {sep} -m comment --comment "default/web:http" -m tcp -p tcp -j DNAT --to-destination 10.42.0.5:8080' in t
    assert "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN" in t
    assert "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000" in t
    assert t.splitlines()[-2].startswith("-A ") and t.rstrip().endswith("COMMIT")
    nat = t.split("*nat")[1]
    last = [line for line in nat.splitlines() if line.startswith("-A KUBE-SERVICES")][-1]
    assert last.endswith("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")


def test_no_endpoints_rejects_in_filter():
    t = text([svc("empty")], [eps("empty", ("10.42.0.5", "node-a", False))])
    assert ('-A KUBE-SERVICES -m comment --comment "default/empty:http has no endpoints" -m tcp -p tcp '
            '-d 10.43.0.20/32 --dport 80 -j REJECT') in t.split("*nat")[0]
    assert "KUBE-SVC-" not in t


def test_node_port_and_external_local():
    s = svc("np", type="NodePort", externalTrafficPolicy="Local",
            ports=[{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"}])
    t = text([s], [eps("np", ("10.42.0.5", "node-a", True), ("10.42.1.7", "node-b", True))])
    h = chain_hash("default/np:http", "tcp")
    assert f'-A KUBE-NODEPORTS -m comment --comment "default/np:http" -m tcp -p tcp --dport 30080 -j KUBE-EXT-{h}' in t
    assert f"-A KUBE-EXT-{h} -m comment --comment \"pod traffic for default/np:http external destinations\" " \
           f"-s 10.42.0.0/16 -j KUBE-SVC-{h}" in t
    assert f"-A KUBE-EXT-{h} -j KUBE-SVL-{h}" in t
    svl = [line for line in t.splitlines() if line.startswith(f"-A KUBE-SVL-{h}")]
    assert len(svl) == 1 and "10.42.0.5" in svl[0]  # only the local endpoint, no masquerade
    assert "masquerade traffic for default/np:http" not in t
    # no local endpoint: external traffic dropped in filter, cluster IP still served
    t2 = text([s], [eps("np", ("10.42.1.7", "node-b", True))])
    assert "has no local endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j DROP" in t2
    assert f"-j KUBE-SVC-{h}" in t2 and f"-A KUBE-EXT-{h} -j KUBE-SVL-{h}" not in t2


def test_node_port_cluster_policy_masquerades_and_load_balancer_ip():
    s = svc("lb", type="LoadBalancer", ports=[{"name": "http", "port": 80, "nodePort": 30081, "protocol": "TCP"}])
    s["status"] = {"loadBalancer": {"ingress": [{"ip": "10.254.0.1", "ipMode": "VIP"}]}}
    t = text([s], [eps("lb", ("10.42.1.7", "node-b", True))], NodeConfig("node-a", "10.42.0.0/16", ("10.254.0.1",)))
    h = chain_hash("default/lb:http", "tcp")
    assert f"-A KUBE-EXT-{h} -m comment --comment \"masquerade traffic for default/lb:http external destinations\" " \
           "-j KUBE-MARK-MASQ" in t
    assert f'"default/lb:http loadbalancer IP" -m tcp -p tcp -d 10.254.0.1/32 --dport 80 -j KUBE-EXT-{h}' in t
    assert "-d 10.254.0.1/32 -j KUBE-NODEPORTS" in t


def _lb(name="lb", ingress=("10.254.0.1",), ports=None, **spec):
    s = svc(name, type="LoadBalancer", ports=ports or [{"name": "http", "port": 80, "nodePort": 30081,
                                                        "protocol": "TCP"}], **spec)
    s["status"] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in ingress]}}
    return s


def test_load_balancer_source_ranges_go_through_a_firewall_chain():
    """Upstream's KUBE-FW-<h>: allowed sources jump on to KUBE-EXT-<h>; the rest is dropped in filter."""
    s = _lb(loadBalancerSourceRanges=["192.0.2.0/25 ", "10.253.0.0/16", "bogus", "2001:db8::/64"])
    node = NodeConfig("node-a", "10.42.0.0/16", node_ip="10.253.7.1")
    t = text([s], [eps("lb", ("10.42.1.7", "node-b", True))], node)
    h = chain_hash("default/lb:http", "tcp")
    assert f"-A KUBE-SERVICES -m comment --comment \"default/lb:http loadbalancer IP\" -m tcp -p tcp " \
           f"-d 10.254.0.1/32 --dport 80 -j KUBE-FW-{h}" in t
    fw = [line for line in t.splitlines() if line.startswith(f"-A KUBE-FW-{h} ")]
    assert fw == [
        f'-A KUBE-FW-{h} -m comment --comment "default/lb:http loadbalancer IP" -s 10.253.0.0/16 -j KUBE-EXT-{h}',
        f'-A KUBE-FW-{h} -m comment --comment "default/lb:http loadbalancer IP" -s 192.0.2.0/25 -j KUBE-EXT-{h}',
        # the node is inside a range: its own requests to the VIP come from the VIP
        f'-A KUBE-FW-{h} -m comment --comment "default/lb:http loadbalancer IP" -s 10.254.0.1/32 -j KUBE-EXT-{h}',
        f'-A KUBE-FW-{h} -m comment --comment "other traffic to default/lb:http will be dropped by '
        'KUBE-PROXY-FIREWALL"']
    assert f'-A KUBE-PROXY-FIREWALL -m comment --comment "default/lb:http traffic not accepted by KUBE-FW-{h}" ' \
           "-m tcp -p tcp -d 10.254.0.1/32 --dport 80 -j DROP" in t
    assert f":KUBE-FW-{h} - [0:0]" in t
    # node ports are not subject to the ranges (as upstream)
    assert f"--dport 30081 -j KUBE-EXT-{h}" in t
    # a node outside every range gets no rule for the VIP as a source
    t2 = text([s], [eps("lb", ("10.42.1.7", "node-b", True))], NodeConfig("node-a", "10.42.0.0/16",
                                                                          node_ip="172.16.0.1"))
    assert "-s 10.254.0.1/32" not in t2
    # without endpoints there is no firewall chain: the filter rejects, as for any LoadBalancer
    t3 = text([s], [], node)
    assert f"KUBE-FW-{h}" not in t3 and "-d 10.254.0.1/32 --dport 80 -j REJECT" in t3
    # without ranges (or without an ingress address) the VIP goes straight to the external chain
    assert "KUBE-FW-" not in text([_lb()], [eps("lb", ("10.42.1.7", "node-b", True))], node)
    assert "KUBE-FW-" not in text([_lb(ingress=(), loadBalancerSourceRanges=["10.0.0.0/8"])],
                                  [eps("lb", ("10.42.1.7", "node-b", True))], node)


def test_firewall_chain_is_deleted_when_the_ranges_go():
    slices = [eps("lb", ("10.42.1.7", "node-b", True))]
    before = service_ports([_lb(loadBalancerSourceRanges=["10.0.0.0/8"])], slices)
    after = service_ports([_lb()], slices)
    rs = build(after, NODE)
    existing = {n for n in build(before, NODE).nat if n.startswith("KUBE-")}
    inp = restore_text(rs, changed_keys(before, after), existing)
    h = chain_hash("default/lb:http", "tcp")
    assert inp.deleted_chains == [f"KUBE-FW-{h}"] and f"-X KUBE-FW-{h}" in inp.text


def test_health_check_node_port_accepted_and_counted():
    s = _lb(externalTrafficPolicy="Local", healthCheckNodePort=32001,
            ports=[{"name": "http", "port": 80, "nodePort": 30081, "protocol": "TCP"},
                   {"name": "alt", "port": 81, "nodePort": 30082, "protocol": "TCP"}])
    sl = eps("lb", ("10.42.0.5", "node-a", True), ("10.42.0.6", "node-a", False), ("10.42.1.7", "node-b", True))
    alt = eps("lb", ("10.42.0.5", "node-a", True), pname="alt")
    alt["metadata"]["name"] = "lb-alt"
    ports = service_ports([s], [sl, alt])
    t = restore_text(build(ports, NODE)).text
    assert '-A KUBE-NODEPORTS -m comment --comment "default/lb:http health check node port" -m tcp -p tcp ' \
           "--dport 32001 -j ACCEPT" in t.split("*nat")[0]
    # ready endpoints on this node, each address once across the ports
    assert health_checks(ports, "node-a") == {("default", "lb"): (32001, 1)}
    assert health_checks(ports, "node-b") == {("default", "lb"): (32001, 1)}
    assert health_checks(ports, "node-c") == {("default", "lb"): (32001, 0)}
    # only LoadBalancer + Local has one, whatever the spec says
    cluster = service_ports([_lb(externalTrafficPolicy="Cluster", healthCheckNodePort=32001)], [sl])
    assert health_checks(cluster, "node-a") == {} and "32001" not in restore_text(build(cluster, NODE)).text


def test_userspace_enforces_source_ranges_on_load_balancer_addresses_only():
    from kybernetes.proxy.userspace import UserspaceProxier

    s = _lb(loadBalancerSourceRanges=["192.0.2.0/25"], ports=[{"name": "http", "port": 80, "protocol": "TCP"}])
    ports = service_ports([s], [eps("lb", ("10.42.1.7", "node-b", True))])
    proxier = UserspaceProxier(NODE)

    async def run():
        await proxier.sync(ports)  # binding these addresses fails here (not local): logged, balancers still set
        await proxier.close()

    asyncio.run(run())
    lb, cluster = proxier.balancers[("tcp", "10.254.0.1", 80)], proxier.balancers[("tcp", "10.43.0.20", 80)]
    assert lb.admits("192.0.2.9") and not lb.admits("192.0.2.200") and not lb.admits("10.253.0.2")
    assert cluster.admits("10.253.0.2")  # the ClusterIP is not behind the load balancer's firewall


def test_invalid_packets_dropped_unless_conntrack_is_liberal():
    assert "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP" in text([], [])
    assert "INVALID" not in text([], [], NodeConfig("node-a", "10.42.0.0/16", tcp_be_liberal=True))


def test_internal_traffic_policy_local_and_session_affinity():
    s = svc("itp", internalTrafficPolicy="Local", sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    t = text([s], [eps("itp", ("10.42.0.5", "node-a", True), ("10.42.1.7", "node-b", True))])
    h = chain_hash("default/itp:http", "tcp")
    assert f"-d 10.43.0.20/32 --dport 80 -j KUBE-SVL-{h}" in t and f"KUBE-SVC-{h}" not in t
    sep = "KUBE-SEP-" + chain_hash("default/itp:http", "tcp", "10.42.0.5:8080")
    assert f"-m recent --name {sep} --rcheck --seconds 60 --reap -j {sep}" in t
    assert f"-m recent --name {sep} --set -m tcp -p tcp -j DNAT --to-destination 10.42.0.5:8080" in t
    assert "10.42.1.7" not in t


def test_partial_sync_rewrites_only_changed_chains_and_deletes_stale():
    services = [svc("a", "10.43.0.1"), svc("b", "10.43.0.2")]
    one = service_ports(services, [eps("a", ("10.42.0.5", "node-a", True)), eps("b", ("10.42.0.6", "node-a", True))])
    two = service_ports(services, [eps("a", ("10.42.0.7", "node-a", True)), eps("b", ("10.42.0.6", "node-a", True))])
    assert changed_keys(one, two) == {"default/a:http"}
    full = restore_text(build(one, NODE))
    existing = service_chains_in(full.text)
    part = restore_text(build(two, NODE), changed_keys(one, two), existing)
    a_chain, b_chain = svc_chain(two["default/a:http"]), svc_chain(two["default/b:http"])
    assert a_chain in part.written_chains and b_chain not in part.written_chains
    old_sep = "KUBE-SEP-" + chain_hash("default/a:http", "tcp", "10.42.0.5:8080")
    assert part.deleted_chains == [old_sep] and f"-X {old_sep}" in part.text
    assert "-A KUBE-SERVICES -m comment --comment \"default/b:http cluster IP\"" in part.text  # top level kept
    assert part.rules < full.rules


def test_applier_full_then_partial_then_conntrack_for_udp():
    calls = []

    async def fake(argv, stdin=None, timeout=30.0):
        calls.append((argv, stdin))
        if argv[0] == "iptables-save":
            return 0, "*nat\n:KUBE-SVC-OLDOLDOLDOLDOLDO - [0:0]\nCOMMIT\n"
        return (1, "") if "-C" in argv else (0, "")

    dns = [svc("dns", "10.43.0.10", [{"name": "dns", "port": 53, "protocol": "UDP"}])]
    p = IptablesProxier(NODE, run=fake)
    first = service_ports(dns, [eps("dns", ("10.42.0.5", "node-a", True), port=53, pname="dns", proto="UDP")])
    asyncio.run(p.sync(first))
    restore = [s for a, s in calls if a[0] == "iptables-restore"]
    assert "-X KUBE-SVC-OLDOLDOLDOLDOLDO" in restore[0]
    assert any(a[:4] == ["iptables", "-w", "5", "-t"] and "-I" in a for a, _ in calls)
    assert ["conntrack", "-D", "-p", "udp", "--orig-dst", "10.43.0.10"] in [a for a, _ in calls]
    calls.clear()
    assert asyncio.run(p.sync(first)) is False and calls == []  # nothing changed: nothing run
    second = service_ports(dns, [eps("dns", ("10.42.0.9", "node-a", True), port=53, pname="dns", proto="UDP")])
    asyncio.run(p.sync(second))
    assert [a[0] for a, _ in calls][0] == "iptables-restore"  # partial: no iptables-save, no jump checks
    assert ["conntrack", "-D", "-p", "udp", "--orig-dst", "10.43.0.10", "--dst-nat", "10.42.0.5"] in [a for a, _ in calls]
    # the node's address changed (firewall chains depend on it): a full sync, however little else changed
    calls.clear()
    p.set_node(NodeConfig("node-a", "10.42.0.0/16", node_ip="10.253.0.1"))
    assert asyncio.run(p.sync(second)) is True and calls[0][0][0] != "iptables-restore"
    assert p.stats.full_syncs == 2


def test_stale_udp_flows_nodeport():
    s = svc("u", type="NodePort", ports=[{"name": "", "port": 53, "nodePort": 30053, "protocol": "UDP"}])
    old = service_ports([s], [eps("u", ("10.42.0.5", "node-a", True), port=53, pname="", proto="UDP")])
    new = service_ports([s], [])
    assert ["-D", "-p", "udp", "--orig-port-dst", "30053", "--dst-nat", "10.42.0.5"] in stale_udp_flows(old, new)


def test_userspace_listeners_and_round_robin():
    s = svc("np", type="NodePort", externalTrafficPolicy="Local",
            ports=[{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"}])
    ports = service_ports([s], [eps("np", ("10.42.0.5", "node-a", True), ("10.42.1.7", "node-b", True))])
    want = listen_addresses(ports)
    assert want == {("tcp", "10.43.0.20", 80): ("default/np:http", False),
                    ("tcp", "0.0.0.0", 30080): ("default/np:http", True)}
    sp = ports["default/np:http"]
    assert [e.ip for e in endpoints_for(sp, "node-a", True)] == ["10.42.0.5"]
    b = Balancer(endpoints_for(sp, "node-a", False))
    assert [b.order("c")[0].ip for _ in range(4)] == ["10.42.0.5", "10.42.1.7", "10.42.0.5", "10.42.1.7"]
    b.affinity_seconds = 60
    b.chose("c", b.endpoints[1])
    assert all(b.order("c")[0].ip == "10.42.1.7" for _ in range(3))


def test_host_gw_routes():
    nodes = [{"metadata": {"name": n}, "spec": {"podCIDR": cidr},
              "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}
             for n, cidr, ip in (("node-a", "10.42.0.0/24", "10.254.0.1"), ("node-b", "10.42.1.0/24", "10.254.0.2"),
                                 ("node-c", "", "10.254.0.3"))]
    assert desired_routes(nodes, "node-a") == {"10.42.1.0/24": "10.254.0.2"}


def test_service_lb_addresses():
    from kybernetes.controllers.servicelb import node_addresses, parse_pool, pool_address

    assert parse_pool("10.0.0.8/30") == ["10.0.0.9", "10.0.0.10"]
    assert parse_pool("10.0.0.5-10.0.0.7") == ["10.0.0.5", "10.0.0.6", "10.0.0.7"]
    ready = [{"type": "Ready", "status": "True"}]
    nodes = [{"spec": {}, "status": {"conditions": ready, "addresses": [{"type": "InternalIP", "address": "10.1.0.2"}]}},
             {"spec": {}, "status": {"conditions": ready, "addresses": [{"type": "InternalIP", "address": "10.1.0.9"},
                                                                        {"type": "ExternalIP", "address": "1.2.3.4"}]}},
             {"spec": {}, "status": {"conditions": [{"type": "Ready", "status": "False"}],
                                     "addresses": [{"type": "InternalIP", "address": "10.1.0.3"}]}}]
    assert node_addresses(nodes) == ["1.2.3.4", "10.1.0.2"]
    pool = ["10.0.0.5", "10.0.0.6"]

    def lb(name, ingress=(), want=""):
        return {"metadata": {"name": name, "namespace": "default"},
                "spec": {"type": "LoadBalancer", "loadBalancerIP": want},
                "status": {"loadBalancer": {"ingress": [{"ip": i} for i in ingress]}}}

    a, b, d = lb("a", ["10.0.0.5"]), lb("b", want="10.0.0.5"), lb("d")
    assert pool_address(a, [a, b, d], pool) == "10.0.0.5"  # keeps its own
    assert pool_address(b, [a, b, d], pool) == "10.0.0.6"  # asked for a taken one: the next free
    assert pool_address(d, [a, lb("b", ["10.0.0.6"]), d], pool) == ""  # pool exhausted
