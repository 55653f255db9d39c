"""Scheduler plugins, queue, FitError and preemption on objects built here (no API server)."""

from __future__ import annotations

import asyncio

import pytest

from kybernetes.scheduler.framework import Code, CycleState, Diagnosis, FitError, Framework, Handle, NodeInfo, Status
from kybernetes.scheduler.plugins import DEFAULT_PLUGINS, REGISTRY
from kybernetes.scheduler.plugins.balancedallocation import NodeResourcesBalancedAllocation
from kybernetes.scheduler.plugins.defaultbinder import DefaultBinder
from kybernetes.scheduler.plugins.defaultpreemption import pick_one_node, select_victims_on_node
from kybernetes.scheduler.plugins.interpodaffinity import InterPodAffinity
from kybernetes.scheduler.plugins.nodeaffinity import NodeAffinity
from kybernetes.scheduler.plugins.nodename import NodeName
from kybernetes.scheduler.plugins.nodeports import NodePorts
from kybernetes.scheduler.plugins.noderesources import NodeResourcesFit
from kybernetes.scheduler.plugins.nodeunschedulable import NodeUnschedulable
from kybernetes.scheduler.plugins.podtopologyspread import PodTopologySpread
from kybernetes.scheduler.plugins.queuesort import PrioritySort
from kybernetes.scheduler.plugins.tainttoleration import TaintToleration
from kybernetes.scheduler.plugins.volumebinding import VolumeBinding
from kybernetes.scheduler.queue import QueuedPodInfo, SchedulingQueue
from kybernetes.scheduler.resources import pod_requests
from kybernetes.scheduler.scheduler import Scheduler, num_feasible_nodes_to_find, select_host


# --- builders ---------------------------------------------------------------------------------------
def node(name, cpu="4", memory="8Gi", pods="110", labels=None, taints=None, unschedulable=False):
    n = {"apiVersion": "v1", "kind": "Node",
         "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
         "spec": {}, "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods}}}
    if taints:
        n["spec"]["taints"] = taints
    if unschedulable:
        n["spec"]["unschedulable"] = True
    return n


def pod(name, cpu=None, memory=None, ns="default", labels=None, node_name=None, priority=None, **spec):
    requests = {}
    if cpu:
        requests["cpu"] = cpu
    if memory:
        requests["memory"] = memory
    container = {"name": "c", "image": "busybox", "resources": {"requests": requests} if requests else {}}
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels or {},
                      "creationTimestamp": "2024-01-01T00:00:00Z"},
         "spec": {"containers": [container], "schedulerName": "default-scheduler", **spec}, "status": {}}
    if node_name:
        p["spec"]["nodeName"] = node_name
    if priority is not None:
        p["spec"]["priority"] = priority
    return p


def info(n, *pods):
    return NodeInfo(n, list(pods))


def run_filter(plugin, p, nodes, target=None):
    state = CycleState()
    if callable(getattr(plugin, "pre_filter", None)):
        _, s = plugin.pre_filter(state, p, nodes)
        if s.is_skip():
            return Status()
        if not s.is_success():
            return s
    return plugin.filter(state, p, target or nodes[0])


def run_score(plugin, p, nodes):
    state = CycleState()
    if callable(getattr(plugin, "pre_score", None)):
        s = plugin.pre_score(state, p, nodes)
        if s.is_skip():
            return None
    scores = {n.name: plugin.score(state, p, n)[0] for n in nodes}
    if callable(getattr(plugin, "normalize_score", None)):
        plugin.normalize_score(state, p, scores)
    return scores


class FakeClient:
    def __init__(self):
        self.calls = []

    async def create(self, group, version, plural, body, namespace="", subresource="", name="", **kw):
        self.calls.append(("create", plural, namespace, name, subresource, body))
        return body

    async def patch(self, group, version, plural, name, body, namespace="", subresource="", patch_type="", **kw):
        self.calls.append(("patch", plural, namespace, name, subresource, body))
        return body

    async def delete(self, group, version, plural, name, namespace="", **kw):
        self.calls.append(("delete", plural, namespace, name, "", None))
        return {}


