"""The process GC policy: survivors are frozen, and a full collection still finds frozen cycles."""

import gc
import weakref

import pytest

from kybernetes.cli.gcpolicy import GCPolicy


class Node:
    pass


now = [0.0]


@pytest.fixture
def policy():
    p = GCPolicy(full_every=600, clock=lambda: now[0])
    p.install()
    yield p
    p.uninstall()


def test_survivors_of_a_generation_1_collection_are_frozen(policy):
    before = gc.get_freeze_count()
    keep = [Node() for _ in range(5000)]
    gc.collect(1)
    assert gc.get_freeze_count() >= before + len(keep)


def test_a_frozen_cycle_is_reclaimed_by_the_full_collection(policy):
    a, b = Node(), Node()
    a.other, b.other = b, a
    ref = weakref.ref(a)
    gc.collect(1)  # the live cycle is frozen
    del a, b
    gc.collect(1)
    assert ref() is not None, "a frozen cycle is not seen by the young collections"
    assert policy.full_collection() >= 2
    assert ref() is None


def test_full_collection_is_due_after_the_interval(policy):
    now[0] = 0.0
    policy.full_collection()
    assert not policy.due()
    now[0] = 601.0
    assert policy.due()
    policy.full_collection()
    assert not policy.due()


def test_doubled_memory_brings_a_full_collection_forward_but_not_sooner_than_the_minimum(policy, monkeypatch):
    import kybernetes.cli.gcpolicy as gcpolicy

    rss = [100 << 20]
    monkeypatch.setattr(gcpolicy, "rss_bytes", lambda: rss[0])
    now[0] = 0.0
    policy.full_collection()
    assert policy.rss_after_full == 100 << 20
    rss[0] = 250 << 20  # more than doubled
    now[0] = 60.0
    assert not policy.due(), "a heap growing fast must not pay a full collection at every doubling"
    now[0] = 301.0
    assert policy.due()
    policy.full_collection()  # now at 250 MiB
    now[0] = 700.0
    assert not policy.due(), "not doubled since, and the interval (600 s here) not over"
