"""No fetched batch outlives its use: the worker's hot path makes no reference cycles.

The worker runs with the cyclic collector tuned down (``stream.worker._tune_gc``), so a
cycle that reaches a batch keeps all its records alive until a rare full collection: two
such cycles made counting add ~200 MiB to the worker (docs/BENCHMARKS.md). Each test
here runs with the collector off and checks that plain reference counting frees it all.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.consumer.fetcher import READ_UNCOMMITTED
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from stream.records import _LeanPartitionRecords, raw_values
from stream.rules import load_registry
from stream.settings import Settings
from stream.worker import CountingWorker

pytestmark = pytest.mark.unit

TP = TopicPartition("events", 0)


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _batch_bytes(values: list[bytes]) -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=None, key=b"k", value=value, headers=[])
    return bytes(builder.build())


def test_lean_partition_records_are_freed_without_the_cyclic_collector(collector_off: None) -> None:
    # aiokafka's own iterator (a generator holding its PartitionRecords) made a cycle per fetch.
    records = _LeanPartitionRecords(TP, MemoryRecords(_batch_bytes([b"v"] * 10)), None, 0, None, raw_values,
                                    False, READ_UNCOMMITTED)
    alive = weakref.ref(records)
    taken, exhausted = records.take(None)
    assert (len(taken), exhausted) == (10, True)
    del records
    assert alive() is None


class Records(list):
    """A batch's records (a list that can be watched with a weak reference)."""


@dataclass(frozen=True)
class Record:
    offset: int
    key: bytes | None
    value: bytes | None


def test_dead_letters_hold_no_frame_of_the_batch(collector_off: None) -> None:
    # A raised error's traceback (or its context's) holds the counting frame, whose locals hold
    # the whole batch and the dead-letter list itself: a cycle per batch with a bad record.
    good = orjson.dumps({"timestamp": datetime.now(UTC).isoformat(), "method": "GET", "status": 200,
                         "repoType": "model", "repoName": "org/m", "path": "config.json"})
    records = [Record(0, b"k", good), Record(1, b"k", b"{"), Record(2, b"k", b'{"x": 1}'), Record(3, b"k", good)]

    async def count() -> None:
        worker = CountingWorker(Settings(), load_registry())  # counting alone connects to nothing
        batch = {TP: Records(records)}
        alive = weakref.ref(batch[TP])
        counted = await worker.count(batch)
        assert [letter.error.reason for letter in counted.dead] == ["bad_json", "missing_field"]
        del counted, batch
        assert alive() is None

    asyncio.run(count())