class Lister:
    def __init__(self, objs, namespaced=True):
        self.store = {(f"{o['metadata']['namespace']}/" if namespaced else "") + o["metadata"]["name"]: o
                      for o in objs}

    def get(self, key):
        return self.store.get(key)

    def list(self):
        return list(self.store.values())


# --- resources ------------------------------------------------------------------------------------------
def test_pod_requests_init_containers_max_and_overhead():
    p = pod("p", cpu="500m", memory="128Mi")
    p["spec"]["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": "2", "memory": "64Mi"}}}]
    p["spec"]["overhead"] = {"cpu": "100m"}
    r = pod_requests(p)
    assert r.milli_cpu == 2100 and r.memory == 128 * 2**20
    assert pod_requests(pod("be"), non_zero=True).milli_cpu == 100


def test_node_resources_fit_filter_and_score():
    fit = NodeResourcesFit()
    n = info(node("n1", cpu="2", memory="4Gi", pods="2"), pod("a", cpu="1500m", node_name="n1"))
    assert run_filter(fit, pod("p", cpu="500m"), [n]).is_success()
    s = run_filter(fit, pod("p", cpu="1", memory="8Gi"), [n])
    assert s.reasons == ["Insufficient cpu", "Insufficient memory"]
    assert s.code == Code.UNSCHEDULABLE
    s = run_filter(fit, pod("p", cpu="1"), [n])
    assert s.code == Code.UNSCHEDULABLE and s.reasons == ["Insufficient cpu"]
    full = info(node("n2", pods="1"), pod("x", node_name="n2"))
    assert run_filter(fit, pod("p"), [full]).reasons == ["Too many pods"]
    empty, busy = info(node("e", cpu="4", memory="4Gi")), info(node("b", cpu="4", memory="4Gi"),
                                                                 pod("x", cpu="2", memory="2Gi", node_name="b"))
    scores = run_score(fit, pod("p", cpu="1", memory="1Gi"), [empty, busy])
    assert scores == {"e": 75, "b": 25}


def test_balanced_allocation():
    ba = NodeResourcesBalancedAllocation()
    a = info(node("a", cpu="4", memory="4Gi"))
    b = info(node("b", cpu="4", memory="4Gi"), pod("x", cpu="2", node_name="b"))
    scores = run_score(ba, pod("p", cpu="1", memory="1Gi"), [a, b])
    assert scores["a"] == 100 and scores["b"] == 75
    assert run_score(ba, pod("be"), [a]) is None  # best effort: skipped


def test_node_name_and_unschedulable():
    n = info(node("n1"))
    assert NodeName().filter(CycleState(), pod("p", nodeName="n2"), n).reasons == [
        "node(s) didn't match the requested node name"]
    cordoned = info(node("n1", unschedulable=True))
    s = NodeUnschedulable().filter(CycleState(), pod("p"), cordoned)
    assert s.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE and s.reasons == ["node(s) were unschedulable"]
    tolerant = pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                      "effect": "NoSchedule"}])
    assert NodeUnschedulable().filter(CycleState(), tolerant, cordoned).is_success()


def test_node_ports():
    def with_port(name, port, ip=None, node_name=None):
        p = pod(name, node_name=node_name)
        p["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": port,
                                                **({"hostIP": ip} if ip else {})}]
        return p
    n = info(node("n1"), with_port("a", 8080, "10.0.0.1", "n1"))
    assert run_filter(NodePorts(), with_port("b", 8080), [n]).reasons == [
        "node(s) didn't have free ports for the requested pod ports"]
    assert run_filter(NodePorts(), with_port("b", 8080, "10.0.0.2"), [n]).is_success()
    assert run_filter(NodePorts(), with_port("b", 9090), [n]).is_success()


