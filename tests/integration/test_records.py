"""The lean record path (stream.records) against the real broker: exact, and only where asked."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.structs import ConsumerRecord

from stream import kafka
from stream.records import install, installed, raw_values
from stream.settings import Settings
from stream.topics import ensure_topics
from tests.support import create_topics

pytestmark = pytest.mark.integration

PARTITIONS = 3
ROUNDS = 4  # separate produce calls, so each partition holds several record batches
PER_ROUND = 150


def _records(round_no: int) -> list[tuple[bytes, bytes]]:
    return [(f"k{i % 17}".encode(), f"r{round_no}-{i}".encode() * (1 + i % 5)) for i in range(PER_ROUND)]


@pytest.fixture
def topic(settings: Settings) -> tuple[str, dict[int, list[tuple[int, bytes, bytes]]]]:
    """The events topic filled in several rounds; what each partition holds, in order."""
    create_topics(settings, PARTITIONS)
    expected: dict[int, list[tuple[int, bytes, bytes]]] = {p: [] for p in range(PARTITIONS)}

    async def fill() -> None:
        for round_no in range(ROUNDS):
            await _send_tracked(settings, _records(round_no), expected)

    asyncio.run(fill())
    return settings.events_topic, expected


async def _send_tracked(settings: Settings, records: list[tuple[bytes, bytes]],
                        expected: dict[int, list[tuple[int, bytes, bytes]]]) -> None:
    async with _producer(settings) as producer:
        futures = [await producer.send(settings.events_topic, key=k, value=v) for k, v in records]
        for (key, value), meta in zip(records, await asyncio.gather(*futures), strict=True):
            expected[meta.partition].append((meta.offset, key, value))
    for rows in expected.values():
        rows.sort()


@asynccontextmanager
async def _consumer(settings: Settings, lean: bool, **kwargs: object) -> AsyncIterator[AIOKafkaConsumer]:
    options = {"value_deserializer": raw_values} if lean else {}
    consumer = kafka.consumer(settings.kafka, enable_auto_commit=False, auto_offset_reset="earliest",
                              **options, **kwargs)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def _drain(consumer: AIOKafkaConsumer, want: int, max_records: int) -> dict[int, list]:
    """Fetch until ``want`` records came (failing after 60 s), checking every cap."""
    got: dict[int, list] = {}
    total = 0
    deadline = time.monotonic() + 60
    while total < want:
        assert time.monotonic() < deadline, f"fetched {total} of {want} records in 60 s"
        batch = await consumer.getmany(timeout_ms=500, max_records=max_records)
        for tp, records in batch.items():
            assert len(records) <= max_records
            got.setdefault(tp.partition, []).extend(records)
            total += len(records)
    return got


def _rows(records: list) -> list[tuple[int, bytes, bytes]]:
    return [(r.offset, r.key, r.value) for r in records]


@pytest.mark.smoke
def test_lean_records_are_exact_under_small_max_records(topic, settings: Settings) -> None:
    name, expected = topic
    install()
    assert installed()
    want = sum(len(rows) for rows in expected.values())

    async def run() -> tuple[dict[int, list], dict[int, int]]:
        async with _consumer(settings, lean=True) as consumer:
            tps = [TopicPartition(name, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            # 7 cuts record batches in the middle, again and again.
            got = await _drain(consumer, want, max_records=7)
            return got, {tp.partition: await consumer.position(tp) for tp in tps}

    got, positions = asyncio.run(run())
    assert {p: _rows(rows) for p, rows in got.items()} == {p: rows for p, rows in expected.items() if rows}
    assert all(not isinstance(r, ConsumerRecord) for rows in got.values() for r in rows)  # the lean path
    assert positions == {p: rows[-1][0] + 1 for p, rows in expected.items()}


def test_lean_seek_into_a_batch_and_commit_resume_exactly(topic, settings: Settings) -> None:
    name, expected = topic
    install()
    partition = max(expected, key=lambda p: len(expected[p]))
    rows = expected[partition]
    middle = rows[len(rows) // 3][0]
    tp = TopicPartition(name, partition)
    later = [row for row in rows if row[0] >= middle]

    async def run() -> tuple[list, list]:
        async with _consumer(settings, lean=True) as consumer:
            consumer.assign([tp])
            consumer.seek(tp, middle)  # inside a record batch: the broker returns all of it
            first = (await consumer.getmany(tp, timeout_ms=2000, max_records=5))[tp]
            # Cut inside a batch: the position is just past the last record handed out.
            assert await consumer.position(tp) == first[-1].offset + 1
        async with _consumer(settings, lean=True, group_id=settings.group) as consumer:
            consumer.assign([tp])
            consumer.seek(tp, middle)
            taken = (await consumer.getmany(tp, timeout_ms=2000, max_records=11))[tp]
            await consumer.commit({tp: taken[-1].offset + 1})
        async with _consumer(settings, lean=True, group_id=settings.group) as consumer:
            consumer.assign([tp])
            after_commit = await _drain(consumer, len(later) - len(taken), max_records=1000)
        return first, taken + after_commit.get(partition, [])

    first, resumed = asyncio.run(run())
    assert _rows(first) == later[:5]
    assert _rows(resumed) == later  # nothing skipped, nothing twice


def test_other_consumers_keep_consumer_records(topic, settings: Settings) -> None:
    name, expected = topic
    install()
    want = sum(len(rows) for rows in expected.values())

    async def run() -> dict[int, list]:
        async with _consumer(settings, lean=False) as consumer:
            tps = [TopicPartition(name, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            return await _drain(consumer, want, max_records=50)

    got = asyncio.run(run())
    assert all(isinstance(r, ConsumerRecord) and r.topic == name for rows in got.values() for r in rows)
    assert {p: _rows(rows) for p, rows in got.items()} == {p: rows for p, rows in expected.items() if rows}


async def _read_to_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition], max_records: int
                       ) -> tuple[dict[int, list], dict[int, int]]:
    """Everything up to the end offsets (for read_committed: the last stable offsets) and
    the final positions, which must pass trailing control batches too."""
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    got: dict[int, list] = {tp.partition: [] for tp in tps}
    deadline = time.monotonic() + 60
    while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
        assert time.monotonic() < deadline, "did not reach the end offsets in 60 s"
        for tp, records in (await consumer.getmany(timeout_ms=500, max_records=max_records)).items():
            assert len(records) <= max_records
            got[tp.partition] += records
    return got, {tp.partition: await consumer.position(tp) for tp in tps}


@pytest.mark.parametrize("isolation", ["read_committed", "read_uncommitted"])
def test_lean_records_equal_aiokafka_on_batches_of_other_clients(foreign, isolation: str) -> None:
    # librdkafka's and the Java producer's batches: every codec, one-record to large
    # batches, control batches, an aborted transaction interleaved with another producer.
    settings, written = foreign.settings, foreign.written
    install()
    tps = [TopicPartition(settings.events_topic, p) for p in range(4)]

    async def read(lean: bool, max_records: int) -> tuple[dict[int, list], dict[int, int]]:
        async with _consumer(settings, lean=lean, isolation_level=isolation) as consumer:
            return await _read_to_end(consumer, tps, max_records)

    stock, stock_positions = asyncio.run(read(lean=False, max_records=500))
    assert all(isinstance(r, ConsumerRecord) for rows in stock.values() for r in rows)
    for max_records in (7, 100_000):
        lean, positions = asyncio.run(read(lean=True, max_records=max_records))
        assert not any(isinstance(r, ConsumerRecord) for rows in lean.values() for r in rows)
        assert {p: _rows(rows) for p, rows in lean.items()} == {p: _rows(rows) for p, rows in stock.items()}
        assert positions == stock_positions
    visible = Counter((r.key, r.value) for rows in stock.values() for r in rows)
    wanted = written.committed + (written.aborted if isolation == "read_uncommitted" else [])
    assert visible == Counter(wanted)
    # Transaction markers take offsets no record has: the read went past control batches.
    gaps = sum(rows[-1].offset + 1 - rows[0].offset - len(rows) for rows in stock.values() if rows)
    assert gaps > 0


@pytest.mark.kafka_only
def test_lean_records_equal_aiokafka_across_compaction_gaps(settings: Settings) -> None:
    # A compacted topic after the log cleaner ran: batches whose records were removed,
    # whole or in part, leave offsets no record has. (Tansu does not compact.)
    topic = settings.metadata_topic
    asyncio.run(ensure_topics(settings.kafka, [NewTopic(topic, 2, 1, topic_configs={
        "cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01",
        "min.compaction.lag.ms": "0", "delete.retention.ms": "100"})]))

    async def fill() -> None:
        async with _producer(settings) as producer:
            for round_no in range(6):  # each round rolls a segment (segment.ms) for the cleaner
                futures = [await producer.send(topic, key=f"k{i % 40}".encode(),
                                               value=None if i % 13 == 0 else f"{round_no}-{i}".encode())
                           for i in range(120)]
                await asyncio.gather(*futures)
                await asyncio.sleep(0.3)

    asyncio.run(fill())
    install()
    tps = [TopicPartition(topic, p) for p in range(2)]

    async def read(lean: bool, max_records: int) -> tuple[dict[int, list], dict[int, int]]:
        async with _consumer(settings, lean=lean) as consumer:
            return await _read_to_end(consumer, tps, max_records)

    deadline = time.monotonic() + 60
    while True:  # until the cleaner has compacted something away
        stock, stock_positions = asyncio.run(read(lean=False, max_records=1000))
        total = sum(len(rows) for rows in stock.values())
        if total < 6 * 120 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert total < 6 * 120, "the log cleaner compacted nothing in 60 s"
    # The cleaner may still be removing records: compare a lean read only with the stock
    # reads just before and after it when those two agree (compaction never adds records
    # back, so the log did not change in between).
    for max_records in (3, 100_000):
        while True:
            before = asyncio.run(read(lean=False, max_records=1000))
            lean, positions = asyncio.run(read(lean=True, max_records=max_records))
            after = asyncio.run(read(lean=False, max_records=1000))
            if _stable(before, after) or time.monotonic() > deadline + 60:
                break
        assert _stable(before, after), "the log kept changing for a minute"
        stock, stock_positions = after
        assert {p: _rows(rows) for p, rows in lean.items()} == {p: _rows(rows) for p, rows in stock.items()}
        assert positions == stock_positions


def _stable(before: tuple[dict[int, list], dict[int, int]], after: tuple[dict[int, list], dict[int, int]]) -> bool:
    return before[1] == after[1] and {p: _rows(r) for p, r in before[0].items()} == {
        p: _rows(r) for p, r in after[0].items()}


@asynccontextmanager
async def _producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = kafka.producer(settings.kafka, linger_ms=20)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()
