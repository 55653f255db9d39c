"""Shared fixtures: one real `kyb server` per test module (fast), or per test when needed."""

from __future__ import annotations

import os

import pytest

# every API server of the suite checks that objects handed to its watch cache by writers stay what
# their stored bytes say (apiserver.watchcache.KeptCheck): a divergence ends it with exit code 3
os.environ.setdefault("KYB_VERIFY_KEPT", "1")

from .cluster import Cluster, free_port


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("kyb"), free_port())
    c.start()
    yield c
    code = c.stop()
    assert code == 0, f"kyb server exited with {code} on SIGTERM:\n{c.log()}"


@pytest.fixture
def fresh_cluster(tmp_path):
    c = Cluster(tmp_path, free_port())
    c.start()
    yield c
    c.stop()