def test_node_affinity_selector_and_operators():
    na = NodeAffinity()
    n = info(node("n1", labels={"zone": "a", "gpu": "2"}))

    def req(*exprs, fields=()):
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": list(exprs), "matchFields": list(fields)}]}}}
    assert run_filter(na, pod("p", nodeSelector={"zone": "a"}), [n]).is_success()
    s = run_filter(na, pod("p", nodeSelector={"zone": "b"}), [n])
    assert s.reasons == ["node(s) didn't match Pod's node affinity/selector"]
    for expr, ok in [({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
                     ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
                     ({"key": "ssd", "operator": "Exists"}, False),
                     ({"key": "ssd", "operator": "DoesNotExist"}, True),
                     ({"key": "gpu", "operator": "Gt", "values": ["1"]}, True),
                     ({"key": "gpu", "operator": "Lt", "values": ["2"]}, False)]:
        assert run_filter(na, pod("p", affinity=req(expr)), [n]).is_success() is ok, expr
    by_name = pod("p", affinity=req(fields=[{"key": "metadata.name", "operator": "In", "values": ["n1"]}]))
    result, _ = na.pre_filter(CycleState(), by_name, [n])
    assert result.node_names == {"n1"} and na.filter(CycleState(), by_name, n).is_success()
    preferred = pod("p", affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
        {"weight": 30, "preference": {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}}]}})
    scores = run_score(na, preferred, [n, info(node("n2", labels={"zone": "a"}))])
    assert scores == {"n1": 100, "n2": 25}


