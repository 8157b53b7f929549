"""The worker's Prometheus metrics.

Per-event outcomes are tallied in plain dicts during a batch and added once per batch,
so the hot path never touches a metric object per event.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from stream.events import REJECT_REASONS

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SIZE_BUCKETS = (1, 10, 100, 500, 1000, 2500, 5000, 10_000, 20_000, 50_000, 100_000)


@dataclass
class LiveTotals:
    """Plain running totals, published to Redis for the dashboard (see ``keys.WORKER_FIELDS``)."""

    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    events_read: int = 0
    events_counted: int = 0
    dead_lettered: int = 0
    lag: int = 0
    first_read_ms: int = 0
    last_apply_ms: int = 0


class WorkerMetrics:
    """All metrics of one worker process, in their own registry."""

    def __init__(self) -> None:
        self.totals = LiveTotals()
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_read = Counter("hubcounter_events_read", "Events read from Kafka", registry=r)
        self.events_counted = Counter(
            "hubcounter_events_counted", "Events that added a download", registry=r)
        self.not_counted = Counter(
            "hubcounter_events_not_counted", "Valid events that did not count, by reason",
            ["reason"], registry=r)
        self.dead_lettered = Counter(
            "hubcounter_events_dead_lettered", "Events sent to the dead-letter topic, by reason",
            ["reason"], registry=r)
        for reason in REJECT_REASONS:  # every reason shows from the start, at 0, for alerts
            self.dead_lettered.labels(reason)
        self.replayed_batches = Counter(
            "hubcounter_shard_applies_skipped", "Shard applies skipped or re-tallied as replays",
            ["kind"], registry=r)
        self.batch_size = Histogram(
            "hubcounter_batch_size", "Events per batch", buckets=_SIZE_BUCKETS, registry=r)
        self.apply_seconds = Histogram(
            "hubcounter_apply_seconds", "Time to apply one batch to Redis",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_seconds = Histogram(
            "hubcounter_batch_seconds", "Time from fetch to commit of one batch",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.retries = Counter(
            "hubcounter_retries", "Operations retried because Redis or Kafka was unavailable",
            registry=r)
        self.blocked = Counter(
            "hubcounter_blocked", "Operations that failed for a reason an operator must fix "
            "(a record too large, a missing permission or topic), by error", ["error"], registry=r)
        self.lag = Gauge("hubcounter_consumer_lag", "Consumer lag in messages, per partition",
                         ["partition"], registry=r)
        self.metadata_repos = Gauge(
            "hubcounter_metadata_repos", "Repos with a library in the metadata map", registry=r)

    def mark_read(self) -> None:
        """Note when the first batch arrived (the start of end-to-end throughput figures)."""
        if not self.totals.first_read_ms:
            self.totals.first_read_ms = int(time.time() * 1000)

    def record_batch(self, read: int, outcomes: dict[str, int], dead: dict[str, int],
                     counted: int) -> None:
        """Add one applied batch's per-event tallies."""
        totals = self.totals
        totals.last_apply_ms = int(time.time() * 1000)
        totals.events_read += read
        totals.events_counted += counted
        totals.dead_lettered += sum(dead.values())
        self.events_read.inc(read)
        self.batch_size.observe(read)
        for reason, n in outcomes.items():
            self.not_counted.labels(reason).inc(n)
        for reason, n in dead.items():
            self.dead_lettered.labels(reason).inc(n)
        self.events_counted.inc(counted)

    def render(self) -> bytes:
        return generate_latest(self.registry)
