"""Where the worker stands in each partition it owns, and how it counts again what Redis lost.

Per partition the worker keeps the position its next batch starts from (where the last
fetched batch ended), the position up to which every shard holds what it applied, and
the plan it started from (:mod:`stream.store.markers`). When a batch finds a shard
behind (``gap``: Redis lost acknowledged writes), the worker discards the batches
fetched since, plans those partitions again from the markers Redis holds, seeks there
and counts again; the markers skip what Redis still holds. Every other partition seeks
back to just after its last applied batch, so nothing fetched and discarded is lost.

A replay that needs records Kafka no longer keeps is reported, never skipped over in
silence: ``hubcounter_replay_records_missing_total``, an error in the log naming the
partition and offsets, and ``/readyz`` failing until the worker is restarted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.health import Health
from stream.metrics import WorkerMetrics
from stream.store.connect import RedisClient
from stream.store.markers import StartPlan, plan_start, read_markers, write_markers
from stream.store.writer import PartitionRange

log = logging.getLogger(__name__)

T = TypeVar("T")
Retry = Callable[[str, Callable[[], Awaitable[T]]], Awaitable[T]]


def field_of(tp: TopicPartition) -> str:
    """The name a partition's markers go by: ``topic:partition``."""
    return f"{tp.topic}:{tp.partition}"


