"""Fixtures of the Redis Cluster tests: one real local cluster for the session.

Three masters and three replicas of Debian's ``redis-server`` (see
:mod:`stream.devstack.redis_cluster`). Tests that kill or restart nodes leave the cluster
whole again (every node running, every slot served), and each test starts by waiting
for that, on an empty cluster.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stream.devstack.redis_cluster import LocalCluster
from stream.settings import Settings


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def cluster_settings(settings: Settings, redis_cluster: LocalCluster) -> Settings:
    """The test's worker settings (own topics and group) on the empty, whole cluster."""
    for node in redis_cluster.nodes:
        if not node.running:
            node.start()  # a node a failed test left down rejoins as a replica
    redis_cluster.wait_healthy()
    redis_cluster.flush()
    return settings.model_copy(update={"redis_url": redis_cluster.url})
