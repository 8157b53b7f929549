"""One REDIS_URL, whatever it names: a single Redis or any node of a cluster, in plain TCP
or TLS, with an ACL user; the store counts and reads the same through each."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from stream.counting import Tally
from stream.devstack import Stack, redis_process
from stream.devstack.redis_cluster import LocalCluster
from stream.devstack.tls import make_tls_files
from stream.errors import ConfigError, StoreRefused
from stream.store.connect import RedisConfig, connect
from stream.store.reader import CounterReader
from stream.store.writer import CounterStore, PartitionRange

pytestmark = pytest.mark.integration

# A worker's user: the counter keys, reads and writes, its scripts, and what the cluster
# client asks at start. (No FLUSHALL, no CONFIG, no KEYS.)
WORKER_ACL = ("on", ">counter-secret", "~hc:*", "+@read", "+@write", "+evalsha", "+script|load", "+ping", "+info",
              "+cluster|slots", "+cluster|shards", "+cluster|nodes", "+command")


async def client_type(config: RedisConfig) -> str:
    client = await connect(config)
    await client.aclose()
    return "cluster" if isinstance(client, RedisCluster) else "single"


def test_the_url_alone_tells_a_cluster_from_one_redis(stack: Stack, redis_cluster: LocalCluster) -> None:
    # auto asks the node (INFO cluster); true and false skip the question.
    assert asyncio.run(client_type(RedisConfig(redis_cluster.url_of(redis_cluster.nodes[4].port)))) == "cluster"
    assert asyncio.run(client_type(RedisConfig(stack.redis_url))) == "single"
    assert asyncio.run(client_type(RedisConfig(redis_cluster.url, cluster="false"))) == "single"
    with pytest.raises(ConfigError, match="not a cluster node"):
        asyncio.run(client_type(RedisConfig(stack.redis_url, cluster="true")))


async def count_and_read(url: str) -> tuple[int, list[tuple[str, int]]]:
    """Apply a small tally through ``url`` and read it back: (all-time of one repo, the top 3)."""
    client = await connect(RedisConfig(url))
    try:
        store = CounterStore(client, 8, timedelta(days=7))
        await store.ensure_config()
        await store.roll_windows(datetime.now(UTC))
        day = datetime.now(UTC).date().isoformat()
        await store.apply(Tally(plain={(f"model:org/r{i}", day): i for i in range(1, 40)}),
                          [PartitionRange("events:0", 0, 39, 0)])
        reader = CounterReader(client)
        found = await reader.repo_counts("model", "org/r7", datetime.now(UTC).date(), datetime.now(UTC).date())
        assert found is not None
        return found.downloads_all_time, [(r.repo, r.downloads) for r in await reader.top(("model",), 3)]
    finally:
        await client.aclose()


def test_tls_and_an_acl_user_in_both_modes(tmp_path: Path) -> None:
    # rediss:// with the CA in the URL, user:password@ for an ACL user: one Redis and a
    # TLS-only cluster (client, bus and replication links) count and read alike.
    tls = make_tls_files(tmp_path / "tls")
    single = redis_process(tmp_path, durable=False, tls=tls)
    cluster = LocalCluster(tmp_path / "cluster", durable=False, tls=tls)
    try:
        single.start()
        cluster.start(masters=3, replicas=0)
        # (LocalCluster's redis-cli helpers work on any list of nodes, a single one too.)
        for nodes in (LocalCluster(tmp_path, tls=tls, nodes=[single]), cluster):
            nodes.acl_user("counter", *WORKER_ACL)
        expected = (7, [("org/r39", 39), ("org/r38", 38), ("org/r37", 37)])
        assert asyncio.run(count_and_read(tls.url(single.port, "counter:counter-secret@"))) == expected
        assert asyncio.run(count_and_read(cluster.url_of(cluster.nodes[1].port, "counter:counter-secret@"))) == expected
        with pytest.raises(StoreRefused, match="invalid username-password"):  # needs an operator
            asyncio.run(count_and_read(cluster.url_of(cluster.nodes[1].port, "counter:wrong@")))
    finally:
        cluster.stop()
        single.stop()
