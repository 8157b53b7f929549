"""Replay after a Redis rollback: how much the worker counts again when Redis loses writes.

The real worker counts the workload's topic into a redis-server of its own. When the
shards' position markers say it holds about a third of the topic, ``BGSAVE`` keeps a
snapshot; once Redis holds a third more than the snapshot (or the whole topic), Redis
is killed and started again from that snapshot while the worker runs. The worker finds
the shards behind (with its next batch, or its idle check) and counts again from their
markers. Measured: the positions Redis lost (what it held just before the kill minus
what the snapshot holds, read from the snapshot itself), the positions the worker
counted again (``hubcounter_replayed_positions_total``) and the seconds from the restart
to the whole topic held again; then every counter is compared with the reference, as in
the throughput runs.
"""

from __future__ import annotations

import shutil
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

from bench.child import stop_in_background
from bench.redisview import differences, worker_counts
from bench.worker_e2e import wait_totals
from stream.devstack import redis_process, wait_ready, worker_process
from stream.store import keys

if TYPE_CHECKING:
    from bench.workload import Workload

_POLL_S = 0.005


def _held(client: redis.Redis, topic: str, shards: int) -> int:
    """The positions every shard holds, summed over partitions (the lowest marker of each)."""
    with client.pipeline(transaction=False) as pipe:
        for shard in range(shards):
            pipe.hgetall(keys.position(shard))
        replies = pipe.execute()
    lowest: dict[str, int] = {}
    for reply in replies:
        for name, position in reply.items():
            field = name.decode()
            if field.startswith(f"{topic}:"):
                lowest[field] = min(lowest.get(field, int(position)), int(position))
    return sum(lowest.values())


def _wait_held(client: redis.Redis, topic: str, shards: int, target: int, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while (held := _held(client, topic, shards)) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"Redis held {held:,} positions, waited for {target:,}")
        time.sleep(_POLL_S)
    return held


def _held_in(snapshot: Path, topic: str, shards: int) -> int:
    """What an RDB file holds, read on a throw-away redis-server started from it."""
    scratch = snapshot.parent / "read-snapshot"
    scratch.mkdir(exist_ok=True)
    shutil.copy(snapshot, scratch / "dump.rdb")
    server = redis_process(scratch, durable=False)
    server.start()
    try:
        with redis.Redis(port=server.port) as client:
            return _held(client, topic, shards)
    finally:
        server.stop()


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        lines = reply.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(name))


def run(workload: Workload) -> dict[str, Any]:
    """One rollback mid-topic (see the module docstring)."""
    data = workload.workdir / "rollback-redis"
    data.mkdir(exist_ok=True)
    server = redis_process(data, durable=False)
    server.start()
    url = f"redis://127.0.0.1:{server.port}/0"
    settings = workload.settings_for("bench-rollback", redis_url=url)
    client = redis.Redis.from_url(url)
    proc = worker_process(settings, workload.workdir, "worker-rollback")
    total = workload.events
    try:
        proc.start()
        wait_ready(settings.web_port, timeout=120, proc=proc)
        _wait_held(client, settings.events_topic, settings.shards, total // 3)
        before = client.lastsave()
        client.bgsave()
        while client.lastsave() == before:
            time.sleep(0.01)
        shutil.copy(data / "dump.rdb", data / "older.rdb")
        snapshot_at = _held_in(data / "older.rdb", settings.events_topic, settings.shards)
        lost_until = _wait_held(client, settings.events_topic, settings.shards, min(total, snapshot_at + total // 3))
        server.kill()
        shutil.copy(data / "older.rdb", data / "dump.rdb")
        server.start()
        restarted = time.monotonic()
        client = redis.Redis.from_url(url)
        totals = wait_totals(client, proc, total, timeout=600)
        _wait_held(client, settings.events_topic, settings.shards, total)  # every record applied
        caught_up_s = time.monotonic() - restarted
        replayed = _metric(settings.web_port, "hubcounter_replayed_positions_total")
        behind = _metric(settings.web_port, "hubcounter_redis_behind_total")
    finally:
        stop_in_background(proc.stop)
    try:
        wrong, examples = differences(worker_counts(client), workload.expected)
    finally:
        client.close()
        server.stop()
    lost = lost_until - snapshot_at
    return {"events": total, "snapshot_holds": snapshot_at, "held_before_the_kill_at_least": lost_until,
            "positions_lost_at_least": lost, "positions_replayed": int(replayed), "replay_ratio": replayed / lost,
            "partitions_found_behind": int(behind), "caught_up_seconds": round(caught_up_s, 2),
            "events_read": totals.get("events_read"), "verified": wrong == 0, "repos_wrong": wrong,
            "examples": examples}
