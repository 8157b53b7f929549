"""Where a recount reads history again: the events topic, or archived NDJSON logs.

Kafka: per partition, from the first record whose timestamp is a day before the period
(Kafka finds it by timestamp) up to the partition's fence (:mod:`stream.recount.plan`).
Each record's own timestamp is the clock its lateness is judged by: it says when the
record reached Kafka, which is when the worker could first count it.

Archives (``hubcounter simulate --out`` writes the format; gzip or not): read in the
order given, line by line. They carry no arrival time, so the clock is the watermark:
the latest event time read so far. Lines are positions of one source per file.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import TopicPartition

from stream import kafka, records
from stream.kafka import KafkaConnection
from stream.partitions import field_of
from stream.recount.judge import Judge, Placement

Progress = Callable[[int], None]
_FETCH = 20_000
_CHUNK = 4 << 20  # bytes of an archive read at a time
_LOOKBACK_MS = 86_400_000  # records a day older than the period cannot carry its events


@dataclass(frozen=True, slots=True)
class Span:
    """The positions [start, end) of one partition to read again."""

    tp: TopicPartition
    start: int
    end: int

    @property
    def field(self) -> str:
        return field_of(self.tp)


async def partitions_of(connection: KafkaConnection, topic: str) -> list[TopicPartition]:
    """Every partition of ``topic``."""
    consumer = kafka.consumer(connection, group_id=None)
    await consumer.start()
    try:
        found = consumer.partitions_for_topic(topic) or set()
        if not found:
            await consumer._client.force_metadata_update()
            found = consumer.partitions_for_topic(topic) or set()
        return [TopicPartition(topic, p) for p in sorted(found)]
    finally:
        await consumer.stop()


async def spans(connection: KafkaConnection, tps: Sequence[TopicPartition], since_ms: int,
                fences: dict[str, int]) -> list[Span]:
    """What to read of each partition: from the first record at ``since_ms`` less a day,
    up to its fence (``fences``: field -> position), within what Kafka holds."""
    consumer = kafka.consumer(connection, group_id=None)
    await consumer.start()
    try:
        found = await consumer.offsets_for_times({tp: max(since_ms - _LOOKBACK_MS, 0) for tp in tps})
        ends = await consumer.end_offsets(list(tps))
        beginnings = await consumer.beginning_offsets(list(tps))
    finally:
        await consumer.stop()
    out = []
    for tp in tps:
        end = min(fences.get(field_of(tp), 0), ends[tp])
        at = found.get(tp)
        start = at.offset if at is not None else ends[tp]
        if beginnings[tp] > start:
            start = beginnings[tp]
        if start < end:
            out.append(Span(tp, start, end))
    return out


async def read_kafka(connection: KafkaConnection, todo: Sequence[Span], judge: Judge, placement: Placement,
                     progress: Progress | None = None, check_crcs: bool = False) -> int:
    """Judge every committed record of ``todo``; the number of records read.

    Fetched as the worker fetches (lean records, large fetches, CRCs checked only if
    ``check_crcs``, the worker's setting)."""
    records.install()
    consumer = kafka.consumer(connection, group_id=None, enable_auto_commit=False, isolation_level="read_committed",
                              value_deserializer=records.raw_values, max_partition_fetch_bytes=8 << 20,
                              fetch_max_bytes=64 << 20, check_crcs=check_crcs)
    await consumer.start()
    read = 0
    try:
        ends = {span.tp: span.end for span in todo}
        names = {span.tp: span.field for span in todo}
        consumer.assign(list(ends))
        for span in todo:
            consumer.seek(span.tp, span.start)
        left = set(ends)
        add = judge.add
        while left:
            batch = await consumer.getmany(*left, timeout_ms=500, max_records=_FETCH)
            for tp, fetched in batch.items():
                end, name = ends[tp], names[tp]
                for record in fetched:
                    if record.offset >= end:
                        break
                    add(record.value or b"", record.timestamp, placement, name, record.offset)
                    read += 1
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
                    consumer.pause(tp)
            if progress is not None and batch:
                progress(read)
    finally:
        await consumer.stop()
    return read


def _lines(path: str | Path) -> Iterator[bytes]:
    """The lines of a file (gunzipped if gzip), without their newline: read in large
    chunks (a line-at-a-time gzip read costs more than judging the line)."""
    with open(path, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gz else open(path, "rb") as handle:
        rest = b""
        while chunk := handle.read(_CHUNK):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest


def read_archives(paths: Sequence[str | Path], judge: Judge, placement: Placement,
                  progress: Progress | None = None) -> int:
    """Judge every line of the archives, in order, by the watermark clock; lines read."""
    read = 0
    add = judge.add
    shown = time.monotonic()
    for path in paths:
        name = f"file:{Path(path).name}"
        for number, raw in enumerate(_lines(path)):
            if not raw.strip():
                continue
            add(raw, None, placement, name, number)
            read += 1
            if progress is not None and not read % 100_000 and time.monotonic() - shown > 1:
                shown = time.monotonic()
                progress(read)
    return read
