"""`_changes` (walking only what differs) against the whole-object walk it replaces, on random edits."""

from __future__ import annotations

import copy
import random

import pytest

from kybernetes.api import managedfields as mf
from kybernetes.api import schema

POD = schema.for_kind("", "v1", "Pod")
LEASE = schema.for_kind("coordination.k8s.io", "v1", "Lease")


def pod() -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "default", "uid": "u1", "resourceVersion": "5",
                     "labels": {"app": "web", "tier": "front"}, "annotations": {"a": "1"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "r1",
                                          "controller": True}],
                     "finalizers": ["x/y"]},
        "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                 "env": [{"name": "A", "value": "1"}],
                                 "resources": {"requests": {"cpu": "10m"}, "limits": {}}}],
                 "nodeSelector": {"disk": "ssd"}, "tolerations": [{"key": "k", "operator": "Exists"}],
                 "unknownField": {"nested": {"deep": 1}}},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
                   "containerStatuses": [{"name": "c", "ready": False, "restartCount": 0,
                                          "state": {"waiting": {"reason": "ContainerCreating"}}}],
                   "hostIP": "10.0.0.1", "podIPs": []},
    }


VALUES = [None, {}, [], 0, 1, "x", "y", True, {"k": "v"}, {"nested": {"deep": 2}}, [1, 2],
          [{"name": "c", "image": "i"}], [{"name": "d"}], {"a": {}}]


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def mutate(obj: dict, rng: random.Random) -> dict:
    out = copy.deepcopy(obj)
    for _ in range(rng.randint(1, 4)):
        path = rng.choice([p for p in _paths(out) if p])
        parent = out
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        action = rng.random()
        if isinstance(parent, dict) and action < 0.25:
            del parent[last]
        elif isinstance(parent, dict) and action < 0.45:
            parent[f"new{rng.randint(0, 3)}"] = copy.deepcopy(rng.choice(VALUES))
        elif isinstance(parent, list) and action < 0.3:
            parent.pop(last)
        else:
            parent[last] = copy.deepcopy(rng.choice(VALUES))
    return out


def whole(old, new, node, subresource):
    return mf._compare(mf._values_of(old, node, subresource, maps=True),
                       mf._values_of(new, node, subresource, maps=True))


@pytest.mark.parametrize("subresource", ["", "status"])
def test_changes_match_the_whole_walk_on_random_edits(subresource):
    rng = random.Random(7)
    base = pod()
    for _ in range(1500):
        old = mutate(base, rng) if rng.random() < 0.5 else base
        new = mutate(old, rng)
        assert mf._changes(old, new, POD, subresource) == whole(old, new, POD, subresource), (old, new)


def test_a_lease_renewal_takes_only_renew_time():
    old = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"},
           "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": "2026-11-25T10:00:00.000000Z"}}
    new = copy.deepcopy(old)
    new["spec"]["renewTime"] = "2026-11-25T10:00:10.000000Z"
    assert mf._changes(old, new, LEASE, "") == (set(), set(), {("f:spec", "f:renewTime")})
    assert mf._changes(old, new, LEASE, "") == whole(old, new, LEASE, "")


def test_an_empty_list_added_to_a_list_map_item():
    old = pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["volumeMounts"] = []
    assert mf._changes(old, new, POD, "") == whole(old, new, POD, "")
