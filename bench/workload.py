"""The shared workload: the embedded stack, the topics, one simulated log and its reference.

Everything the contenders compare on is made once per ``python -m bench`` run: a broker
(one Apache Kafka KRaft node, or Tansu) and a redis-server on free ports, the events topic (8 partitions) holding a
simulated log of hub traffic, the compacted metadata topic of its repos, and the exact
counts :func:`stream.reference.compute` gives for that log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import redis

from bench.kafka_io import SESSION_TIMEOUT_MS, Produced, Record, produce
from bench.redisview import Counts
from stream.devstack import Stack, embedded_stack, free_port
from stream.devstack.redis_cluster import LocalCluster
from stream.devstack.stack import Broker
from stream.events import parse_timestamp
from stream.reference import run as reference_run
from stream.settings import Settings
from stream.simulate import Simulation
from stream.simulate.badrecords import TOO_EARLY, TOO_LATE
from stream.store.connect import RedisConfig, is_cluster
from stream.topics import ensure_topics, topic_specs

PARTITIONS = 8
SEED = 20_240_601
# An out-of-window record this close to a window edge could cross it while the benchmark
# runs (the window moves with the clock), so the workload leaves such records out.
_EDGE_GUARD = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each part of a run is."""

    events: int
    repos: int
    runs: int
    latency_seconds: float
    metadata_repos: int  # the worker's memory figure
    dedupe_entries: int
    library_map_repos: int

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        if quick:
            return cls(events=60_000, repos=10_000, runs=1, latency_seconds=4.0,
                       metadata_repos=50_000, dedupe_entries=50_000, library_map_repos=100_000)
        return cls(events=500_000, repos=30_000, runs=3, latency_seconds=20.0,
                   metadata_repos=1_000_000, dedupe_entries=1_000_000, library_map_repos=1_000_000)


@dataclass
class Workload:
    """The produced workload and where it lives."""

    stack: Stack
    settings: Settings
    sizes: Sizes
    now: datetime
    records: list[Record]
    metadata: list[tuple[str, dict[str, Any] | None]]
    produced: Produced
    expected: Counts
    stats: dict[str, int]
    timings: dict[str, float]
    _cluster: LocalCluster | None = None

    @property
    def workdir(self) -> Path:
        return self.stack.workdir

    @property
    def events(self) -> int:
        return len(self.records)

    @property
    def topic(self) -> str:
        return self.settings.events_topic

    def last_offsets(self) -> dict[int, int]:
        return self.produced.last_offsets()

    def redis(self, url: str | None = None) -> redis.Redis | redis.RedisCluster:
        """A synchronous client of the workload's Redis, or of the one at ``url`` (a cluster too)."""
        url = url or self.settings.redis_url
        if asyncio.run(is_cluster(RedisConfig(url))):
            return redis.RedisCluster.from_url(url)
        return redis.Redis.from_url(url)

    def flush_redis(self, url: str | None = None) -> None:
        with self.redis(url) as client:
            client.flushall()  # on a cluster: on every master

    def cluster_url(self) -> str:
        """A three-master Redis Cluster, started on first use and stopped with the workload.

        Like the single Redis it is compared with: no persistence, and no replicas (on this
        machine a replica's CPU would come out of the worker's cores, not its own host's).
        """
        if self._cluster is None:
            self._cluster = LocalCluster(self.workdir / "redis-cluster", durable=False).start(replicas=0)
        return self._cluster.url

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.stop()

    def settings_for(self, group: str, **update: Any) -> Settings:
        """Worker settings of a fresh consumer group (so it reads the topic from the start)."""
        return self.settings.model_copy(update={"group": group, "web_port": free_port(), **update})

    def describe(self) -> dict[str, Any]:
        return {
            "events": self.events, "partitions": PARTITIONS, "repos_in_metadata": len(self.metadata),
            "model_repos": self.sizes.repos, "seed": SEED, "bad_fraction": 0.01,
            "mean_event_bytes": round(sum(len(v or b"") for _, v in self.records) / max(1, self.events)),
            "counted": self.stats.get("counted", 0), "repos_counted": len(self.expected),
            "reference_stats": self.stats, "timings_s": self.timings,
        }


def simulate(sizes: Sizes, now: datetime) -> tuple[list[Record], Simulation]:
    """The simulated log: three days of hub traffic, 1% malformed or out-of-window records."""
    sim = Simulation(seed=SEED, repos=sizes.repos, now=now, bad_fraction=0.01)
    records = [(r.key, r.value) for r in sim.records(sizes.events) if _far_from_edges(r.bad, r.value, now)]
    return records, sim


def _far_from_edges(bad: str | None, value: bytes, now: datetime) -> bool:
    if bad not in (TOO_LATE, TOO_EARLY):
        return True
    ts_ms = parse_timestamp(orjson.loads(value)["timestamp"])
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC)
    if bad == TOO_LATE:
        return moment < now - timedelta(days=7) - _EDGE_GUARD
    return moment > now + timedelta(hours=1) + _EDGE_GUARD


@contextlib.contextmanager
def prepared(quick: bool, workdir: Path, broker: Broker = "kafka", log: Any = print) -> Iterator[Workload]:
    """Start the stack (``broker``: Apache Kafka or Tansu), make the topics, produce the workload;
    stop everything on exit."""
    sizes = Sizes.for_mode(quick)
    # Faust (the worker's shell and the Faust baseline) keeps a data directory in its cwd
    # unless told otherwise: keep it in the benchmark's scratch directory.
    previous = os.environ.get("F_DATADIR")
    os.environ["F_DATADIR"] = str(workdir / "{conf.name}-data")
    try:
        with embedded_stack(workdir=workdir, durable_redis=False, broker=broker, quick_start=False) as stack:
            workload = _make(stack, sizes, log)
            try:
                yield workload
            finally:
                workload.close()
    finally:
        if previous is None:
            os.environ.pop("F_DATADIR", None)
        else:
            os.environ["F_DATADIR"] = previous


def _make(stack: Stack, sizes: Sizes, log: Any) -> Workload:
    settings = Settings(kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url,
                        kafka_idempotence=stack.idempotence, group="bench",
                        events_topic="bench-events", metadata_topic="bench-metadata", dlq_topic="bench-dlq",
                        web_port=free_port(), session_timeout_ms=SESSION_TIMEOUT_MS)
    asyncio.run(ensure_topics(settings.kafka, topic_specs(settings, PARTITIONS)))
    timings: dict[str, float] = {}
    started = time.perf_counter()
    now = datetime.now(UTC)
    records, sim = simulate(sizes, now)
    metadata = list(sim.metadata())
    timings["simulate"] = time.perf_counter() - started
    started = time.perf_counter()
    result = reference_run([v or b"" for _, v in records], metadata, now)
    timings["reference"] = time.perf_counter() - started
    started = time.perf_counter()
    asyncio.run(produce(settings.kafka, settings.metadata_topic, list(sim.metadata_records())))
    produced = asyncio.run(produce(settings.kafka, settings.events_topic, records))
    timings["produce"] = time.perf_counter() - started
    if produced.count != len(records):
        raise RuntimeError(f"produced {produced.count} of {len(records)} records")
    log(f"workload: {len(records):,} events over {PARTITIONS} partitions, {len(metadata):,} metadata records, "
        f"{len(result.counts):,} repos counted ({', '.join(f'{k} {v:.1f}s' for k, v in timings.items())})")
    return Workload(stack, settings, sizes, now, records, metadata, produced, result.counts, dict(result.stats),
                    timings)
