"""``/healthz`` and ``/readyz`` tell the truth: each case a worker can be in, on the real stack."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from stream.reference import compute
from stream.settings import Settings
from stream.simulate import Simulation
from tests.support import Feeder, committed_total, create_topics, send, snapshot, start_worker, wait_committed

pytestmark = pytest.mark.integration


def probe(settings: Settings, page: str) -> tuple[int, dict]:
    """The status and JSON body of one of the worker's pages."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}{page}", timeout=2) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _traffic(settings: Settings, count: int, seed: int) -> tuple[list, dict]:
    """Topics with the simulation's metadata; its event records and their expected counts."""
    sim = Simulation(seed=seed, repos=500, now=datetime.now(UTC))
    create_topics(settings, partitions=2)
    send(settings, settings.metadata_topic, sim.metadata_records())
    records = [(r.key, r.value) for r in sim.records(count)]
    return records, compute([value for _, value in records], list(sim.metadata()), now=sim.now)


def test_an_idle_worker_is_live_and_ready(settings, workdir):
    # Nothing to count for longer than the stall limit is not a stall.
    settings = settings.model_copy(update={"stall_seconds": 1.0})
    _traffic(settings, 0, seed=21)
    worker = start_worker(settings, workdir)
    try:
        time.sleep(7)  # past the stall limit, and the waiting probe (every 5 s) has run
        status, body = probe(settings, "/healthz")
        assert (status, body["waiting"]) == (200, 0), body
        assert probe(settings, "/readyz")[0] == 200
    finally:
        worker.stop()


def test_a_redis_outage_is_ridden_out_live_but_not_ready(settings, workdir, stack):
    # Redis away is an outage: restarting the worker would not help, so it stays live, but
    # it is not counting, so it is not ready; both come back when Redis does.
    assert stack.redis is not None, "this test needs the embedded Redis it can freeze"
    settings = settings.model_copy(update={"stall_seconds": 8.0})  # over the 5 s Redis timeout
    records, expected = _traffic(settings, 60_000, seed=22)
    feeder = Feeder(settings, records, rate=6_000).start()
    worker = start_worker(settings, workdir)
    try:
        deadline = time.monotonic() + 60
        while committed_total(settings, partitions=2) == 0 and time.monotonic() < deadline:
            time.sleep(0.2)  # counting, so that the outage hits a worker that applies batches
        stack.redis.signal(signal.SIGSTOP)
        try:
            live, ready = [], []
            for _ in range(30):  # 15 s: past the stall limit
                live.append(probe(settings, "/healthz"))
                ready.append(probe(settings, "/readyz"))
                time.sleep(0.5)
        finally:
            stack.redis.signal(signal.SIGCONT)
        assert all(status == 200 for status, _ in live), [b for s, b in live if s != 200][:1]
        assert any(status == 503 and "Redis" in (body["outage"] or "") for status, body in ready), ready[-1]
        assert max(body["waiting"] for _, body in live) > 0, "records should have waited during the outage"
        wait_committed(settings, feeder.join())
        assert probe(settings, "/readyz")[0] == 200
        assert probe(settings, "/healthz")[0] == 200
    finally:
        worker.stop()
    assert snapshot(settings) == expected


def _metric(settings: Settings, name: str) -> float:
    """The sum of a metric's samples on the worker's /metrics page."""
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=2) as reply:
        lines = reply.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(name))


def test_redis_refusing_writes_blocks_the_worker_until_an_operator_acts(settings, workdir):
    # Out of memory is no outage: waiting does not fix it. The worker says so at once
    # (not ready, a metric), fails liveness once stalled, loses nothing, and resumes by
    # itself when the operator makes room.
    import redis

    settings = settings.model_copy(update={"stall_seconds": 3.0})
    records, expected = _traffic(settings, 20_000, seed=23)
    first, rest = records[:5000], records[5000:]
    last = send(settings, settings.events_topic, first)
    worker = start_worker(settings, workdir)
    admin = redis.Redis.from_url(settings.redis_url)
    try:
        wait_committed(settings, last)
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)  # every write is refused from now on
        try:
            last = send(settings, settings.events_topic, rest)
            deadline = time.monotonic() + 30
            while probe(settings, "/healthz")[0] == 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            status, body = probe(settings, "/healthz")
            assert status == 503 and "maxmemory" in body["blocked"], body
            status, body = probe(settings, "/readyz")
            assert status == 503 and body["outage"] is None, body
            assert _metric(settings, "hubcounter_blocked_total") > 0
        finally:
            admin.config_set("maxmemory", 0)
        wait_committed(settings, last)
        assert probe(settings, "/readyz")[0] == 200
        assert probe(settings, "/healthz")[0] == 200
    finally:
        worker.stop()
    assert snapshot(settings) == expected
