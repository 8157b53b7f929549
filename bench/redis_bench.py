"""The Redis side of counting: what a batch costs on one Redis and on a cluster, what the
position markers cost, and how much memory the counters take.

* **Apply.** Realistic batches (the simulation's traffic through the worker's own
  ``Counter``, 20,000 events and 8 partitions per batch) are applied with the real
  :class:`stream.store.writer.CounterStore` to one redis-server, to a one-master cluster
  and to a three-master cluster (no replicas, no persistence), after a warm-up pass (org
  index written, scripts loaded). Per batch: the time ``apply`` takes, the client's CPU,
  Redis's CPU (``INFO cpu``: the servers' own, summed over masters) and the bytes sent
  to Redis (``total_net_input_bytes``).
* **Markers.** The same batches' ranges applied with an empty tally: what moving every
  shard's position markers costs by itself, per batch.
* **Sizing.** ``repos`` model repos (``--sizing-repos``), each with downloads on each
  of ``days`` days, applied through the same writer (two calls in flight); ``used_memory``
  before and after, and ``MEMORY USAGE`` per structure (every leaderboard and day zset; a sample of
  repo hashes and org index sets), giving bytes per repo and per repo-day.
* **Analytics.** A month of the simulation's traffic (its clients, CI runners, bots,
  countries, GGUF variants and missed weight files) counted twice into empty redis-servers
  of their own, with the breakdowns on and off; the difference in ``used_memory`` and the
  ``MEMORY USAGE`` of the breakdown hashes and the downloaders' HyperLogLogs, per repo-day
  with downloads; then the same hashes after folding every day to K top values (K = 50,
  the default, and 10).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stream.classes import load_classifier
from stream.counting import Counter, Tally
from stream.devstack import redis_process
from stream.devstack.redis_cluster import LocalCluster
from stream.events import parse_event
from stream.facets import Facets
from stream.metadata import LibraryMap
from stream.rules import load_registry
from stream.simulate import Simulation
from stream.store import keys
from stream.store.connect import RedisClient, RedisConfig, connect
from stream.store.folding import fold_closed_days
from stream.store.writer import CounterStore, PartitionRange

SHARDS = 64
PARTITIONS = 8
BATCH = 20_000


def realistic_batches(events: int, seed: int = 7, *, days: float = 3.0, analytics: bool = False,
                      now: datetime | None = None) -> list[Tally]:
    """The simulation's traffic over ``days`` tallied by the worker's Counter (with the
    breakdowns when ``analytics``), one Tally per 20,000 events."""
    now = now or datetime.now(UTC)
    lateness = timedelta(days=max(7.0, days + 1))
    sim = Simulation(seed=seed, repos=30_000, now=now, bad_fraction=0.0, days=days, lateness=lateness)
    libraries = LibraryMap()
    for key, value in sim.metadata_records():
        libraries.apply(key, value)
    counter = Counter(load_registry(), libraries.library_of, lateness,
                      Facets(load_classifier()) if analytics else None)
    window = counter.window(now)
    tallies = []
    values = [record.value for record in sim.records(events)]
    for begin in range(0, len(values), BATCH):
        tally = Tally()
        for value in values[begin:begin + BATCH]:
            counter.add(parse_event(value, 65_536), tally, window)
        tallies.append(tally)
    return tallies


class _Ranges:
    """Contiguous position ranges of 8 partitions, batch after batch."""

    def __init__(self) -> None:
        self.next = [0] * PARTITIONS

    def take(self) -> list[PartitionRange]:
        out = []
        for p in range(PARTITIONS):
            start, self.next[p] = self.next[p], self.next[p] + BATCH // PARTITIONS
            out.append(PartitionRange(f"bench-apply:{p}", start, self.next[p], 0))
        return out


async def _server_stats(ports: list[int]) -> tuple[float, int]:
    """Redis's CPU (the servers' user + system seconds, all masters) and bytes received so far.

    Process CPU, not ``INFO commandstats``: since Redis 7 that counts a script's inner
    commands as well as the script, twice over."""
    cpu, received = 0.0, 0
    for port in ports:
        client = await connect(RedisConfig(f"redis://127.0.0.1:{port}/0", cluster="false"))
        try:
            info = await client.info("cpu")
            cpu += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
            received += int((await client.info("stats"))["total_net_input_bytes"])
        finally:
            await client.aclose()
    return cpu, received


async def _apply_pass(store: CounterStore, tallies: list[Tally], ranges: _Ranges, ports: list[int]) -> dict[str, Any]:
    walls, cpus = [], []
    cpu0, bytes0 = await _server_stats(ports)
    for tally in tallies:
        wall, cpu = time.perf_counter(), time.process_time()
        await store.apply(tally, ranges.take())
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    cpu1, bytes1 = await _server_stats(ports)
    n = len(tallies)
    return {"apply_ms_median": statistics.median(walls), "apply_ms_max": max(walls),
            "client_cpu_ms": statistics.median(cpus), "redis_cpu_ms": (cpu1 - cpu0) * 1000 / n,
            "bytes_in_kib": (bytes1 - bytes0) / 1024 / n}


async def _costs(url: str, ports: list[int], tallies: list[Tally]) -> dict[str, Any]:
    client = await connect(RedisConfig(url))
    try:
        await client.flushall()
        store = CounterStore(client, SHARDS, timedelta(days=7))
        await store.ensure_config()
        await store.roll_windows(datetime.now(UTC))
        ranges = _Ranges()
        await _apply_pass(store, tallies, ranges, ports)  # warm-up: org index, scripts, keys created
        batches = await _apply_pass(store, tallies, ranges, ports)
        markers = await _apply_pass(store, [Tally()] * len(tallies), ranges, ports)
    finally:
        await client.aclose()
    entries = sum(len(t.plain) + len(t.distinct) for t in tallies) / len(tallies)
    return {"batch": batches, "markers_only": markers, "entries_per_batch": round(entries)}


def apply_costs(workdir: Path, quick: bool) -> dict[str, Any]:
    """Per-batch costs on one Redis, a 1-master and a 3-master cluster (see the module docstring)."""
    tallies = realistic_batches(120_000 if quick else 400_000)
    out: dict[str, Any] = {"batches": len(tallies), "events_per_batch": BATCH, "partitions_per_batch": PARTITIONS,
                           "shards": SHARDS}
    single = redis_process(workdir, durable=False)
    single.start()
    try:
        out["one_redis"] = asyncio.run(_costs(f"redis://127.0.0.1:{single.port}/0", [single.port], tallies))
    finally:
        single.stop()
    for masters in (1, 3):
        cluster = LocalCluster(workdir / f"cluster-{masters}", durable=False)
        try:
            cluster.start(masters=masters, replicas=0)
            ports = [m.port for m in cluster.masters()]
            out[f"cluster_{masters}_masters"] = asyncio.run(_costs(cluster.url, ports, tallies))
        finally:
            cluster.stop()
    return out


async def _fill(client: RedisClient, repos: int, days: int) -> float:
    store = CounterStore(client, SHARDS, timedelta(days=7))
    await store.ensure_config()
    await store.roll_windows(datetime.now(UTC))
    today = datetime.now(UTC).date()
    names = [(today - timedelta(days=d)).isoformat() for d in range(days)]
    per_batch = max(1, BATCH // days)
    rng = random.Random(3)
    started = time.perf_counter()

    async def lane(k: int) -> None:  # two calls in flight: the client packs one while Redis runs the other
        position = 0
        for first in range(k * per_batch, repos, 2 * per_batch):
            tally = Tally(plain={(f"model:bench-org-{i % (repos // 10 + 1)}/model-{i:07d}", day): rng.randint(1, 50)
                                 for i in range(first, min(repos, first + per_batch)) for day in names})
            end = position + len(tally.plain)
            await store.apply(tally, [PartitionRange(f"bench-fill:{k}", position, end, 0)])
            position = end

    await asyncio.gather(lane(0), lane(1))
    return time.perf_counter() - started


async def _usage(client: RedisClient, names: list[str]) -> int:
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.memory_usage(name, samples=0)
        return sum(int(size or 0) for size in await pipe.execute())


async def _sizing(url: str, repos: int, days: int) -> dict[str, Any]:
    client = await connect(RedisConfig(url))
    try:
        before = int((await client.info("memory"))["used_memory"])
        seconds = await _fill(client, repos, days)
        after = int((await client.info("memory"))["used_memory"])
        today = datetime.now(UTC).date()
        day_zsets = [keys.day(s, "model", (today - timedelta(days=d)).isoformat())
                     for s in range(SHARDS) for d in range(days)]
        boards = [board(s, "model") for s in range(SHARDS) for board in (keys.window, keys.all_time)]
        sample = random.Random(5).sample(range(repos), min(repos, 10_000))
        hashes = [keys.repo(keys.shard_of(f"model:{name}", SHARDS), f"model:{name}")
                  for name in (f"bench-org-{i % (repos // 10 + 1)}/model-{i:07d}" for i in sample)]
        orgs = [keys.org_repos(f"bench-org-{i}") for i in random.Random(6).sample(range(repos // 10 + 1),
                                                                                   min(repos // 10 + 1, 2_000))]
        per_hash = await _usage(client, hashes) / len(hashes)
        per_org_member = await _usage(client, orgs) / (len(orgs) * 10)
        day_bytes, board_bytes = await _usage(client, day_zsets), await _usage(client, boards)
    finally:
        await client.aclose()
    repo_days = repos * days
    per_day_member = day_bytes / repo_days
    # A repo hash's bytes: a fixed part plus one field per day; a zset entry per board.
    return {
        "repos": repos, "days": days, "fill_seconds": round(seconds), "used_memory_mib": (after - before) / 2**20,
        "bytes_per_repo_day_total": (after - before) / repo_days,
        "repo_hash_bytes": per_hash, "day_zset_bytes_per_entry": per_day_member,
        "boards_bytes_per_repo": board_bytes / repos, "org_index_bytes_per_repo": per_org_member,
    }


def _sized(workdir: Path, repos: int, days: int) -> dict[str, Any]:
    """One fill, on an empty redis-server of its own (flushing gigabytes takes longer than a timeout)."""
    server = redis_process(workdir, durable=False)
    server.start()
    try:
        return asyncio.run(_sizing(f"redis://127.0.0.1:{server.port}/0", repos, days))
    finally:
        server.stop()


def sizing(workdir: Path, quick: bool, repos: int | None = None) -> dict[str, Any]:
    """Redis memory of ``repos`` repos x 30 days (and x 1 day): 200,000 by default, 20,000 quick."""
    repos = repos or (20_000 if quick else 200_000)
    short, full = _sized(workdir, repos, 1), _sized(workdir, repos, 30)
    # The two fills differ by 29 days of history for the same repos: what one repo-day adds.
    per_repo_day = (full["used_memory_mib"] - short["used_memory_mib"]) * 2**20 / (full["repos"] * 29)
    per_repo = short["used_memory_mib"] * 2**20 / short["repos"] - per_repo_day
    return {"one_day": short, "thirty_days": full, "bytes_per_repo_day": per_repo_day, "bytes_per_repo": per_repo}


async def _scan_usage(client: RedisClient, pattern: str) -> tuple[int, int]:
    """How many keys match ``pattern``, and their ``MEMORY USAGE`` in all."""
    names = [name async for name in client.scan_iter(match=pattern, count=5_000)]
    total = 0
    for begin in range(0, len(names), 5_000):
        total += await _usage(client, names[begin:begin + 5_000])
    return len(names), total


async def _analytics_fill(url: str, tallies: list[Tally], now: datetime) -> dict[str, Any]:
    client = await connect(RedisConfig(url))
    try:
        store = CounterStore(client, SHARDS, timedelta(days=31))
        await store.ensure_config()
        await store.roll_windows(now)
        before = int((await client.info("memory"))["used_memory"])
        position = 0
        for tally in tallies:
            end = position + 1
            await store.apply(tally, [PartitionRange("bench-analytics:0", position, end, 0)])
            position = end
        out: dict[str, Any] = {"used_memory": int((await client.info("memory"))["used_memory"]) - before}
        out["repo_days"], _ = await _scan_usage(client, "hc:{*}:u:*")
        out["breakdown_hashes"], out["breakdown_bytes"] = await _scan_usage(client, "hc:{*}:bd:*")
        _, out["hll_bytes"] = await _scan_usage(client, "hc:{*}:u:*")
        for top in (50, 10):
            # Two months on, every day is closed: fold them all to ``top`` values.
            await client.delete("hc:folded")
            await fold_closed_days(client, SHARDS, now.date() + timedelta(days=60), timedelta(days=31), top, top)
            _, out[f"breakdown_bytes_top_{top}"] = await _scan_usage(client, "hc:{*}:bd:*")
        return out
    finally:
        await client.aclose()


def analytics_sizing(workdir: Path, quick: bool) -> dict[str, Any]:
    """What the breakdowns and the downloaders' HLLs add per repo-day, at the simulation's cardinalities."""
    events = 100_000 if quick else 1_000_000
    now = datetime.now(UTC)
    measured: dict[bool, dict[str, Any]] = {}
    for analytics in (False, True):
        tallies = realistic_batches(events, seed=11, days=30, analytics=analytics, now=now)
        server = redis_process(workdir, durable=False)
        server.start()
        try:
            measured[analytics] = asyncio.run(_analytics_fill(f"redis://127.0.0.1:{server.port}/0", tallies, now))
        finally:
            server.stop()
    on, off = measured[True], measured[False]
    repo_days = on["repo_days"]
    return {
        "events": events, "days": 30, "repo_days_with_downloads": repo_days,
        "downloads_per_repo_day": round(events / repo_days, 1) if repo_days else 0,
        "used_memory_added_per_repo_day": (on["used_memory"] - off["used_memory"]) / repo_days,
        "breakdown_hash_bytes_per_repo_day": on["breakdown_bytes"] / repo_days,
        "hll_bytes_per_repo_day": on["hll_bytes"] / repo_days,
        "breakdown_hash_bytes_folded_top_50": on["breakdown_bytes_top_50"] / repo_days,
        "breakdown_hash_bytes_folded_top_10": on["breakdown_bytes_top_10"] / repo_days,
    }


def run(workdir: Path, quick: bool, sizing_repos: int | None = None) -> dict[str, Any]:
    """Every part (see the module docstring)."""
    for part in ("apply", "sizing", "analytics"):
        (workdir / part).mkdir(parents=True, exist_ok=True)
    return {"apply": apply_costs(workdir / "apply", quick), "sizing": sizing(workdir / "sizing", quick, sizing_repos),
            "analytics": analytics_sizing(workdir / "analytics", quick)}
