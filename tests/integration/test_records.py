"""The lean record path (stream.records) against the real broker: exact, and only where asked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from stream.records import install, installed, raw_values
from stream.settings import Settings
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
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=20)
    await producer.start()
    try:
        futures = [await producer.send(settings.events_topic, key=k, value=v) for k, v in records]
        for (key, value), meta in zip(records, await asyncio.gather(*futures), strict=True):
            expected[meta.partition].append((meta.offset, key, value))
    finally:
        await producer.stop()
    for rows in expected.values():
        rows.sort()


@asynccontextmanager
async def _consumer(settings: Settings, lean: bool, **kwargs: object) -> AsyncIterator[AIOKafkaConsumer]:
    options = {"value_deserializer": raw_values} if lean else {}
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", **options, **kwargs)  # type: ignore[arg-type]
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
