"""Each replay path of the worker, forced on purpose, with the worker's metrics saying it ran.

The kill and rebalance tests replay batches at random moments; these make each path
happen deterministically, on the real broker and Redis, through the worker's own
``count`` and ``apply``: a whole batch replayed, a batch straddling a shard's marker, a
zombie applying a batch after another worker counted past it, and the UTC day changing
while Redis is frozen.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.records import install, raw_values
from stream.reference import compute
from stream.rules import load_registry
from stream.settings import Settings
from stream.simulate import Simulation
from stream.store import keys
from stream.worker import CountingWorker
from tests.support import committed, create_topics, produce, send, snapshot, start_worker, wait_committed

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    """An in-process worker tunes the collector for its own process; give pytest its own back."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def _sim(now: datetime, seed: int) -> Simulation:
    return Simulation(seed=seed, repos=300, now=now)


def _values(sim: Simulation, count: int) -> list[tuple[bytes, bytes]]:
    return [(r.key, r.value) for r in sim.records(count)]


async def _fetch(settings: Settings, partition: int, offset: int, count: int) -> dict:
    """The batch of records [offset, offset + count) of one partition, fetched as the worker
    fetches (lean records)."""
    install()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                enable_auto_commit=False, value_deserializer=raw_values)
    await consumer.start()
    try:
        tp = TopicPartition(settings.events_topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        records: list = []
        while len(records) < count:
            fetched = await consumer.getmany(tp, timeout_ms=1000, max_records=count - len(records))
            records += fetched.get(tp, [])
        return {tp: records}
    finally:
        await consumer.stop()


def _replays(worker: CountingWorker, kind: str) -> float:
    return worker.metrics.replayed_batches.labels(kind)._value.get()


def _one_partition(settings: Settings, sim: Simulation, count: int) -> list[tuple[bytes, bytes]]:
    create_topics(settings, partitions=1)
    send(settings, settings.metadata_topic, sim.metadata_records())
    records = _values(sim, count)
    send(settings, settings.events_topic, records)
    return records


def _worker(settings: Settings, sim: Simulation) -> CountingWorker:
    worker = CountingWorker(settings, load_registry(), clock=lambda: sim.now)
    for key, value in sim.metadata_records():
        worker.libraries.apply(key, value)
    return worker


def test_a_batch_applied_twice_counts_once(settings):
    # A lost commit replays whole batches: every shard must see its markers and skip.
    sim = _sim(datetime.now(UTC), seed=11)
    records = _one_partition(settings, sim, 2000)

    async def scenario() -> CountingWorker:
        worker = _worker(settings, sim)
        counted = await worker.count(await _fetch(settings, 0, 0, 2000))
        await worker.apply(counted)
        first = snapshot(settings)
        await worker.apply(await worker.count(await _fetch(settings, 0, 0, 2000)))
        assert snapshot(settings) == first
        return worker

    worker = asyncio.run(scenario())
    assert _replays(worker, "replay") > 0, "the second apply should have been skipped as a replay"
    assert _replays(worker, "straddle") == 0
    assert snapshot(settings) == compute([v for _, v in records], list(sim.metadata()), now=sim.now)


def test_a_batch_straddling_the_markers_counts_only_what_is_new(settings):
    # A replay cut differently after a crash: [500, 1499] after [0, 999] was applied.
    sim = _sim(datetime.now(UTC), seed=12)
    records = _one_partition(settings, sim, 1500)

    async def scenario() -> CountingWorker:
        worker = _worker(settings, sim)
        await worker.apply(await worker.count(await _fetch(settings, 0, 0, 1000)))
        await worker.apply(await worker.count(await _fetch(settings, 0, 500, 1000)))
        return worker

    worker = asyncio.run(scenario())
    assert _replays(worker, "straddle") > 0, "the second batch straddles the markers and must be re-tallied"
    assert snapshot(settings) == compute([v for _, v in records], list(sim.metadata()), now=sim.now)


def test_a_zombie_applying_a_stale_batch_changes_nothing(settings, workdir):
    # A worker whose partitions moved on (a long GC pause, a frozen VM) still holds a
    # counted batch; another worker has counted everything since. Its late apply is stale.
    sim = _sim(datetime.now(UTC), seed=13)
    records = _one_partition(settings, sim, 3000)

    async def hold_a_batch() -> tuple[CountingWorker, object]:
        zombie = _worker(settings, sim)
        return zombie, await zombie.count(await _fetch(settings, 0, 0, 1200))

    zombie, held = asyncio.run(hold_a_batch())
    successor = start_worker(settings, workdir)
    try:
        wait_committed(settings, {0: len(records) - 1})
    finally:
        successor.stop()
    expected = compute([v for _, v in records], list(sim.metadata()), now=sim.now)
    assert snapshot(settings) == expected

    asyncio.run(zombie.apply(held))  # type: ignore[arg-type]
    assert _replays(zombie, "replay") > 0, "the zombie's batch should have been skipped"
    assert snapshot(settings) == expected


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_utc_midnight_with_redis_frozen_rolls_and_stays_exact(settings, stack):
    # The first batch after midnight rolls the 30-day leaderboards; Redis frozen right then
    # must be ridden out like any outage, and the roll and the counts must come out right.
    assert stack.redis is not None, "this test needs the embedded Redis it can freeze"
    today = datetime.now(UTC).date()
    before_midnight = datetime(today.year, today.month, today.day, 23, 59, 0, tzinfo=UTC)
    clock = _Clock(before_midnight)
    sim = Simulation(seed=14, repos=300, now=before_midnight, live_rate=20.0)  # 100 s of events per 2,000
    create_topics(settings, partitions=2)
    send(settings, settings.metadata_topic, sim.metadata_records())
    records = _values(sim, 4000)
    first, second = records[:1500], records[1500:]

    async def scenario() -> CountingWorker:
        worker = CountingWorker(settings, load_registry(), clock=clock)
        running = asyncio.create_task(worker.run())
        try:
            await _until(lambda: worker.ready, 60, "the worker to start")
            last = await produce(settings.kafka_bootstrap, settings.events_topic, first)
            await _until_committed(settings, last)
            stack.redis.signal(signal.SIGSTOP)
            try:
                clock.now = before_midnight + timedelta(minutes=2)
                last = await produce(settings.kafka_bootstrap, settings.events_topic, second)
                await _until(lambda: worker.health.outage is not None, 30, "the outage to be declared")
                await asyncio.sleep(3)
                assert not running.done(), "the worker must ride out a Redis outage at midnight"
            finally:
                stack.redis.signal(signal.SIGCONT)
            await _until_committed(settings, last)
            assert worker.health.outage is None
            return worker
        finally:
            worker.stop()
            await running

    worker = asyncio.run(scenario())
    assert worker.metrics.retries._value.get() > 0
    expected = compute([v for _, v in records], list(sim.metadata()), now=clock.now)
    assert {day for counts in expected.values() for day in counts["daily"]} == {
        today.isoformat(), (today + timedelta(days=1)).isoformat()}, "the events should straddle midnight"
    assert snapshot(settings) == expected
    _assert_window_rolled(settings, today + timedelta(days=1), expected)


def _assert_window_rolled(settings: Settings, last_day, expected: dict) -> None:
    """Every shard's 30-day leaderboard ends on ``last_day`` and holds the repos' sums."""
    import redis

    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    board: dict[str, float] = {}
    for shard in range(settings.shards):
        for repo_type in keys.COUNTED_TYPES:
            assert client.hget(keys.meta(shard), f"{repo_type}:end") == last_day.isoformat()
            for repo, score in client.zrange(keys.window(shard, repo_type), 0, -1, withscores=True):
                board[f"{repo_type}:{repo}"] = score
    assert board == {repo: counts["downloadsAllTime"] for repo, counts in expected.items()}


async def _until(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _until_committed(settings: Settings, last: dict[int, int], seconds: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        seen = await committed(settings.kafka_bootstrap, settings.group, settings.events_topic, last)
        if all(seen.get(p, -1) > offset for p, offset in last.items()):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"committed {seen}, expected past {last}")
        await asyncio.sleep(0.3)
