"""The same pipeline in Quix Streams: Application, StreamingDataFrame, a batching Redis sink.

The topic is read with Quix's bytes deserializer, so each event is decoded once, by the
project's ``parse_event`` + ``Counter`` that judge it (as in the worker; malformed records
are judged not to count), the frame is filtered on that rule check, and a :class:`BatchingSink` writes each checkpoint's
increments to Redis: SADDs to the dedupe sets first, then one pipeline of HINCRBY/ZINCRBY
per (repo, day). Default checkpointing (every 5 s); a graceful stop flushes the last one.

``session.timeout.ms`` is lowered to 3 s (heartbeats every 750 ms), as for every contender:
Tansu holds a new group's join for half the session timeout (23 s at librdkafka's default),
which is outside the measured window anyway but would make every run wait.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.baseline_common import Decider, Increment, Progress, add_new, queue_dedupe, queue_increment, split
from bench.child import run_child, write_result
from bench.kafka_io import HEARTBEAT_INTERVAL_MS, SESSION_TIMEOUT_MS, load_libraries
from bench.redisview import baseline_counts, differences
from stream.kafka import KafkaConnection

if TYPE_CHECKING:
    from quixstreams.sinks import SinkBatch

    from bench.workload import Workload


def make_sink(redis_url: str, progress: Progress) -> Any:
    """A batching sink that applies one checkpoint's increments to Redis."""
    import redis
    from quixstreams.sinks import BatchingSink

    class RedisCounterSink(BatchingSink):
        def __init__(self) -> None:
            super().__init__()
            self.client = redis.Redis.from_url(redis_url)

        def write(self, batch: SinkBatch) -> None:
            plain, candidates = split(item.value for item in batch)
            if candidates:  # a dataset request counts only if its dedupe member is new
                with self.client.pipeline(transaction=False) as pipe:
                    queue_dedupe(pipe, candidates)
                    add_new(plain, candidates, pipe.execute())
            with self.client.pipeline(transaction=False) as pipe:
                for (repo_key, day), n in plain.items():
                    queue_increment(pipe, repo_key, day, n)
                pipe.execute()
            progress.wrote()

    return RedisCounterSink()


def run_app(args: argparse.Namespace, decider: Decider, progress: Progress) -> None:
    from quixstreams import Application, message_context

    app: Application

    def on_bad_record(exc: Exception, message: Any, logger: logging.Logger) -> bool:
        # Not JSON: skipped, as the reference skips it; it still counts as processed.
        if message is not None:
            processed(message.topic(), message.partition(), message.offset())
        return True

    def processed(topic: str, partition: int, offset: int) -> None:
        if progress.saw(partition, offset):
            app.stop()  # a graceful stop flushes the sink at a final checkpoint

    def judge(value: bytes) -> Increment | None:
        progress.begin()
        context = message_context()
        if not progress.wanted(context.partition, context.offset):
            return None
        return decider.decide(value)

    app = Application(broker_address=args.bootstrap, consumer_group=args.group, auto_offset_reset="earliest",
                      consumer_extra_config={"session.timeout.ms": SESSION_TIMEOUT_MS,
                                             "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS},
                      state_dir=args.state_dir,
                      loglevel="WARNING", on_consumer_error=on_bad_record, on_message_processed=processed,
                      use_changelog_topics=False)
    # Raw bytes: each event is decoded once, by parse_event, as in the worker.
    topic = app.topic(args.topic, value_deserializer="bytes", key_deserializer="bytes")
    sdf = app.dataframe(topic)
    sdf = sdf.apply(judge)
    sdf = sdf.filter(lambda increment: increment is not None)
    sdf.sink(make_sink(args.redis_url, progress))
    app.run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Quix Streams baseline (a bench child)")
    for name in ("--bootstrap", "--topic", "--metadata-topic", "--redis-url", "--group", "--last-offsets",
                 "--state-dir", "--result"):
        parser.add_argument(name, required=True)
    args = parser.parse_args(argv)
    last = {int(p): o for p, o in json.loads(args.last_offsets).items()}
    libraries = asyncio.run(load_libraries(KafkaConnection(args.bootstrap), args.metadata_topic))
    progress = Progress(last)
    run_app(args, Decider(libraries), progress)
    if progress.pending or progress.last_write is None:
        raise SystemExit(f"stopped with partitions {sorted(progress.pending)} unfinished")
    write_result(args.result, progress.result())


def run_once(workload: Workload, run_id: str) -> dict[str, Any]:
    """Count the whole workload and verify it."""
    workload.flush_redis()
    s = workload.settings
    workdir = Path(workload.workdir)
    figures = run_child("bench.quix_baseline", [
        "--bootstrap", s.kafka_bootstrap, "--topic", s.events_topic, "--metadata-topic", s.metadata_topic,
        "--redis-url", s.redis_url, "--group", f"bench-quix-{run_id}",
        "--last-offsets", json.dumps(workload.last_offsets()), "--state-dir", str(workdir / f"quix-{run_id}"),
    ], workdir, f"quix-{run_id}", timeout=900)
    with workload.redis() as client:
        wrong, examples = differences(baseline_counts(client), workload.expected)
    figures.update(rate=figures["events"] / figures["seconds"], verified=wrong == 0, repos_wrong=wrong,
                   examples=examples)
    return figures


if __name__ == "__main__":
    main()
