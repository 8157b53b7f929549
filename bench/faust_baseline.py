"""The same pipeline written the idiomatic faust-streaming way.

An agent iterates its stream event by event; each event is judged with the project's
own ``parse_event`` + ``Counter`` (so the semantics are the worker's) and every counted
event is written to Redis at once: one pipelined round trip of HINCRBY/ZINCRBY, preceded
for a dataset request with a user by an SADD to its 5-minute dedupe set. Faust commits
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

from bench.baseline_common import Decider, Increment, Progress, queue_increment, seen_member, seen_set
from bench.child import run_child, write_result
from bench.kafka_io import HEARTBEAT_INTERVAL_MS, SESSION_TIMEOUT_MS, load_libraries
from bench.redisview import baseline_counts, differences

if TYPE_CHECKING:
    import faust
    import redis.asyncio as aioredis

    from bench.workload import Workload


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

    @app.agent(topic)
    async def count(stream: faust.StreamT) -> None:
        async for event in stream.events():
            progress.begin()
            message = event.message
            if progress.wanted(message.partition, message.offset):
                increment = decider.decide(event.value)
                if increment is not None:
                    await write(client, increment)
            if progress.saw(message.partition, message.offset) and not progress.reported:
                progress.wrote()
                progress.reported = True
                write_result(args.result, progress.result())

    return app


def main(argv: list[str] | None = None) -> None:
    import faust

    parser = argparse.ArgumentParser(description="faust-streaming baseline (a bench child)")
    for name in ("--bootstrap", "--topic", "--metadata-topic", "--redis-url", "--group", "--last-offsets", "--result"):
        parser.add_argument(name, required=True)
    args = parser.parse_args(argv)
    last = {int(p): o for p, o in json.loads(args.last_offsets).items()}
    libraries = asyncio.run(load_libraries(args.bootstrap, args.metadata_topic))
    app = build_app(args, Decider(libraries), Progress(last))
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def run_once(workload: Workload, run_id: str) -> dict[str, Any]:
    """Count a prefix of the workload (``Sizes.faust_events`` records) and verify it."""
    last, expected = workload.prefix(workload.sizes.faust_events)
    workload.flush_redis()
    s = workload.settings
    figures = run_child("bench.faust_baseline", [
        "--bootstrap", s.kafka_bootstrap, "--topic", s.events_topic, "--metadata-topic", s.metadata_topic,
        "--redis-url", s.redis_url, "--group", f"bench-faust-{run_id}", "--last-offsets", json.dumps(last),
    ], Path(workload.workdir), f"faust-{run_id}", timeout=900)
    with workload.redis() as client:
        wrong, examples = differences(baseline_counts(client), expected)
    figures.update(rate=figures["events"] / figures["seconds"], verified=wrong == 0, repos_wrong=wrong,
                   examples=examples)
    return figures


if __name__ == "__main__":
    main()