class Partitions:
    """The positions of the partitions one worker owns (see the module docstring)."""

    def __init__(self, metrics: WorkerMetrics, health: Health):
        self.metrics = metrics
        self.health = health
        self.epoch = 0  # bumped when Redis is found behind: batches fetched before are discarded
        self._next: dict[TopicPartition, int] = {}  # where the next fetched batch starts
        self._applied: dict[TopicPartition, int] = {}  # every shard holds the partition up to here
        self._base: dict[TopicPartition, int] = {}  # what a shard without a marker stands at
        self._behind: set[TopicPartition] = set()  # found behind, to plan again before fetching

    def range_of(self, tp: TopicPartition, first: int, last: int) -> PartitionRange:
        """The range of a fetched batch holding offsets ``first`` to ``last`` of ``tp``.

        It starts where the partition's previous batch ended, covering whatever holes
        the offsets have; a batch starting before that (fetched again after a seek the
        worker was not told of, as tests do) starts at its first record.
        """
        start = self._next.get(tp)
        if start is None or first < start:
            start = first
        base = self._base.setdefault(tp, start)
        self._next[tp] = last + 1
        return PartitionRange(field_of(tp), start, last + 1, base)

    def applied(self, ranges: Iterable[PartitionRange], tps: Iterable[TopicPartition]) -> None:
        """Every shard now holds ``ranges`` (of partitions ``tps``, in the same order)."""
        for tp, applied in zip(tps, ranges, strict=True):
            self._applied[tp] = applied.end

    def behind(self, fields: Iterable[str], owned: Iterable[TopicPartition]) -> None:
        """Redis holds less of these partitions than was applied: plan them again."""
        names = set(fields)
        found = {tp for tp in owned if field_of(tp) in names}
        for tp in found:
            self.metrics.redis_behind.labels(str(tp.partition)).inc()
        log.warning("Redis holds less of %s than this worker applied (lost writes); counting again from "
                    "what it holds", ", ".join(sorted(names)))
        self._behind |= found
        self.epoch += 1

    @property
    def rewinding(self) -> bool:
        return bool(self._behind)

    def placed(self, batch: dict[TopicPartition, list[Any]]) -> dict[TopicPartition, list[Any]]:
        """The part of a fetched batch whose partitions :meth:`take` has placed.

        aiokafka starts fetching a newly assigned partition from its committed offset
        while the assignment callback still reads Redis; such records are dropped here
        (the callback's seek fetches them again from the right place)."""
        if all(tp in self._next for tp in batch):
            return batch
        return {tp: records for tp, records in batch.items() if tp in self._next}

    async def take(self, consumer: AIOKafkaConsumer, client: RedisClient, shards: int,
                   tps: Iterable[TopicPartition], retry: Retry[Any]) -> None:
        """Plan ``tps`` from the markers Redis holds and seek each to its start."""
        tps = sorted(tps)
        if not tps:
            return
        fields = [field_of(tp) for tp in tps]
        markers = await retry("read the offset markers", lambda: read_markers(client, shards, fields))
        log_starts = await retry("read where the log starts", lambda: consumer.beginning_offsets(tps))
        for tp, name in zip(tps, fields, strict=True):
            committed = await retry("read the committed offset", lambda tp=tp: consumer.committed(tp))
            plan = plan_start(*markers[name], committed, log_starts[tp])
            if plan.write:
                await retry("carry the offset markers over", lambda p=plan, n=name: write_markers(client, n, p.write))
            self._start(consumer, tp, plan)

    def _start(self, consumer: AIOKafkaConsumer, tp: TopicPartition, plan: StartPlan) -> None:
        previous = self._applied.get(tp)
        if previous is not None and plan.start < previous:
            self.metrics.replayed_records.inc(previous - plan.start)
        if plan.note:
            log.warning("partition %s: %s; counting from %d", field_of(tp), plan.note, plan.start)
        if plan.missing:
            self.report_missing(tp, *plan.missing)
        consumer.seek(tp, plan.fetch)
        self._next[tp] = self._applied[tp] = plan.start
        self._base[tp] = plan.base

    async def check(self, client: RedisClient, shards: int, owned: Iterable[TopicPartition]) -> bool:
        """Look for a Redis gone back in time without a batch to show it (no new records):
        any shard marker below what this worker applied means lost writes. True if found."""
        applied = {tp: self._applied[tp] for tp in owned if tp in self._applied}  # before reading
        if not applied:
            return False
        markers = await read_markers(client, shards, [field_of(tp) for tp in applied])
        behind = [field_of(tp) for tp, end in applied.items()
                  if any(m is None or m < end for m in markers[field_of(tp)][0])]
        if behind:
            self.behind(behind, applied)
        return bool(behind)

    async def rewind(self, consumer: AIOKafkaConsumer, client: RedisClient, shards: int, retry: Retry[Any]) -> None:
        """After Redis was found behind: plan those partitions again, and seek every other
        owned partition back to just after its last applied batch (the batches fetched
        meanwhile were discarded)."""
        behind, self._behind = self._behind, set()
        owned = consumer.assignment()
        for tp in owned - behind:
            if tp in self._applied:
                consumer.seek(tp, self._applied[tp])
                self._next[tp] = self._applied[tp]
        await self.take(consumer, client, shards, behind & owned, retry)

    def report_missing(self, tp: TopicPartition, first: int, end: int) -> None:
        """Offsets [first, end) of ``tp`` must be counted and Kafka no longer holds them."""
        self.metrics.records_missing.labels(str(tp.partition)).inc(end - first)
        self.health.lost = (f"{field_of(tp)}: offsets {first}-{end - 1} needed for a replay are gone from Kafka "
                            f"(it keeps the partition from {end})")
        log.error("COUNTS LOST: partition %s needs offsets %d to %d counted again, but Kafka keeps it only from "
                  "offset %d; the downloads of those %d records are missing from Redis for good. Keep the "
                  "topic's retention longer than the longest Redis rollback.", field_of(tp), first, end - 1, end,
                  end - first)

    async def overtaken(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Kafka deleted records before the worker read them (a fetch out of range):
        report them and read on from where the log starts."""
        starts = await consumer.beginning_offsets(list(offsets))
        for tp, position in offsets.items():
            if starts[tp] > position:
                self.report_missing(tp, position, starts[tp])
            consumer.seek(tp, starts[tp])

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """``tps`` are no longer this worker's."""
        for tp in tps:
            for state in (self._next, self._applied, self._base):
                state.pop(tp, None)
            self._behind.discard(tp)
