"""Where the worker's time goes: ``CountingWorker.process`` on pre-fetched batches.

``python -m bench.profile_worker [--quick] [--top N]`` starts the embedded stack, produces
the standard workload, fetches it the way the worker does (``getmany``, 20,000 records a
batch), then runs the worker's own per-batch steps (``count`` then ``apply``; ``process``
on older versions) on every batch against the embedded Redis, one batch after the other,
twice, each time with a fresh worker on a flushed Redis: once plain, to split the time
between counting (decode + rules + tally, CPU only) and applying (dead letters, the Redis
round trip, metrics; the Redis part from the worker's ``apply_seconds`` metric), and once
under cProfile, to list the functions that take it. Fetching is outside both, and so is
the overlap of counting with applying that the worker's loop adds; ``py-spy`` on a
running worker shows the whole process.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition

from bench.workload import Workload, prepared
from stream import kafka
from stream.deadletters import DeadLetterSink
from stream.rules import load_registry
from stream.worker import Batch, CountingWorker

BATCH = 20_000


async def fetch_batches(workload: Workload) -> list[Batch]:
    """The whole topic in the batches a worker's ``getmany`` would return."""
    last = workload.last_offsets()
    consumer = kafka.consumer(workload.settings.kafka, group_id=None, enable_auto_commit=False,
                              max_partition_fetch_bytes=8 << 20, fetch_max_bytes=64 << 20)
    await consumer.start()
    batches: list[Batch] = []
    try:
        partitions = [TopicPartition(workload.topic, p) for p in sorted(last)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = set(partitions)
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            for tp, records in batch.items():
                if records[-1].offset >= last[tp.partition]:
                    remaining.discard(tp)
            if batch:
                batches.append(batch)
    finally:
        await consumer.stop()
    return batches


async def _fresh_worker(workload: Workload) -> tuple[CountingWorker, AIOKafkaProducer]:
    await asyncio.to_thread(workload.flush_redis)  # it runs a loop of its own
    worker = CountingWorker(workload.settings_for("bench-profile"), load_registry())
    for key, value in workload.metadata:
        worker.libraries.apply(key.encode(), None if value is None else orjson.dumps(value))
    await worker.connect()
    producer = kafka.producer(workload.settings.kafka, linger_ms=5)
    await producer.start()
    # The dead-letter producer and sink the worker's run() would have started.
    worker._producer = producer
    worker._dead_letters = DeadLetterSink(producer, worker.settings.dlq_topic, worker.settings.dlq_keep_bytes)
    return worker, producer


async def _close(worker: CountingWorker, producer: AIOKafkaProducer) -> None:
    await producer.stop()
    await worker.store.client.aclose()


async def _process(worker: CountingWorker, batch: Batch) -> float:
    """One batch through the worker's steps; returns the seconds spent counting (CPU only)."""
    if not hasattr(worker, "count"):  # the single-step worker of earlier versions
        await worker.process(batch)  # type: ignore[attr-defined]
        return 0.0
    started = time.perf_counter()
    counted = await worker.count(batch)
    counting = time.perf_counter() - started
    await worker.apply(counted)
    return counting


async def split(workload: Workload, batches: list[Batch]) -> dict[str, Any]:
    """Wall time over every batch: counting, applying, and the Redis round trips within applying."""
    worker, producer = await _fresh_worker(workload)
    try:
        started = time.perf_counter()
        counting = 0.0
        for batch in batches:
            counting += await _process(worker, batch)
        total = time.perf_counter() - started
        metric = worker.metrics.apply_seconds.collect()[0]
        redis_s = next(s.value for s in metric.samples if s.name.endswith("_sum"))
    finally:
        await _close(worker, producer)
    events = sum(len(records) for batch in batches for records in batch.values())
    return {"events": events, "batches": len(batches), "seconds": total, "events_per_s": events / total,
            "count_s": counting, "apply_s": total - counting, "of_which_redis_apply_s": redis_s,
            "us_per_event": 1e6 * total / events, "count_us_per_event": 1e6 * counting / events,
            "apply_us_per_event": 1e6 * (total - counting) / events}


async def profiled(workload: Workload, batches: list[Batch], top: int) -> str:
    """cProfile of ``process`` over every batch: the top functions by own time."""
    worker, producer = await _fresh_worker(workload)
    profiler = cProfile.Profile()
    try:
        profiler.enable()
        for batch in batches:
            await _process(worker, batch)
        profiler.disable()
    finally:
        await _close(worker, producer)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the quick workload (100,000 events)")
    parser.add_argument("--top", type=int, default=30, help="functions to list")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hubcounter-profile-") as scratch, \
            prepared(args.quick, Path(scratch)) as workload:
        batches = asyncio.run(fetch_batches(workload))
        figures = asyncio.run(split(workload, batches))
        print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
        print(asyncio.run(profiled(workload, batches, args.top)))


if __name__ == "__main__":
    main()
