"""The ceiling: a raw ``getmany`` drain of the events topic (no decoding, no Redis).

Two drains: the *lean* one reads as the worker's own consumer does (the lean record path
of :mod:`stream.records`, ``read_committed``, the worker's CRC setting), the fair ceiling
the worker's rate is compared with; the *stock* one is aiokafka as it comes (a
``ConsumerRecord`` per record, CRCs checked). The consumer is assigned every partition (no
group, so no join to wait for) and uses the worker's fetch settings and batch size; a run
is three passes over the topic, reported by its median pass. The rate is taken from the
return of the first ``getmany`` that held records to the return of the last, over the
records after that first batch (whose fetch time is outside the window): the same
steady-state window as the worker's figure (see :mod:`bench.worker_e2e`).
``rate_with_first_batch`` counts the first batch too, as the worker's own
``first_read_ms`` figure does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from aiokafka import TopicPartition

from bench.child import run_child, write_result
from stream import kafka
from stream.records import install, raw_values
from stream.settings import Settings

if TYPE_CHECKING:
    from bench.workload import Workload

BATCH = 20_000  # the worker's default batch size


async def drain(bootstrap: str, topic: str, last: dict[int, int], lean: bool,
                give_up_s: float = 300.0) -> dict[str, Any]:
    """Read every partition up to its last produced offset; return counts and times."""
    options: dict[str, Any] = {}
    if lean:  # as the worker's consumer reads (stream.worker.CountingWorker._make_consumer)
        install()
        options = {"value_deserializer": raw_values, "isolation_level": "read_committed",
                   "check_crcs": Settings.model_fields["check_crcs"].default}
    consumer = kafka.consumer(kafka.KafkaConnection(bootstrap), group_id=None, enable_auto_commit=False,
                              auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024,
                              fetch_max_bytes=64 * 1024 * 1024, **options)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(last)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = set(partitions)
        count = first_batch = 0
        first = end = cpu_first = cpu_end = 0.0
        deadline = time.monotonic() + give_up_s
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"drained {count} records, partitions left: {sorted(remaining)}")
            batch = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            now = time.perf_counter()
            for tp, records in batch.items():
                count += len(records)
                if records[-1].offset >= last[tp.partition]:
                    remaining.discard(tp)
            if batch:
                if not first:
                    first, first_batch, cpu_first = now, count, time.process_time()
                end, cpu_end = now, time.process_time()
    finally:
        await consumer.stop()
    seconds = end - first
    return {"events": count, "first_batch": first_batch, "seconds": seconds, "cpu_seconds": cpu_end - cpu_first,
            "rate": (count - first_batch) / seconds if seconds > 0 else None,
            "rate_with_first_batch": count / seconds if seconds > 0 else None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="raw getmany drain (a bench child)")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--last-offsets", required=True, help="JSON {partition: last offset}")
    parser.add_argument("--passes", type=int, default=3, help="drains of the topic; the median is reported")
    parser.add_argument("--lean", action="store_true", help="read as the worker's consumer does")
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    last = {int(p): o for p, o in json.loads(args.last_offsets).items()}
    passes = [asyncio.run(drain(args.bootstrap, args.topic, last, args.lean)) for _ in range(args.passes)]
    # One pass over a short topic is a fraction of a second: take the median of a few.
    middle = sorted(passes, key=lambda p: p["rate"] or 0.0)[len(passes) // 2]
    write_result(args.result, {**middle, "pass_rates": [p["rate"] for p in passes]})


if __name__ == "__main__":
    main()


def run_once(workload: Workload, run_id: str) -> dict[str, Any]:
    """One lean drain (the worker's fetch path) of the whole workload; checks it read every record."""
    return _drain_child(workload, f"drain-{run_id}", ["--lean"])


def run_stock(workload: Workload, run_id: str) -> dict[str, Any]:
    """One drain by stock aiokafka of the whole workload; checks it read every record."""
    return _drain_child(workload, f"drain-stock-{run_id}", [])


def _drain_child(workload: Workload, name: str, extra: list[str]) -> dict[str, Any]:
    last = workload.last_offsets()
    figures = run_child("bench.drain", ["--bootstrap", workload.settings.kafka_bootstrap, "--topic", workload.topic,
                                        "--last-offsets", json.dumps(last), *extra],
                        workload.workdir, name, timeout=300)
    figures["verified"] = figures["events"] == workload.events
    if not figures["verified"]:
        figures["error"] = f"read {figures['events']} records, produced {workload.events}"
    return figures
