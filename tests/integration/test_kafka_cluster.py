"""The worker on a three-broker Apache Kafka cluster that loses leaders under load.

Three combined KRaft nodes; the events and dead-letter topics have three replicas and
``min.insync.replicas=2``; the worker's dead-letter producer and the feeder write with
``acks=all`` and idempotence. While events flow, the broker leading the most partitions is
SIGKILLed and restarted from its log, then every broker is rolled (SIGTERM, restart). The
counts must still equal the reference over everything sent, the dead-letter topic must
hold every bad record, and the worker must never have needed a restart. How long the
moved partitions stood still is printed (``pytest -s``); docs/OPERATIONS.md has the figures.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import redis

from stream.devstack import KafkaCluster, Stack, kafka_cluster
from stream.reference import run
from stream.settings import Settings
from stream.simulate import Simulation
from tests.support import (
    Feeder,
    ProgressWatch,
    create_topics,
    isolated_settings,
    read_topic,
    send,
    snapshot,
    start_worker,
    wait_committed,
)

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

RATE = 4_000  # events/s the feeder sends for as long as the brokers are being disrupted


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    with kafka_cluster(tmp_path_factory.mktemp("cluster"), 3) as started:
        yield started


@pytest.fixture
def cluster_settings(cluster: KafkaCluster, stack: Stack, request: pytest.FixtureRequest) -> Settings:
    redis.Redis.from_url(stack.redis_url).flushall()
    return isolated_settings(stack, request.node.name, kafka_bootstrap=cluster.bootstrap)


def test_leader_changes_under_load_stay_exact(cluster: KafkaCluster, cluster_settings: Settings,
                                              workdir: Path) -> None:
    settings, topic = cluster_settings, cluster_settings.events_topic
    now = datetime.now(UTC)
    sim = Simulation(seed=51, repos=3000, now=now, bad_fraction=0.01)
    create_topics(settings, partitions=4, replication=3)
    send(settings, settings.metadata_topic, sim.metadata_records())
    records = [(r.key, r.value) for r in sim.records(60_000)]
    watch = ProgressWatch(settings).start()
    worker = start_worker(settings, workdir)
    pid = worker.pid
    feeder = Feeder(settings, records, rate=RATE, cycle=True).start()
    try:
        time.sleep(3)
        _kill_the_busiest_leader(cluster, topic, watch)
        for node in cluster.nodes:
            _roll(cluster, settings, node.node_id, watch)
        time.sleep(2)
        feeder.stop()
        wait_committed(settings, feeder.join(), timeout=180)
        assert worker.running and worker.pid == pid, "the worker must ride out the brokers' failures"
    finally:
        watch.stop()
        worker.stop()
    sent = [value for _, value in feeder.sent_records()]
    reference = run(sent, metadata=list(sim.metadata()), now=now)
    assert snapshot(settings) == reference.counts
    # At least once: a batch replayed after a lost commit sends its dead letters again.
    bad = reference.dead_lettered
    letters = read_topic(settings, settings.dlq_topic, expected=lambda got: len(_originals(got)) >= bad)
    assert bad > 0 and len(_originals(letters)) == bad


def _kill_the_busiest_leader(cluster: KafkaCluster, topic: str, watch: ProgressWatch) -> None:
    # No word to the controller: it fences the broker after broker.session.timeout.ms (9 s,
    # Kafka's default) and moves its partitions to the in-sync followers.
    leaders = cluster.leaders(topic)
    victim = Counter(leaders.values()).most_common(1)[0][0]
    moved = [p for p, leader in leaders.items() if leader == victim]
    killed_at = time.monotonic()
    cluster.node(victim).process.kill()
    took = _moved(cluster, topic, victim)
    cluster.start_node(victim)  # from its own log directory
    cluster.wait_in_sync(topic)
    print(f"\nSIGKILL of node {victim} (leader of partitions {moved}): new leaders after {took:.1f} s; "
          f"those partitions counted nothing for {watch.longest_stall(moved, killed_at):.1f} s")


def _roll(cluster: KafkaCluster, settings: Settings, node_id: int, watch: ProgressWatch) -> None:
    # A rolling upgrade's step: SIGTERM makes a controlled shutdown (leaderships handed over
    # first); the broker restarts from its log and rejoins every ISR before the next goes.
    led = [p for p, leader in cluster.leaders(settings.events_topic).items() if leader == node_id]
    stopped_at = time.monotonic()
    cluster.node(node_id).process.stop(timeout=60)
    cluster.start_node(node_id)
    for topic in (settings.events_topic, settings.dlq_topic):
        cluster.wait_in_sync(topic)
    print(f"\nrolled node {node_id} (leader of partitions {led}): those partitions counted nothing for "
          f"{watch.longest_stall(led, stopped_at):.1f} s at most")


def _moved(cluster: KafkaCluster, topic: str, node_id: int, timeout: float = 60.0) -> float:
    """Wait until no partition of ``topic`` is led by ``node_id`` (or by no one); seconds taken."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if all(leader not in (node_id, -1) for leader in cluster.leaders(topic).values()):
            return time.monotonic() - began
        time.sleep(0.1)
    raise AssertionError(f"{topic} still led by node {node_id} after {timeout:.0f} s: {cluster.leaders(topic)}")


def _originals(letters: list) -> set[tuple[int, int]]:
    """The (partition, offset) of the event each dead letter holds."""
    return {(letter["partition"], letter["offset"]) for letter in map(orjson.loads, (r.value for r in letters))}
