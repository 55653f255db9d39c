"""Shared fixtures: one real `kyb server` per test module (fast), or per test when needed."""

from __future__ import annotations

import pytest

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
