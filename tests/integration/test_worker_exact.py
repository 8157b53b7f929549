"""The worker's counts equal the batch reference, whatever fails along the way.

Each test feeds simulated hub traffic through Kafka while it disrupts the worker or
Redis, then compares every repo's daily and all-time counts in Redis with an
independent computation over the same log (``stream.reference``).
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stream.devstack import free_port
from stream.reference import compute
from stream.settings import Settings
from tests.support import (
    Expected,
    Feeder,
    assert_exact,
    committed_total,
    send,
    simulated,
    start_worker,
    wait_committed,
)

pytestmark = pytest.mark.integration


def finish_exactly(settings: Settings, workdir: Path, feeder: Feeder, expected: Expected, name: str) -> None:
    """A successor worker counts the rest of what ``feeder`` sends; then Redis must hold
    exactly ``expected``."""
    worker = start_worker(settings, workdir, name=name)
    try:
        wait_committed(settings, feeder.join())
    finally:
        worker.stop()
    assert_exact(settings, expected)


@pytest.mark.smoke
def test_counts_equal_the_reference_on_simulated_traffic(settings, workdir):
    # The plain path: 100,000 requests across models, datasets, spaces and libraries.
    records, expected = simulated(settings, 100_000, seed=1)
    assert {k.split(":")[0] for k in expected.counts} == {"model", "dataset"}
    last = send(settings, settings.events_topic, records)
    worker = start_worker(settings, workdir)
    try:
        wait_committed(settings, last)
    finally:
        worker.stop()
    assert_exact(settings, expected)


def test_sigkill_mid_stream_and_restart_stays_exact(settings, workdir):
    # Kill -9 lands between apply and commit, mid-apply or mid-fetch: replays must be skipped.
    records, expected = simulated(settings, 120_000, seed=2)
    feeder = Feeder(settings, records, rate=6_000).start()
    rng = random.Random(2)
    for round_ in range(3):
        worker = start_worker(settings, workdir, name=f"worker{round_}")
        time.sleep(rng.uniform(1.0, 4.0))
        worker.kill()
    finish_exactly(settings, workdir, feeder, expected, "worker-final")


def test_two_workers_with_rebalances_stay_exact(settings, workdir):
    # A second worker joins mid-stream, then the first leaves: partitions move twice.
    records, expected = simulated(settings, 100_000, seed=3)
    feeder = Feeder(settings, records, rate=8_000).start()
    first = start_worker(settings, workdir, name="first")
    time.sleep(2)
    second = start_worker(settings.model_copy(update={"web_port": free_port()}), workdir, name="second")
    time.sleep(3)
    first.stop()
    try:
        wait_committed(settings, feeder.join())
    finally:
        second.stop()
    assert first.proc.returncode == 0
    assert_exact(settings, expected)


def ride_out(settings: Settings, workdir, seed: int, outage: Callable[[], None], what: str) -> dict:
    """Feed live requests through ``outage``: the worker must survive it and count exactly.
    Returns the expected counts (the reference's)."""
    records, expected = simulated(settings, 100_000, seed=seed)
    feeder = Feeder(settings, records, rate=8_000).start()
    worker = start_worker(settings, workdir)
    try:
        time.sleep(2)
        outage()
        wait_committed(settings, feeder.join())
        assert worker.running, f"the worker must ride out {what}"
    finally:
        worker.stop()
    assert_exact(settings, expected)
    return expected.counts


def test_redis_frozen_then_killed_and_restarted_stays_exact(settings, workdir, stack):
    # SIGSTOP makes calls time out after Redis did or did not run them; a kill -9 and
    # restart (append-only file, fsync always) loses nothing Redis acknowledged.
    assert stack.redis is not None, "this test needs the embedded Redis it can stop"

    def outage() -> None:
        stack.redis.signal(signal.SIGSTOP)
        time.sleep(7)
        stack.redis.signal(signal.SIGCONT)
        time.sleep(2)
        stack.redis.kill()
        time.sleep(2)
        stack.redis.start()

    ride_out(settings, workdir, 4, outage, "Redis outages")


def test_sigterm_exits_zero_in_time_and_loses_nothing(settings, workdir):
    # A rolling deploy: SIGTERM mid-stream, then a successor finishes the work.
    records, expected = simulated(settings, 80_000, seed=5)
    feeder = Feeder(settings, records, rate=8_000).start()
    worker = start_worker(settings, workdir, name="old")
    time.sleep(3)
    assert committed_total(settings) > 0, "the worker should have been counting"
    began = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=10) == 0
    assert time.monotonic() - began < 10
    finish_exactly(settings, workdir, feeder, expected, "new")


def test_sigterm_while_redis_is_frozen_still_exits_in_time(settings, workdir, stack):
    # A deploy during a Redis stall: the batch in flight cannot finish, yet the process
    # must be gone within the 10 s a rolling deploy grants (then comes SIGKILL). Nothing
    # unapplied was committed, so the successor counts it once Redis is back.
    assert stack.redis is not None, "this test needs the embedded Redis it can stop"
    records, expected = simulated(settings, 60_000, seed=8)
    feeder = Feeder(settings, records, rate=8_000).start()
    worker = start_worker(settings, workdir, name="old")
    time.sleep(3)
    stack.redis.signal(signal.SIGSTOP)
    try:
        time.sleep(0.5)
        began = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.proc.wait(timeout=15) == 0
        took = time.monotonic() - began
    finally:
        stack.redis.signal(signal.SIGCONT)
    assert took < 10, f"the worker took {took:.1f} s to exit after SIGTERM"
    finish_exactly(settings, workdir, feeder, expected, "new")


@pytest.mark.smoke
def test_broker_frozen_mid_stream_stays_exact(settings, workdir, stack):
    # Fetches and commits time out while the broker is frozen; the worker must neither die
    # nor count twice when it comes back. (Tansu keeps its log only in memory, so there
    # freezing is the outage a test can survive; on Apache Kafka the next test restarts it.)
    assert stack.kafka is not None, "this test needs the embedded broker it can freeze"

    def outage() -> None:
        stack.kafka.signal(signal.SIGSTOP)
        time.sleep(6)
        stack.kafka.signal(signal.SIGCONT)

    ride_out(settings, workdir, 6, outage, "a broker outage")


@pytest.mark.kafka_only
def test_broker_restarted_from_its_log_stays_exact(settings, workdir, stack):
    # The single broker goes down mid-stream (SIGTERM: a controlled shutdown) and comes
    # back from its own log directory: fetches, commits and the feeder's sends fail for a
    # while, then resume from what the log kept; nothing is lost or counted twice.
    assert stack.cluster is not None

    def outage() -> None:
        stack.cluster.node(1).process.stop()
        time.sleep(3)
        stack.cluster.start_node(1)

    ride_out(settings, workdir, 7, outage, "a broker restart")


def test_counts_exact_on_batches_of_other_clients(foreign, settings, workdir):
    # The log as CDN shippers write it: librdkafka's and the Java producer's batches, every
    # codec, committed and aborted transactions. Aborted records never count.
    ours = foreign.settings.model_copy(update={"group": settings.group, "web_port": settings.web_port})
    expected = compute([value for _, value in foreign.written.committed], metadata=list(foreign.sim.metadata()),
                       now=foreign.now)
    worker = start_worker(ours, workdir)
    try:
        wait_committed(ours, foreign.last_offsets)
    finally:
        worker.stop()
    assert_exact(ours, expected)
