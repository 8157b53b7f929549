"""The Kafka hot path: fetch batches, decode, count, apply to Redis, commit.

Events never go through Faust's per-event stream: batches come straight from aiokafka's
``getmany``, are decoded with msgspec, tallied in memory and applied with one pipelined
Redis round trip per batch (see :mod:`stream.store.writer`). Redis, not the commit, is
the record of what has been counted: each batch moves every shard's position marker, a
partition starts from those markers, and a Redis found behind them is counted again
(:mod:`stream.partitions`). Offsets are still committed after each batch is applied, for
lag monitoring.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.structs import OffsetAndMetadata

from stream import kafka
from stream.classes import load_classifier
from stream.counting import COUNTED, DATASET_CANDIDATE, Counter, Rules, Tally
from stream.deadletters import DeadLetter, DeadLetterSink, producer_options
from stream.errors import EventError, StoreBehind, StoreRefused, StoreUnavailable
from stream.events import parse_event
from stream.facets import Facets
from stream.health import Health
from stream.metadata import LibraryMap, MetadataFeed
from stream.metrics import WorkerMetrics
from stream.partitions import Partitions
from stream.records import Record, install, raw_values
from stream.rules.versions import RulesVersion
from stream.settings import Settings
from stream.store.connect import RedisClient, RedisConfig, connect
from stream.store.rule_versions import record_version
from stream.store.writer import CounterStore, PartitionRange

log = logging.getLogger(__name__)

Batch = dict[TopicPartition, list[Record]]
Clock = Callable[[], datetime]
T = TypeVar("T")
_MAX_BACKOFF_S = 5.0
_BLOCKED_BACKOFF_S = 30.0  # a problem that needs an operator: try again now and then, loudly
_SLICE = 1000  # records counted between turns of the event loop (a few milliseconds)
_FETCH_SHARES = 8  # a partition may fill an eighth of a fetch: eight partitions share a full one
_IDLE_CHECK_S = 5.0  # with nothing fetched, look this often for a Redis gone back in time


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off the hot path.

    Each batch allocates tens of thousands of short-lived objects, which with default
    thresholds triggers collections that re-scan everything alive, the metadata map of
    millions of repos included. Freezing what start-up built and collecting less often
    removes that cost; batches create no reference cycles of their own.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)


@dataclass(slots=True)
class CountedBatch:
    """A fetched batch, judged and tallied, waiting to be applied."""

    batch: Batch
    window: tuple[int, int]
    tally: Tally
    ranges: list[PartitionRange]
    outcomes: dict[str, int]
    dead: list[DeadLetter]
    counter: Counter  # what judged it: a straddle is judged again by the same rules
    version: str  # the version of those rules, recorded with the batch
    epoch: int = 0  # the partitions' epoch it was fetched in (see Partitions.epoch)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, worker: CountingWorker):
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # Let the batches in flight finish and commit while the partitions are still ours.
        await self.worker.wait_applied()
        await self.worker.commit_pending()
        self.worker.partitions.forget(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("assigned %s", sorted(tp.partition for tp in assigned))
        await self.worker.take(assigned)


# Failures that waiting alone does not fix: the topic refuses the record, a permission is
# missing, the topic does not exist. The worker keeps trying (an operator may fix it while
# it runs) but reports itself blocked, not riding out an outage.
_NEEDS_OPERATOR = (
    StoreRefused, kafka_errors.MessageSizeTooLargeError, kafka_errors.RecordTooLargeError,
    kafka_errors.TopicAuthorizationFailedError, kafka_errors.GroupAuthorizationFailedError,
    kafka_errors.ClusterAuthorizationFailedError, kafka_errors.InvalidTopicError,
    kafka_errors.PolicyViolationError, kafka_errors.UnknownTopicOrPartitionError,
)
_RETRIED = (StoreUnavailable, StoreRefused, kafka_errors.KafkaError, OSError)


def utc_now() -> datetime:
    return datetime.now(UTC)


class CountingWorker:
    """One counting worker: the metadata feed plus the events consumer loop.

    ``clock`` gives the current time (UTC, aware): it decides the lateness window and the
    30-day leaderboards' day; tests may pass their own.
    """

    def __init__(self, settings: Settings, rules: Rules, metrics: WorkerMetrics | None = None,
                 clock: Clock = utc_now, version: RulesVersion | None = None):
        self.settings = settings
        self.metrics = metrics or WorkerMetrics()
        self.clock = clock
        self.health = Health(settings.stall_seconds)
        self.libraries = LibraryMap()
        facets = Facets(load_classifier(settings.classes_file)) if settings.analytics else None
        self.counter = Counter(rules, self.libraries.library_of, settings.lateness, facets)
        self.rules_version = version  # recorded in Redis with every batch it judges (None: no record)
        self._queue: asyncio.Queue[CountedBatch | None] = asyncio.Queue(maxsize=1)
        self._applier: asyncio.Task | None = None
        self.started = asyncio.Event()
        self._stopping = asyncio.Event()
        self._pending: dict[TopicPartition, int] = {}
        self._in_flight = 0  # records fetched but not yet applied
        self._lag: dict[int, int] = {}
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self.partitions = Partitions(self.metrics, self.health)
        self._redis_config = RedisConfig(settings.redis_url, settings.redis_cluster)
        self._redis: RedisClient | None = None
        self.store: CounterStore  # once connected (one Redis or a cluster: see stream.store.connect)
        self.kafka = settings.kafka
        self.feed = MetadataFeed(self.kafka, settings.metadata_topic, self.libraries,
                                 on_record=lambda: self.metrics.metadata_repos.set(len(self.libraries)))
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._dead_letters: DeadLetterSink | None = None

    @property
    def ready(self) -> bool:
        return self.started.is_set() and not self._stopping.is_set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask the loop to finish the batch in flight, commit and leave the group."""
        self._stopping.set()
        self.health.stopping = True

    async def run(self) -> None:
        """Run until :meth:`stop`; returns after committing and leaving the group."""
        feed_task = asyncio.create_task(self.feed.run(), name="metadata-feed")
        try:
            await self._retry("connect to Redis", self.connect)
            # A cold worker must hold the whole metadata map before it counts anything.
            if not await self._until_stopped(self._metadata_loaded(feed_task)):
                return
            self._producer = await self._retry("start the dead-letter producer", self._start_producer)
            self._dead_letters = DeadLetterSink(self._producer, self.settings.dlq_topic, self.settings.dlq_keep_bytes)
            self._consumer = await self._retry("start the events consumer", self._start_consumer)
            _tune_gc()
            self.started.set()
            self.health.started = True
            self.health.progressed()
            await self._loop(self._consumer)
        finally:
            feed_task.cancel()
            await asyncio.gather(feed_task, return_exceptions=True)
            if self._consumer is not None:
                await self._consumer.stop()  # leaves the group, so a successor starts at once
            if self._producer is not None:
                await self._producer.stop()
            if self._redis is not None:
                await self._redis.aclose()

    async def connect(self) -> None:
        """Make the Redis client (one Redis or a cluster, as ``REDIS_URL`` says) and check the
        shard count it holds. :meth:`run` does it first, retrying while Redis is away; a
        caller that drives :meth:`count` and :meth:`apply` itself calls it before them."""
        if self._redis is None:
            self._redis = await connect(self._redis_config)
            self.store = CounterStore(self._redis, self.settings.shards, self.settings.lateness,
                                      self.settings.redis_min_replicas, self.settings.redis_wait_ms,
                                      self.settings.top_values)
        await self.store.ensure_config()
        if self.rules_version is not None:
            await record_version(self.store.client, self.rules_version)

    async def reload_rules(self, rules: Rules, version: RulesVersion) -> None:
        """Count with ``rules`` from the next batch fetched on (SIGHUP: see :mod:`stream.app`).

        The version is recorded in Redis first; every batch then carries the version that
        judged it, so each shard records where in each partition the new rules took over.
        """
        if self._redis is not None:  # else connect() records it
            await self._retry("record the rules version", lambda: record_version(self.store.client, version))
        previous = self.rules_version.label if self.rules_version else "unrecorded rules"
        self.counter = Counter(rules, self.libraries.library_of, self.settings.lateness, self.counter.facets)
        self.rules_version = version
        log.warning("rules reloaded: counting with %s from the next batch on (was %s)", version.label, previous)

    async def take(self, tps: Iterable[TopicPartition]) -> None:
        """Start counting ``tps`` from what Redis holds of them (on assignment)."""
        assert self._consumer is not None
        await self.partitions.take(self._consumer, self.store.client, self.settings.shards, tps, self._retry)

    async def _metadata_loaded(self, feed_task: asyncio.Task) -> None:
        ready = asyncio.ensure_future(self.feed.ready.wait())
        await asyncio.wait({ready, feed_task}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            feed_task.result()  # the feed died: raise its error rather than wait forever

    async def _start_producer(self) -> AIOKafkaProducer:
        """The dead-letter producer: idempotent where the broker supports it."""
        options = {**producer_options(), "enable_idempotence": self.kafka.idempotence}
        while True:
            producer = kafka.producer(self.kafka, **options)
            try:
                await producer.start()
                return producer
            except kafka_errors.BrokerResponseError as exc:
                await producer.stop()
                if isinstance(exc, _NEEDS_OPERATOR) or not options["enable_idempotence"]:
                    raise
                # Some Kafka-protocol brokers (Tansu, the demo's) cannot give a producer id.
                log.warning("the broker refuses an idempotent producer (%s); a retried dead letter "
                            "may then be written twice", exc)
                options["enable_idempotence"] = False
            except BaseException:
                await producer.stop()
                raise

    async def _start_consumer(self) -> AIOKafkaConsumer:
        """A started events consumer (a new one each attempt: a consumer starts only once).

        It is the worker's consumer from before it starts: the group may hand it partitions
        (see :meth:`take`) before ``start`` returns.
        """
        consumer = self._consumer = self._make_consumer()
        try:
            await consumer.start()
        except BaseException:
            self._consumer = None
            await consumer.stop()
            raise
        return consumer

    def _make_consumer(self) -> AIOKafkaConsumer:
        s = self.settings
        install()
        consumer = kafka.consumer(
            self.kafka, group_id=s.group, enable_auto_commit=False,
            # Records of aborted transactions never count (nor do transactions still open).
            isolation_level="read_committed",
            # Every assigned partition is positioned from Redis's markers (see take()); a
            # position out of range means Kafka deleted records before they were read, and
            # that is reported (Partitions.overtaken), not reset past in silence.
            auto_offset_reset="none", session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(s.session_timeout_ms // 4, 100),
            # One response being read while the last one's records wait: about twice this.
            fetch_max_bytes=s.fetch_bytes, max_partition_fetch_bytes=s.fetch_bytes // _FETCH_SHARES,
            # Some brokers hold a fetch until this wait ends even with data waiting; it bounds
            # how long a quiet stream's events wait before they are counted.
            fetch_max_wait_ms=100,
            value_deserializer=raw_values,  # lean records: see stream.records
            check_crcs=s.check_crcs,
        )
        consumer.subscribe([s.events_topic], listener=_Rebalance(self))
        return consumer

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        """Fetch and count batch N+1 while batch N is applied and committed.

        Counting is CPU in this process; applying waits on Redis and Kafka. The queue of
        one keeps the two overlapped and in order, and stops fetching when Redis is away.
        """
        applier = self._applier = asyncio.create_task(self._apply_loop(), name="applier")
        checked = time.monotonic()
        try:
            while not self._stopping.is_set() and not applier.done():
                if self.partitions.rewinding:
                    await self.partitions.rewind(consumer, self.store.client, self.settings.shards, self._retry)
                try:
                    batch = self.partitions.placed(
                        await consumer.getmany(timeout_ms=200, max_records=self.settings.batch_size))
                except kafka_errors.NoOffsetForPartitionError:
                    await asyncio.sleep(0.05)  # a partition take() is still placing (see _Rebalance)
                    continue
                except kafka_errors.OffsetOutOfRangeError as exc:
                    await self._retry("read where the log starts", lambda e=exc: self.partitions.overtaken(
                        consumer, e.args[0]))
                    continue
                if batch:
                    await self._queue.put(await self.count(batch))
                    self._observe_lag(consumer, batch)
                elif not self._in_flight:
                    self.health.progressed()  # caught up: nothing fetched waits to be applied
                    if time.monotonic() - checked > _IDLE_CHECK_S:
                        # No batch will show a rollback of Redis while nothing arrives: ask.
                        checked = time.monotonic()
                        if await self._retry("read the offset markers", lambda: self.partitions.check(
                                self.store.client, self.settings.shards, consumer.assignment())):
                            self.store.forget()
        finally:
            if not applier.done():
                await self._queue.put(None)
            await applier  # raises what killed the applier, if anything did

    async def _apply_loop(self) -> None:
        while (counted := await self._queue.get()) is not None:
            try:
                if counted.epoch != self.partitions.epoch:
                    self._in_flight -= sum(len(records) for records in counted.batch.values())
                    continue  # fetched before Redis was found behind: fetched again after the rewind
                started = time.perf_counter()
                await self.apply(counted)
                await self.commit_pending()
                self.metrics.batch_seconds.observe(time.perf_counter() - started)
            except StoreBehind as exc:
                self._in_flight -= sum(len(records) for records in counted.batch.values())
                self.store.forget()
                assert self._consumer is not None
                self.partitions.behind(exc.partitions, self._consumer.assignment())
            except _RETRIED as exc:
                if not self._stopping.is_set():
                    raise  # _retry gave up on its own: a bug, and the process must not look alive
                # Stopping mid-retry: the batch stays uncommitted and is replayed.
                log.warning("stopping with a batch not applied (%s); it will be replayed", exc)
                self._drain_queue()
                return
            finally:
                self._queue.task_done()
        self._queue.task_done()
        await self.commit_pending()

    def _drain_queue(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()

    async def wait_applied(self) -> None:
        """Wait until every batch fetched so far is applied and its offsets committed."""
        if self._applier is not None and not self._applier.done():
            await self._queue.join()

    async def count(self, batch: Batch) -> CountedBatch:
        """Decode and judge one batch (CPU only: it does no I/O of its own)."""
        epoch = self.partitions.epoch  # before any await: a rewind meanwhile makes this batch stale
        self.metrics.mark_read()
        self._in_flight += sum(len(records) for records in batch.values())
        window = self.counter.window(self.clock())
        ranges = {tp: self.partitions.range_of(tp, records[0].offset, records[-1].offset)
                  for tp, records in batch.items()}
        # Both before any await: a reload meanwhile takes effect from the next batch.
        counter, version = self.counter, self.rules_version.version if self.rules_version else ""
        counted = await self._tally(batch, window, ranges, counter)
        counted.epoch, counted.version = epoch, version
        return counted

    async def _tally(self, batch: Batch, window: tuple[int, int],
                     ranges: dict[TopicPartition, PartitionRange], counter: Counter) -> CountedBatch:
        """Judge the records of ``batch`` that ``ranges`` cover (from each range's start).

        Pauses every ``_SLICE`` records to let the event loop run: the applier's Redis
        replies, producer acks and commits then complete while the batch is counted,
        instead of each waiting for the whole batch (tens of milliseconds), which made
        the applier, not the CPU, the bottleneck.
        """
        tally = Tally()
        outcomes: dict[str, int] = {}
        dead: list[DeadLetter] = []
        max_bytes = self.settings.max_message_bytes
        add = counter.add
        for tp, records in batch.items():
            covered = ranges.get(tp)
            if covered is None:
                continue
            if records[0].offset < covered.start:
                records = [r for r in records if r.offset >= covered.start]
            for start in range(0, len(records), _SLICE):
                if start:
                    await asyncio.sleep(0)
                for record in records[start:start + _SLICE]:
                    try:
                        outcome = add(parse_event(record.value or b"", max_bytes), tally, window)
                    except EventError as exc:
                        # A copy, not the raised error: its traceback (and its context's) holds
                        # this frame, whose locals hold the batch and ``dead`` itself, a cycle
                        # that kept whole batches alive until a rare full collection (~65 MiB).
                        dead.append(DeadLetter(tp, record, EventError(exc.reason, exc.detail)))
                        continue
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
        return CountedBatch(batch, window, tally, list(ranges.values()), outcomes, dead, counter, "")

    async def apply(self, counted: CountedBatch) -> None:
        """Dead-letter, apply to Redis, and queue the batch's offsets for commit."""
        if counted.dead:
            sink = self._dead_letters
            assert sink is not None, "dead letters before the worker started"
            await self._retry("send to the dead-letter topic", lambda: sink.send(counted.dead))
        await self._retry("roll the 30-day leaderboards", lambda: self.store.roll_windows(self.clock()))
        started = time.perf_counter()
        downloads = await self._apply(counted)
        self.metrics.apply_seconds.observe(time.perf_counter() - started)
        self.partitions.applied(counted.ranges, counted.batch)
        if self.store.unreplicated:
            self.metrics.unreplicated.inc(self.store.unreplicated)
            log.warning("%d Redis master(s) did not confirm %d replica(s) of a batch within %d ms",
                        self.store.unreplicated, self.settings.redis_min_replicas, self.settings.redis_wait_ms)
            self.store.unreplicated = 0
        for tp, records in counted.batch.items():
            self._pending[tp] = records[-1].offset + 1
        read = sum(len(records) for records in counted.batch.values())
        self._in_flight -= read
        self.health.progressed()
        dead_by_reason: dict[str, int] = {}
        for letter in counted.dead:
            dead_by_reason[letter.error.reason] = dead_by_reason.get(letter.error.reason, 0) + 1
        not_counted = {k: n for k, n in counted.outcomes.items() if k not in (COUNTED, DATASET_CANDIDATE)}
        self.metrics.record_batch(read, not_counted, dead_by_reason, downloads)

    async def _apply(self, judged: CountedBatch) -> int:
        """Apply the tally; re-tally any shard whose markers the batch straddles.

        Raises StoreBehind when a shard holds less than the batch starts from (Redis lost
        writes): the shards that took the batch keep it, and counting again from the
        markers skips it there.
        """
        tally, ranges, batch, window, version = judged.tally, judged.ranges, judged.batch, judged.window, judged.version
        outcomes = await self._retry("apply a batch", lambda: self.store.apply(tally, ranges, version=version))
        counted = 0
        behind: set[str] = set()
        while outcomes:
            outcome = outcomes.pop()
            if outcome.status == "ok":
                counted += outcome.counted
                self.metrics.not_counted.labels("dataset_duplicate").inc(outcome.duplicates)
            elif outcome.status == "dup":
                self.metrics.replayed_batches.labels("replay").inc()
            elif outcome.status == "gap":
                behind |= outcome.behind
            else:
                # The rare straddle: count again only what lies from this shard's markers on
                # (its dead letters already went out with the whole batch).
                self.metrics.replayed_batches.labels("straddle").inc()
                rest = await self._tally(batch, window, {
                    tp: PartitionRange(r.field, outcome.markers[r.field], r.end, r.base)
                    for tp, r in zip(batch, ranges, strict=True)
                    if r.field in outcome.markers and outcome.markers[r.field] < r.end}, judged.counter)
                if rest.ranges:
                    outcomes += await self._retry("apply a batch", lambda r=rest, s=outcome.shard:
                                                  self.store.apply(r.tally, r.ranges, only_shard=s, version=version))
        if behind:
            raise StoreBehind(behind)
        return counted

    async def commit_pending(self) -> None:
        """Commit every applied offset not yet committed; a failure only delays it."""
        if not self._pending or self._consumer is None:
            return
        assigned = self._consumer.assignment()
        offsets = {tp: OffsetAndMetadata(o, "") for tp, o in self._pending.items() if tp in assigned}
        try:
            if offsets:
                await self._consumer.commit(offsets)
            self._pending.clear()
        except kafka_errors.KafkaError as exc:
            # Not fatal: Redis already holds the effects, so a replay of these offsets is skipped.
            log.warning("offset commit failed (%s); it will be retried with the next batch", exc)
            self._pending = {tp: o for tp, o in self._pending.items() if tp in assigned}

    async def _retry(self, what: str, action: Callable[[], Awaitable[T]]) -> T:
        """Run ``action`` until it succeeds or the worker stops.

        While Redis or Kafka is away the worker rides out a declared outage (backing off
        up to a few seconds); a failure that needs an operator blocks it: logged as an
        error, counted, ``/readyz`` failing and, once it has lasted, ``/healthz`` too.
        Either way nothing is skipped: the batch waits until the action goes through.
        """
        delay = 0.1
        troubled = False
        while True:
            try:
                result = await action()
            except _RETRIED as exc:
                if self._stopping.is_set():
                    raise
                troubled = True
                needs_operator = isinstance(exc, _NEEDS_OPERATOR)
                self.health.trouble(f"cannot {what}: {type(exc).__name__}: {exc}"[:500], needs_operator)
                if needs_operator:
                    self.metrics.blocked.labels(type(exc).__name__).inc()
                    delay = min(max(delay, 1.0) * 2, _BLOCKED_BACKOFF_S)
                    log.error("cannot %s (%s: %s); this needs an operator; retrying in %.0f s",
                              what, type(exc).__name__, exc, delay)
                else:
                    self.metrics.retries.inc()
                    log.warning("cannot %s (%s); retrying in %.1f s", what, exc, delay)
                if not await self._until_stopped(asyncio.sleep(delay)):
                    raise
                delay = min(delay * 2, _BLOCKED_BACKOFF_S if needs_operator else _MAX_BACKOFF_S)
            else:
                if troubled:
                    self.health.recovered()
                    log.info("%s: recovered", what)
                return result

    async def _until_stopped(self, awaitable) -> bool:  # type: ignore[no-untyped-def]
        """Await ``awaitable`` unless a stop comes first; True when it completed."""
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self._stopping.wait())
        done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (task, stop):
            if pending not in done:
                pending.cancel()
        return task in done

    def _observe_lag(self, consumer: AIOKafkaConsumer, batch: Batch) -> None:
        for tp, records in batch.items():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                self._lag[tp.partition] = max(highwater - records[-1].offset - 1, 0)
                self.metrics.lag.labels(str(tp.partition)).set(self._lag[tp.partition])
        self.metrics.totals.lag = sum(self._lag.values())

    async def probe_waiting(self) -> None:
        """Ask the broker how many records wait to be applied by this worker (for liveness).

        The records past the consumer's position, plus those fetched and not yet applied.
        The hot path measures lag from its own fetches; this asks independently, so a hot
        path that stopped fetching (blocked, or stuck) still shows records waiting.
        """
        consumer = self._consumer
        if consumer is None or not self.ready:
            return
        assigned = sorted(consumer.assignment())
        try:
            ends = await consumer.end_offsets(assigned) if assigned else {}
            positions = [await asyncio.wait_for(consumer.position(tp), 1.0) for tp in assigned]
        except (kafka_errors.KafkaError, OSError, TimeoutError) as exc:
            log.debug("cannot probe the end offsets: %s", exc)
            return
        self.health.waiting = self._in_flight + sum(
            max(ends[tp] - position, 0) for tp, position in zip(assigned, positions, strict=True))

    async def heartbeat(self) -> None:
        """Publish this worker's live totals to Redis for the dashboard (best effort)."""
        totals = self.metrics.totals
        try:
            await self.store.heartbeat(self.worker_id, {
                "group": self.settings.group, "started_ms": totals.started_ms,
                "events_read": totals.events_read, "events_counted": totals.events_counted,
                "dead_lettered": totals.dead_lettered, "lag": totals.lag,
                "metadata_repos": len(self.libraries), "first_read_ms": totals.first_read_ms,
                "last_apply_ms": totals.last_apply_ms,
            })
        except (StoreUnavailable, StoreRefused) as exc:
            log.debug("heartbeat skipped: %s", exc)
