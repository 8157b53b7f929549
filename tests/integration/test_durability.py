"""Nothing lost when Redis loses writes it acknowledged: Redis, not the committed offset,
is the record of what has been counted, and a Redis found behind is counted again.

The worker runs on a Redis of the test's own, which the test takes back in time while
live traffic flows: every repo's counts must still equal the reference, and the worker
must say it caught Redis up (``hubcounter_redis_behind_total``).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import RecordsToDelete

from stream import kafka
from stream.devstack import redis_process
from stream.settings import Settings
from stream.store import keys
from tests.integration.test_health import _metric, probe
from tests.integration.test_worker_exact import assert_exact, simulated
from tests.support import (
    Feeder,
    committed_total,
    redis_client,
    save_snapshot,
    send,
    start_worker,
    wait_committed,
    worker_process,
)

pytestmark = pytest.mark.integration


def wait_counting(settings: Settings, timeout: float = 60.0) -> None:
    """Block until the worker has committed some of the traffic (it joined and counts)."""
    deadline = time.monotonic() + timeout
    while committed_total(settings) == 0:
        assert time.monotonic() < deadline, "the worker did not start counting"
        time.sleep(0.2)
    time.sleep(1)


def assert_org_index(settings: Settings, expected: dict) -> None:
    """Every counted repo is in its organisation's index (written again after a rollback too)."""
    with redis_client(settings.redis_url) as client:
        missing = [key for key in expected
                   if (org := keys.org_of(key)) and not client.sismember(keys.org_repos(org), key)]
    assert not missing, f"{len(missing)} repos missing from their org index, e.g. {missing[:3]}"


def counted_again_after(settings: Settings, workdir: Path, seed: int, rollback: Callable[[], None],
                        what: str) -> dict:
    """Feed live traffic; once the worker counts, ``rollback()`` takes Redis back in time.
    The worker must ride it out, find Redis behind, count again and come out exact.
    Returns the expected counts."""
    records, expected = simulated(settings, 80_000, seed=seed)
    worker = start_worker(settings, workdir)
    feeder = Feeder(settings, records, rate=6_000).start()
    try:
        wait_counting(settings)
        rollback()
        wait_committed(settings, feeder.join())
        assert worker.running, f"the worker must ride out {what}"
        assert _metric(settings, "hubcounter_redis_behind_total") > 0, f"the worker should find Redis behind ({what})"
    finally:
        worker.stop()
    assert_exact(settings, expected)
    return expected.counts


def test_redis_restored_from_an_older_snapshot_is_counted_again(settings, workdir):
    # BGSAVE mid-stream, counting goes on for seconds, then Redis is killed and started
    # again from that snapshot while the worker runs: the batches applied since are gone
    # from Redis though committed in Kafka. The worker's next batch finds Redis behind,
    # counts again from Redis's markers, and the counts come out exact, org index included.
    data = workdir / "redis"
    data.mkdir()
    server = redis_process(data, durable=False)  # its own: this test takes it back in time
    server.start()
    settings = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{server.port}/0"})

    def restore() -> None:
        older = save_snapshot(server.port, data)
        time.sleep(3)  # the worker applies and commits batches the snapshot does not hold
        server.kill()
        shutil.copy(older, data / "dump.rdb")
        server.start()

    try:
        assert_org_index(settings, counted_again_after(settings, workdir, 51, restore, "a restore"))
    finally:
        server.stop()


async def _delete_records(settings: Settings, before: dict[int, int]) -> None:
    admin = kafka.admin(settings.kafka)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(settings.events_topic, p): RecordsToDelete(offset)
                                    for p, offset in before.items()}, timeout_ms=10_000)
    finally:
        await admin.close()


def delete_records(settings: Settings, before: dict[int, int]) -> None:
    """What retention does: delete each partition's records before an offset."""
    asyncio.run(_delete_records(settings, before))


@pytest.mark.kafka_only  # DeleteRecords: Tansu, the demo's broker, does not support it
def test_a_replay_needing_records_kafka_deleted_is_reported(settings, workdir):
    # Redis goes back to an older snapshot while no worker runs, and retention has
    # meanwhile deleted records Redis no longer holds. The worker counts what Kafka still
    # has, and reports the rest: a metric, an error naming partitions and offsets, and
    # /readyz failing. Nothing is skipped in silence.
    data = workdir / "redis"
    data.mkdir()
    server = redis_process(data, durable=False)
    server.start()
    settings = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{server.port}/0"})
    records, _ = simulated(settings, 30_000, seed=52)
    first = send(settings, settings.events_topic, records[:10_000])
    worker = start_worker(settings, workdir, name="before")
    try:
        wait_committed(settings, first)
        older = save_snapshot(server.port, data)  # holds each partition up to just past `first`
        second = send(settings, settings.events_topic, records[10_000:20_000])
        wait_committed(settings, second)
    finally:
        worker.stop()
    gone = {p: offset + 1 for p, offset in second.items()}  # retention took the first two thirds
    delete_records(settings, gone)
    server.kill()
    shutil.copy(older, data / "dump.rdb")
    server.start()
    with redis_client(settings.redis_url) as client:
        held = {p: int(client.hget(keys.position(0), f"{settings.events_topic}:{p}")) for p in gone}
    assert held == {p: offset + 1 for p, offset in first.items()}
    # Not start_worker: it waits for /readyz to say 200, and this worker may find the loss
    # (and fail /readyz) before the first probe comes.
    worker = worker_process(settings, workdir, "after")
    worker.start()
    try:
        wait_committed(settings, send(settings, settings.events_topic, records[20_000:]))
        status, body = probe(settings, "/readyz")
        assert status == 503 and "gone from Kafka" in (body["lost"] or ""), body
        missing = _metric(settings, "hubcounter_replay_records_missing_total")
        assert missing == sum(gone[p] - held[p] for p in gone)
    finally:
        worker.stop()
        server.stop()
    log = worker.log_path.read_text()
    assert all(f"partition {settings.events_topic}:{p} needs offsets {held[p]} to {gone[p] - 1}" in log for p in gone)