def test_taint_toleration():
    tt = TaintToleration()
    cp = info(node("cp", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]))
    s = tt.filter(CycleState(), pod("p"), cp)
    assert s.reasons == ["node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"]
    tol = pod("p", tolerations=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}])
    assert tt.filter(CycleState(), tol, cp).is_success()
    soft = info(node("soft", taints=[{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]))
    assert run_score(tt, pod("p"), [soft, info(node("plain"))]) == {"soft": 0, "plain": 100}


def affinity(kind, key, labels, required=True, weight=10):
    term = {"labelSelector": {"matchLabels": labels}, "topologyKey": key}
    if required:
        return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": weight, "podAffinityTerm": term}]}}


def test_inter_pod_affinity_required():
    ipa = InterPodAffinity()
    a = info(node("a", labels={"zone": "z1"}), pod("db", labels={"app": "db"}, node_name="a"))
    b = info(node("b", labels={"zone": "z1"}))
    c = info(node("c", labels={"zone": "z2"}))
    nodes = [a, b, c]
    p = pod("web", labels={"app": "web"}, affinity=affinity("podAffinity", "zone", {"app": "db"}))
    assert [run_filter(ipa, p, nodes, n).is_success() for n in nodes] == [True, True, False]
    assert run_filter(ipa, p, nodes, c).reasons == ["node(s) didn't match pod affinity rules"]
    anti = pod("web", labels={"app": "web"}, affinity=affinity("podAntiAffinity", "zone", {"app": "db"}))
    assert [run_filter(ipa, anti, nodes, n).is_success() for n in nodes] == [False, False, True]
    assert run_filter(ipa, anti, nodes, a).reasons == ["node(s) didn't match pod anti-affinity rules"]
    # An existing pod's anti-affinity keeps matching pods out of its zone.
    lonely = pod("lonely", labels={"app": "lonely"}, node_name="c",
                 affinity=affinity("podAntiAffinity", "zone", {"app": "web"}))
    c2 = info(node("c", labels={"zone": "z2"}), lonely)
    s = run_filter(ipa, pod("w", labels={"app": "web"}), [a, b, c2], c2)
    assert s.reasons == ["node(s) didn't satisfy existing pods anti-affinity rules"]
    # The first pod of a self-affine group may go anywhere.
    first = pod("s", labels={"app": "s"}, affinity=affinity("podAffinity", "zone", {"app": "s"}))
    assert run_filter(ipa, first, nodes, c).is_success()


def test_inter_pod_affinity_preferred_score():
    ipa = InterPodAffinity()
    a = info(node("a", labels={"zone": "z1"}), pod("db", labels={"app": "db"}, node_name="a"))
    c = info(node("c", labels={"zone": "z2"}))
    p = pod("web", affinity=affinity("podAffinity", "zone", {"app": "db"}, required=False))
    assert run_score(ipa, p, [a, c]) == {"a": 100, "c": 0}
    p = pod("web", affinity=affinity("podAntiAffinity", "zone", {"app": "db"}, required=False))
    assert run_score(ipa, p, [a, c]) == {"a": 0, "c": 100}


def spread(max_skew=1, key="zone", when="DoNotSchedule", min_domains=None):
    c = {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
         "labelSelector": {"matchLabels": {"app": "web"}}}
    if min_domains:
        c["minDomains"] = min_domains
    return [c]


def test_pod_topology_spread_filter():
    pts = PodTopologySpread()
    web = {"app": "web"}
    a = info(node("a", labels={"zone": "z1"}), pod("w1", labels=web, node_name="a"), pod("w2", labels=web,
                                                                                          node_name="a"))
    b = info(node("b", labels={"zone": "z2"}), pod("w3", labels=web, node_name="b"))
    nolabel = info(node("x"))
    p = pod("w4", labels=web, topologySpreadConstraints=spread())
    nodes = [a, b, nolabel]
    assert not run_filter(pts, p, nodes, a).is_success()
    assert run_filter(pts, p, nodes, a).reasons == ["node(s) didn't match pod topology spread constraints"]
    assert run_filter(pts, p, nodes, b).is_success()
    s = run_filter(pts, p, nodes, nolabel)
    assert s.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    # minDomains above the number of domains makes the global minimum 0.
    p3 = pod("w4", labels=web, topologySpreadConstraints=spread(max_skew=1, min_domains=3))
    assert not run_filter(pts, p3, nodes, b).is_success()


def test_pod_topology_spread_score():
    pts = PodTopologySpread()
    web = {"app": "web"}
    a = info(node("a", labels={"zone": "z1"}), pod("w1", labels=web, node_name="a"), pod("w2", labels=web,
                                                                                          node_name="a"))
    b = info(node("b", labels={"zone": "z2"}))
    scores = run_score(pts, pod("w", labels=web, topologySpreadConstraints=spread(when="ScheduleAnyway")), [a, b])
    assert scores["b"] == 100 and scores["a"] < scores["b"]


def test_volume_binding():
    pvcs = [
        {"metadata": {"name": "imm", "namespace": "default"}, "spec": {"storageClassName": "fast"}},
        {"metadata": {"name": "wait", "namespace": "default"},
         "spec": {"storageClassName": "local", "resources": {"requests": {"storage": "1Gi"}}}},
        {"metadata": {"name": "bound", "namespace": "default"}, "spec": {"volumeName": "pv1"}},
    ]
    pvs = [{"metadata": {"name": "pv1"}, "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}]}]}}}}]
    scs = [{"metadata": {"name": "fast"}, "provisioner": "x", "volumeBindingMode": "Immediate"},
           {"metadata": {"name": "local"}, "provisioner": "x", "volumeBindingMode": "WaitForFirstConsumer"}]
    client = FakeClient()
    handle = Handle(client, {"persistentvolumeclaims": Lister(pvcs), "persistentvolumes": Lister(pvs, False),
                             "storageclasses": Lister(scs, False)})
    vb = VolumeBinding(handle)

    def using(claim):
        return pod("p", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": claim}}])
    a, b = info(node("a")), info(node("b"))
    _, s = vb.pre_filter(CycleState(), using("imm"), [a])
    assert s.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert s.reasons == ["pod has unbound immediate PersistentVolumeClaims"]
    _, s = vb.pre_filter(CycleState(), using("missing"), [a])
    assert s.reasons == ['persistentvolumeclaim "missing" not found']
    assert run_filter(vb, using("bound"), [a, b], a).is_success()
    assert run_filter(vb, using("bound"), [a, b], b).reasons == ["node(s) had volume node affinity conflict"]
    state = CycleState()
    p = using("wait")
    vb.pre_filter(state, p, [a, b])
    assert vb.filter(state, p, b).is_success()
    vb.reserve(state, p, "b")
    assert asyncio.run(vb.pre_bind(state, p, "b")).is_success()
    assert client.calls == [("patch", "persistentvolumeclaims", "default", "wait", "",
                             {"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "b"}}})]


def test_default_binder():
    client = FakeClient()
    s = asyncio.run(DefaultBinder(Handle(client)).bind(CycleState(), pod("p"), "n1"))
    assert s.is_success()
    op, plural, ns, name, sub, body = client.calls[0]
    assert (op, plural, ns, name, sub) == ("create", "pods", "default", "p", "binding")
    assert body["target"] == {"apiVersion": "v1", "kind": "Node", "name": "n1"}
    assert body["kind"] == "Binding" and body["metadata"]["name"] == "p"


# --- FitError ---------------------------------------------------------------------------------------
def test_fit_error_message():
    d = Diagnosis(node_to_status={
        "cp": Status.unresolvable("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"),
        "w1": Status.unschedulable("Insufficient cpu"),
        "w2": Status.unschedulable("Insufficient cpu")})
    d.post_filter_msg = ("preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
                         "2 No preemption victims found for incoming pod.")
    assert str(FitError(pod("p"), 3, d)) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod.")
    pre = Diagnosis(pre_filter_msg="pod has unbound immediate PersistentVolumeClaims")
    assert str(FitError(pod("p"), 2, pre)) == (
        "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.")


# --- preemption ---------------------------------------------------------------------------------------
def make_framework(client=None, nodes=()):
    handle = Handle(client or FakeClient())
    fwk = Framework(REGISTRY, DEFAULT_PLUGINS, handle)
    handle.snapshot = lambda: list(nodes)
    return fwk


def test_select_victims_reprieves_most_important():
    n = info(node("n", cpu="3"), pod("low1", cpu="1", node_name="n", priority=1),
             pod("low2", cpu="1", node_name="n", priority=2), pod("high", cpu="1", node_name="n", priority=100))
    fwk = make_framework(nodes=[n])
    victims, s = select_victims_on_node(fwk, pod("p", cpu="1", priority=50), [n], n)
    assert s.is_success() and [v["metadata"]["name"] for v in victims] == ["low1"]
    victims, s = select_victims_on_node(fwk, pod("p", cpu="2", priority=50), [n], n)
    assert sorted(v["metadata"]["name"] for v in victims) == ["low1", "low2"]
    _, s = select_victims_on_node(fwk, pod("p", cpu="1", priority=0), [n], n)
    assert s.reasons == ["No preemption victims found for incoming pod"]


def test_pick_one_node():
    def v(name, prio, start="2024-01-01T00:00:00Z"):
        p = pod(name, priority=prio)
        p["status"]["startTime"] = start
        return p
    assert pick_one_node({"a": [v("x", 10)], "b": [v("y", 5)]}) == "b"
    assert pick_one_node({"a": [v("x", 5), v("y", 5)], "b": [v("z", 5)]}) == "b"
    assert pick_one_node({"a": [v("x", 5, "2024-01-01T00:00:00Z")], "b": [v("y", 5, "2024-02-01T00:00:00Z")]}) == "b"
    assert pick_one_node({"a": [v("x", 1)], "b": []}) == "b"


def test_preemption_post_filter_deletes_victims():
    client = FakeClient()
    n1 = info(node("n1", cpu="2"), pod("low", cpu="2", node_name="n1", priority=0))
    n2 = info(node("n2", cpu="2"), pod("high", cpu="2", node_name="n2", priority=1000))
    fwk = make_framework(client, [n1, n2])
    p = pod("p", cpu="1", priority=100)
    d = Diagnosis(node_to_status={"n1": Status.unschedulable("Insufficient cpu"),
                                  "n2": Status.unschedulable("Insufficient cpu")})
    result, s = asyncio.run(fwk.run_post_filter(CycleState(), p, d))
    assert s.is_success() and result.nominated_node_name == "n1"
    assert ("delete", "pods", "default", "low", "", None) in client.calls
    # Nothing to preempt anywhere: upstream's message.
    fwk = make_framework(FakeClient(), [n2])
    _, s = asyncio.run(fwk.run_post_filter(CycleState(), p, Diagnosis(
        node_to_status={"n2": Status.unschedulable("Insufficient cpu")})))
    assert s.message() == ("preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.")
    never = pod("p", cpu="1", priority=100, preemptionPolicy="Never")
    _, s = asyncio.run(make_framework(FakeClient(), [n1]).run_post_filter(CycleState(), never, d))
    assert s.message() == "preemption: not eligible due to preemptionPolicy=Never."


# --- queue ------------------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_queue_orders_by_priority_then_time():
    clock = Clock()
    q = SchedulingQueue(PrioritySort().less, clock=clock)
    q.add(pod("a", priority=1))
    clock.t += 1
    q.add(pod("b", priority=10))
    clock.t += 1
    q.add(pod("c", priority=1))
    clock.t += 1
    q.add(pod("d", priority=10))
    assert [q.pop_nowait().pod["metadata"]["name"] for _ in range(4)] == ["b", "d", "a", "c"]
    assert q.pop_nowait() is None


def test_queue_backoff_and_unschedulable():
    clock = Clock()
    q = SchedulingQueue(PrioritySort().less, clock=clock)
    q.add(pod("a"))
    qpi = q.pop_nowait()
    assert qpi.attempts == 1
    qpi.unschedulable_plugins = {"NodeResourcesFit"}
    q.add_unschedulable(qpi)
    assert q.where("default/a") == "unschedulable"
    # An event no rejecting plugin cares about leaves it; a relevant one moves it (into backoff: 1 s).
    assert q.move_all_to_active_or_backoff("PvcChange") == 0
    assert q.move_all_to_active_or_backoff("NodeAdd") == 1
    assert q.where("default/a") == "backoff" and q.pop_nowait() is None
    clock.t += 1.01
    qpi = q.pop_nowait()
    assert qpi is not None and qpi.attempts == 2
    assert [q.backoff_duration(QueuedPodInfo(qpi.pod, 0, attempts=n)) for n in (1, 2, 3, 4, 5, 6)] == [
        1, 2, 4, 8, 10, 10]
    # Failed with an event in between: straight to backoff, not the pool.
    q.move_all_to_active_or_backoff("NodeAdd")
    qpi.unschedulable_plugins = {"NodeResourcesFit"}
    q.add_unschedulable(qpi, cycle=q.scheduling_cycle)
    assert q.where("default/a") == "backoff"
    clock.t += 2.01
    qpi = q.pop_nowait()
    qpi.unschedulable_plugins = {"NodeResourcesFit"}
    q.add_unschedulable(qpi)
    assert q.where("default/a") == "unschedulable"
    clock.t += 301
    q.flush()
    assert q.where("default/a") == "active"


def test_queue_gates_and_updates():
    clock = Clock()
    fwk = make_framework()
    q = SchedulingQueue(fwk.less, fwk.run_pre_enqueue, clock=clock)
    gated = pod("g", schedulingGates=[{"name": "wait"}])
    q.add(gated)
    assert q.where("default/g") == "gated" and q.pop_nowait() is None
    ungated = pod("g")
    q.update(gated, ungated)
    assert q.pop_nowait().pod["metadata"]["name"] == "g"
    q.delete(ungated)
    assert len(q) == 0


# --- the scheduling cycle without a server -------------------------------------------------------------
def scheduler_with(nodes, pods=()):
    client = FakeClient()
    s = Scheduler(client)
    for n in nodes:
        s.cache.add_node(n)
    for p in pods:
        s.cache.add_pod(p)
    return s, client


def test_schedule_pod_picks_least_allocated():
    s, _ = scheduler_with([node("a"), node("b")], [pod("x", cpu="3", memory="6Gi", node_name="a")])
    assert s.schedule_pod(CycleState(), pod("p", cpu="500m", memory="1Gi")) == "b"


def test_schedule_one_binds_and_reports_failure():
    cp = node("cp", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])
    s, client = scheduler_with([cp, node("w1", cpu="1"), node("w2", cpu="1")])

    async def go(p):
        s.queue.add(p)
        await s.schedule_one(s.queue.pop_nowait())
        await s.flush()

    asyncio.run(go(pod("big", cpu="2")))
    patch = next(c for c in client.calls if c[0] == "patch")
    cond = patch[5]["status"]["conditions"][0]
    assert patch[4] == "status" and cond["reason"] == "Unschedulable" and cond["status"] == "False"
    assert cond["message"] == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod.")
    event = next(c[5] for c in client.calls if c[1] == "events")
    assert event["reason"] == "FailedScheduling" and event["type"] == "Warning"
    assert event["source"] == {"component": "default-scheduler"} and event["message"] == cond["message"]
    assert s.queue.where("default/big") == "unschedulable"
    client.calls.clear()
    asyncio.run(go(pod("small", cpu="500m")))
    binding = next(c for c in client.calls if c[4] == "binding")
    assert binding[5]["target"]["name"] in ("w1", "w2")
    scheduled = next(c[5] for c in client.calls if c[1] == "events")
    assert scheduled["message"] == f"Successfully assigned default/small to {binding[5]['target']['name']}"
    assert s.cache.is_assumed("default/small")


@pytest.mark.parametrize("n,want", [(50, 50), (100, 100), (1000, 420), (5000, 500), (20000, 1000)])
def test_num_feasible_nodes(n, want):
    assert num_feasible_nodes_to_find(n) == want


def test_select_host_ties_random():
    seen = {select_host({"a": 5, "b": 5, "c": 1}) for _ in range(200)}
    assert seen == {"a", "b"}


def test_cache_assume_forget_confirm():
    s, _ = scheduler_with([node("a", cpu="2")])
    p = pod("p", cpu="1")
    s.cache.assume_pod(p, "a")
    assert s.cache.is_assumed("default/p") and s.cache.nodes["a"].requested.milli_cpu == 1000
    s.cache.forget_pod(p)
    assert s.cache.nodes["a"].requested.milli_cpu == 0 and not s.cache.nodes["a"].pods
    s.cache.assume_pod(p, "a")
    s.cache.add_pod(pod("p", cpu="1", node_name="a"))  # the informer sees it bound
    assert not s.cache.is_assumed("default/p") and len(s.cache.nodes["a"].pods) == 1
    s.cache.remove_pod(pod("p", node_name="a"))
    assert s.cache.nodes["a"].requested.milli_cpu == 0


def test_scheduler_queues_only_its_own_pending_pods():
    s, _ = scheduler_with([node("a")])
    s.on_pod_add(pod("mine"))
    s.on_pod_add(pod("other", schedulerName="my-scheduler"))
    s.on_pod_add(pod("bound", node_name="a"))
    gone = pod("gone")
    gone["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    s.on_pod_add(gone)
    assert s.queue.where("default/mine") == "active" and len(s.queue) == 1
    assert len(s.cache.nodes["a"].pods) == 1


def test_cache_swaps_a_status_update_in_place_and_reaccounts_a_changed_footprint():
    from kybernetes.scheduler.cache import Cache

    cache = Cache()
    cache.add_node(node("n1", cpu="4"))
    p = pod("p", cpu="1", labels={"app": "a"})
    cache.assume_pod(p, "n1")
    [ni] = cache.snapshot()
    assert ni.requested.milli_cpu == 1000 and "default/p" in cache.assumed
    # the binding's echo, then the kubelet's status: same spec and labels, the accounting stays
    bound = {**p, "spec": {**p["spec"], "nodeName": "n1"}, "status": {"phase": "Pending"}}
    cache.add_pod(bound)
    running = {**bound, "status": {"phase": "Running", "podIP": "10.0.0.5"}}
    cache.update_pod(bound, running)
    assert "default/p" not in cache.assumed
    assert ni.requested.milli_cpu == 1000 and len(ni.pods) == 1
    assert ni.pods[0] is running and cache.pods["default/p"] == (running, "n1")
    # labels change what affinity and spreading see: taken out and added again, still counted once
    relabeled = {**running, "metadata": {**running["metadata"], "labels": {"app": "b"}}}
    cache.update_pod(running, relabeled)
    assert ni.pods == [relabeled] and ni.requested.milli_cpu == 1000
    # a pod that has ended frees its room
    cache.update_pod(relabeled, {**relabeled, "status": {"phase": "Succeeded"}})
    assert ni.pods == [] and ni.requested.milli_cpu == 0
