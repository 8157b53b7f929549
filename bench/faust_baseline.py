"""The same pipeline written with faust-streaming, two ways.

The idiomatic agent iterates its stream event by event; each event is judged with the
project's own ``parse_event`` + ``Counter`` (so the semantics are the worker's) and every
counted event is written to Redis at once: one pipelined round trip of HINCRBY/ZINCRBY,
preceded for a dataset request with a user by an SADD to its 5-minute dedupe set. The
batched agent (``--batched``) takes up to ``BATCH`` events at a time (``take_events``) and
writes each batch with one pipeline of SADDs (if it holds dataset candidates) and one of
increments summed per (repo, day), as the Quix Streams sink does. Faust commits
offsets after the events are acknowledged, so this is at-least-once: exact on a run
without failures, which is what the benchmark verifies.

The child measures itself, from the first event its agent receives to the write of the
last event of the workload, and writes that to ``--result``; the driver then stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.baseline_common import (
    Decider,
    Increment,
    Progress,
    add_new,
    queue_dedupe,
    queue_increment,
    seen_member,
    seen_set,
    split,
)
from bench.child import run_child, write_result
from bench.kafka_io import HEARTBEAT_INTERVAL_MS, SESSION_TIMEOUT_MS, load_libraries
from bench.redisview import baseline_counts, differences
from stream.kafka import KafkaConnection

if TYPE_CHECKING:
    import faust
    import redis.asyncio as aioredis

    from bench.workload import Workload


BATCH = 5_000
BATCH_WITHIN_S = 0.2


async def write_batch(client: aioredis.Redis, increments: list[Increment]) -> None:
    """One batch's writes: the dedupe SADDs first, then every increment in one pipeline."""
    plain, candidates = split(increments)
    if candidates:
        async with client.pipeline(transaction=False) as pipe:
            queue_dedupe(pipe, candidates)
            add_new(plain, candidates, await pipe.execute())
    if plain:
        async with client.pipeline(transaction=False) as pipe:
            for (repo_key, day), n in plain.items():
                queue_increment(pipe, repo_key, day, n)
            await pipe.execute()


async def write(client: aioredis.Redis, increment: Increment) -> None:
    """One counted event's writes: dedupe first for a dataset request, then the counters."""
    if increment.bucket is not None and increment.user is not None:
        added = await client.sadd(seen_set(increment.bucket), seen_member(increment.repo_key, increment.user))
        if not added:
            return  # this user already fetched this dataset in this 5-minute bucket
    async with client.pipeline(transaction=False) as pipe:
        queue_increment(pipe, increment.repo_key, increment.day, 1)
        await pipe.execute()


def build_app(args: argparse.Namespace, decider: Decider, progress: Progress) -> faust.App:
    import faust
    import redis.asyncio as aioredis

    app = faust.App(args.group, broker=f"kafka://{args.bootstrap}", store="memory://", web_enabled=False,
                    autodiscover=False, broker_session_timeout=SESSION_TIMEOUT_MS / 1000,
                    broker_heartbeat_interval=HEARTBEAT_INTERVAL_MS / 1000, consumer_auto_offset_reset="earliest")
    topic = app.topic(args.topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    client = aioredis.from_url(args.redis_url)

    def finish(partition: int, offset: int) -> None:
        if progress.saw(partition, offset) and not progress.reported:
            progress.wrote()
            progress.reported = True
            write_result(args.result, progress.result())

    if args.batched:
        @app.agent(topic)
        async def count_batches(stream: faust.StreamT) -> None:
            async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
                progress.begin()
                wanted = [e for e in events if progress.wanted(e.message.partition, e.message.offset)]
                increments = [i for i in map(decider.decide, (e.value for e in wanted)) if i is not None]
                await write_batch(client, increments)
                for event in events:
                    finish(event.message.partition, event.message.offset)

        return app

    @app.agent(topic)
    async def count(stream: faust.StreamT) -> None:
        async for event in stream.events():
            progress.begin()
            message = event.message
            if progress.wanted(message.partition, message.offset):
                increment = decider.decide(event.value)
                if increment is not None:
                    await write(client, increment)
            finish(message.partition, message.offset)

    return app


def main(argv: list[str] | None = None) -> None:
    import faust

    parser = argparse.ArgumentParser(description="faust-streaming baseline (a bench child)")
    for name in ("--bootstrap", "--topic", "--metadata-topic", "--redis-url", "--group", "--last-offsets", "--result"):
        parser.add_argument(name, required=True)
    parser.add_argument("--batched", action="store_true", help="the take_events agent, a pipeline per batch")
    args = parser.parse_args(argv)
    last = {int(p): o for p, o in json.loads(args.last_offsets).items()}
    libraries = asyncio.run(load_libraries(KafkaConnection(args.bootstrap), args.metadata_topic))
    app = build_app(args, Decider(libraries), Progress(last))
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def run_once(workload: Workload, run_id: str) -> dict[str, Any]:
    """Count the whole workload with the idiomatic per-event agent and verify it."""
    return _count(workload, f"faust-{run_id}", [])


def run_batched(workload: Workload, run_id: str) -> dict[str, Any]:
    """Count the whole workload with the batched agent and verify it."""
    return _count(workload, f"faust-batched-{run_id}", ["--batched"])


def _count(workload: Workload, name: str, extra: list[str]) -> dict[str, Any]:
    workload.flush_redis()
    s = workload.settings
    figures = run_child("bench.faust_baseline", [
        "--bootstrap", s.kafka_bootstrap, "--topic", s.events_topic, "--metadata-topic", s.metadata_topic,
        "--redis-url", s.redis_url, "--group", f"bench-{name}", "--last-offsets", json.dumps(workload.last_offsets()),
        *extra,
    ], Path(workload.workdir), name, timeout=1800)
    with workload.redis() as client:
        wrong, examples = differences(baseline_counts(client), workload.expected)
    figures.update(rate=figures["events"] / figures["seconds"], verified=wrong == 0, repos_wrong=wrong,
                   examples=examples)
    return figures


if __name__ == "__main__":
    main()
