"""The worker on a real Redis Cluster: counts equal the reference through resharding,
failover and a restart of the whole cluster, and the top lists agree.

Each test feeds live simulated traffic while it disturbs the cluster (see ``ride_out``),
then compares every repo's daily and all-time counts, and the top 30-day and all-time
lists read through the cluster, with the batch reference over the same log.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from redis.crc import key_slot

from stream.devstack.redis_cluster import LocalCluster
from stream.settings import Settings
from stream.store import keys
from stream.store.connect import RedisConfig, connect
from stream.store.reader import CounterReader
from stream.store.window import window_bounds
from tests.integration.api.support import assert_top
from tests.integration.test_worker_exact import assert_exact, simulated
from tests.support import Feeder, start_worker, wait_committed

pytestmark = pytest.mark.integration


def assert_tops(settings: Settings, expected: dict) -> None:
    """The 30-day and all-time top 20 of each type, read from the cluster, are the reference's."""
    today = datetime.now(UTC).date()
    first = window_bounds(today)[0].isoformat()

    async def read() -> dict[tuple[str, bool], list[tuple[str, int]]]:
        client = await connect(RedisConfig(settings.redis_url))
        reader = CounterReader(client)
        try:
            return {(t, all_time): [(r.repo, r.downloads) for r in
                                    await reader.leaders(t, 20, all_time=all_time, today=today)]
                    for t in keys.COUNTED_TYPES for all_time in (False, True)}
        finally:
            await client.aclose()

    for (repo_type, all_time), actual in asyncio.run(read()).items():
        values = [(key.partition(":")[2], data["downloadsAllTime"] if all_time else
                   sum(n for day, n in data["daily"].items() if day >= first))
                  for key, data in expected.items() if key.startswith(f"{repo_type}:")]
        assert_top(actual, sorted(values, key=lambda rv: (-rv[1], rv[0])), 20)


def count_through(settings: Settings, workdir, seed: int, disturb, what: str, events: int = 80_000) -> None:
    """Feed live requests while ``disturb()`` runs: the worker must ride it out and count exactly."""
    records, expected = simulated(settings, events, seed=seed)
    feeder = Feeder(settings, records, rate=8_000).start()
    worker = start_worker(settings, workdir)
    try:
        time.sleep(2)
        disturb()
        wait_committed(settings, feeder.join())
        assert worker.running, f"the worker must ride out {what}"
    finally:
        worker.stop()
    assert_exact(settings, expected)
    assert_tops(settings, expected.counts)


def test_counts_exact_on_a_cluster(cluster_settings, workdir, redis_cluster):
    # The plain path on three masters: every shard call lands on its slot's master.
    count_through(cluster_settings, workdir, 31, lambda: None, "nothing")


def shard_slots(shards: int) -> set[int]:
    """The slots of the counter shards (every key of shard N carries the hash tag {N})."""
    return {key_slot(f"{{{shard}}}".encode()) for shard in range(shards)}


def test_resharding_under_load_stays_exact(cluster_settings, workdir, redis_cluster: LocalCluster):
    # Moving slots with their keys: calls get MOVED (slot gone), ASK (keys on the way) or
    # TRYAGAIN (a call's keys split between the two nodes); nothing may count twice or be lost.
    source = max(redis_cluster.masters(), key=lambda m: len({s for s in shard_slots(16) if m.serves(s)}))
    target = next(m for m in redis_cluster.masters() if m.node_id != source.node_id)
    carried = {slot for slot in shard_slots(cluster_settings.shards) if source.serves(slot)}
    redis_cluster.reset_stats()
    count_through(cluster_settings, workdir, 32, lambda: redis_cluster.reshard(source, target, 3000), "resharding")
    moved = {slot for slot in carried if next(m for m in redis_cluster.masters() if m.serves(slot)).port == target.port}
    assert moved, "the move must carry counter shards, or it tests nothing"
    redirected = redis_cluster.error_replies()
    assert redirected.get("MOVED", 0) + redirected.get("ASK", 0) > 0, f"no call was redirected: {redirected}"


def test_master_failover_under_load_stays_exact(cluster_settings, workdir, redis_cluster: LocalCluster):
    # SIGKILL a master mid-stream: its replica takes over after the node timeout; the
    # worker's calls to it fail meanwhile and are retried; the old master rejoins as a
    # replica. The worker waits for one replica of every master it wrote to
    # (HUBCOUNTER_REDIS_MIN_REPLICAS=1), through the failover too.
    cluster_settings = cluster_settings.model_copy(update={"redis_min_replicas": 1})
    master = redis_cluster.masters()[0]
    replica = redis_cluster.replica_of(master)

    def failover() -> None:
        redis_cluster.node_of(master.port).kill()
        redis_cluster.wait_master(replica.port)
        time.sleep(1)  # let the worker count on the new master before the old one returns
        redis_cluster.node_of(master.port).start()

    count_through(cluster_settings, workdir, 33, failover, "a failover")


def test_whole_cluster_restart_stays_exact(cluster_settings, workdir, redis_cluster: LocalCluster):
    # Every node killed and started again from its files (nodes.conf, append-only file
    # with fsync always): nothing Redis acknowledged is lost, nothing is counted twice.
    count_through(cluster_settings, workdir, 34, redis_cluster.restart_all, "a restart of the cluster")
