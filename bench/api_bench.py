"""Benchmark of the read API: latency of repo lookups and listings with 1,000,000 repos in Redis.

Run ``python -m bench.api_bench`` (``--quick`` for 10,000 repos and fewer requests,
``--json`` for the figures as JSON). :func:`run` returns the figures for ``python -m bench all``.

What it does:

* starts a throw-away Redis (``stream.devstack.redis_process``, not durable) and fills it
  through the real write path, :meth:`stream.store.writer.CounterStore.apply`, with
  synthetic tallies: 1,000,000 repos (one in seven a dataset) in 64 shards, each with
  1 to 30 days of downloads over the last 60 days, Pareto-distributed volumes, ~10 repos
  per organisation plus one organisation of 5,000 repos;
* serves the API as operators would: ``python -m stream.api`` (uvicorn, access log off,
  ``--workers`` processes, uvloop/httptools when installed), with its one-second listing
  cache, then once more with ``--cache-seconds 0`` for the listings read from Redis
  every time; its access layer is on (a token check and a rate-limit call per request),
  with limits this one client never reaches;
* measures what the access layer costs, on versus off (``bench.api_access_bench``);
* drives it from this process with an asyncio + aiohttp load generator on 127.0.0.1: a
  fixed number of requests after a warm-up, a bounded number in flight, either offered
  at a fixed rate (open loop; latency counted from each request's scheduled time to the
  last byte of its body) or as fast as answers come back (closed loop: saturation).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from stream.api.tokens import TokenStore
from stream.counting import Tally
from stream.devstack import ManagedProcess, free_port, redis_process, wait_for_port
from stream.store.writer import CounterStore, PartitionRange

SHARDS = 64
BIG_ORG, BIG_ORG_REPOS = "bigorg", 5000
Scenario = tuple[str, Callable[[random.Random], str], int, int, float | None]


def _log(message: str) -> None:
    print(f"[api-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def repo_id(i: int) -> tuple[str, str]:
    """Repo number ``i`` of the synthetic catalogue: (type, org/name)."""
    org = BIG_ORG if i < BIG_ORG_REPOS else f"org{(i * 7919) % 100_000:05d}"
    return ("dataset" if i % 7 == 0 else "model"), f"{org}/repo-{i:07d}"


async def fill(redis_url: str, repos: int, seed: int = 7, batch: int = 25_000) -> dict[str, Any]:
    """Write ``repos`` repos' daily downloads through CounterStore.apply, ``batch`` repos per call."""
    rng = random.Random(seed)
    client = aioredis.from_url(redis_url)
    store = CounterStore(client, SHARDS, timedelta(days=90))
    await store.ensure_config()
    now = datetime.now(UTC)
    await store.roll_windows(now)  # so that apply keeps the 30-day leaderboards too
    days = [(now.date() - timedelta(days=d)).isoformat() for d in range(60)]
    began, increments, offset = time.perf_counter(), 0, 0
    for first in range(0, repos, batch):
        tally = Tally()
        for i in range(first, min(first + batch, repos)):
            repo_type, name = repo_id(i)
            volume = rng.paretovariate(1.2)
            # popular repos are downloaded every day; most only on a few
            n_days = min(30, 1 + int(rng.paretovariate(1.4)) + (29 if volume > 50 else 0))
            for day in rng.sample(days[:30] if volume > 50 else days, n_days):
                tally.plain[(f"{repo_type}:{name}", day)] = max(1, int(volume * rng.uniform(0.5, 1.5)))
        increments += len(tally.plain)
        last = offset + len(tally.plain) - 1
        outcomes = await store.apply(tally, [PartitionRange("bench:0", offset, last)])
        assert all(o.status == "ok" for o in outcomes), outcomes
        offset = last + 1
    seconds = time.perf_counter() - began
    memory = (await client.info("memory"))["used_memory_human"]
    await client.aclose()
    return {"repos": repos, "increments": increments, "seconds": round(seconds, 1),
            "repos_per_s": round(repos / seconds), "redis_memory": memory}


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


async def load(base: str, make_path: Callable[[random.Random], str], requests: int, concurrency: int,
               rate: float | None = None, seed: int = 1, warmup: int = 200, headers: dict[str, str] | None = None,
               samples: list[float] | None = None) -> dict[str, Any]:
    """``requests`` GETs, at most ``concurrency`` in flight; latency percentiles in ms and requests/s.

    ``headers`` go with every request; ``samples``, if given, receives every measured
    latency (seconds), so that several runs can be pooled.

    Without ``rate`` the loop is closed (each client sends again as soon as it has its
    answer: the server's saturation throughput and the latency it costs). With ``rate``
    the requests are *scheduled* at that many per second and a request's latency runs
    from its scheduled time, so a stalled server is charged for the requests it delayed
    (no coordinated omission).
    """
    rng = random.Random(seed)
    paths = [make_path(rng) for _ in range(warmup + requests)]
    latencies: list[float] = []
    errors: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def fetch(path: str, since: float | None) -> None:
            began = time.perf_counter() if since is None else since
            async with session.get(base + path) as reply:
                await reply.read()
                status = reply.status
            if since is not None or measuring:
                latencies.append(time.perf_counter() - began)
                if status != 200:
                    errors[status] = errors.get(status, 0) + 1

        async def closed(queue: list[str]) -> None:
            while queue:
                await fetch(queue.pop(), None)

        async def run_closed(batch: list[str]) -> None:
            queue = batch[::-1]
            await asyncio.gather(*(closed(queue) for _ in range(concurrency)))

        measuring = False
        await run_closed(paths[:warmup])
        measuring = True
        # A full collection in this process would stall every request in flight and be
        # charged to the server: freeze what exists and collect nothing while measuring.
        gc.collect()
        gc.freeze()
        gc.disable()
        began = time.perf_counter()
        if rate is None:
            await run_closed(paths[warmup:])
        else:
            slots = asyncio.Semaphore(concurrency)

            async def scheduled(path: str, at: float) -> None:
                async with slots:
                    await fetch(path, at)

            tasks = []
            for n, path in enumerate(paths[warmup:]):
                at = began + n / rate
                delay = at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(scheduled(path, at)))
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
        gc.enable()
        gc.unfreeze()
    if samples is not None:
        samples.extend(latencies)
    ordered = sorted(latencies)
    ms = {f"p{q}_ms": round(_percentile(ordered, q) * 1000, 2) for q in (50, 90, 99)}
    return {**ms, "max_ms": round(ordered[-1] * 1000, 2), "requests": requests, "concurrency": concurrency,
            "offered_per_s": rate or "closed loop", "requests_per_s": round(requests / elapsed), "errors": errors or 0}


# --quick is a smoke run that must leave the whole suite's quick mode under a minute.
_QUICK_REPOS = 10_000
_QUICK_SCALE = 40


def scenarios(repos: int, quick: bool) -> list[Scenario]:
    """The measured workloads: name, path maker, request count, most in flight, offered rate."""
    scale = _QUICK_SCALE if quick else 1

    def lookup(rng: random.Random) -> str:
        repo_type, name = repo_id(rng.randrange(repos))
        return f"/api/{repo_type}s/{name}?expand[]=downloads&expand[]=downloadsAllTime"

    def daily(rng: random.Random) -> str:
        repo_type, name = repo_id(rng.randrange(repos))
        return f"/api/{repo_type}s/{name}/downloads"

    top30 = "/api/models?sort=downloads&limit=100"
    return [
        ("repo lookup at 1,000/s", lookup, 20_000 // scale, 64, 1000.0),
        ("repo lookup, saturated", lookup, 20_000 // scale, 8, None),
        ("daily series (30 days) at 500/s", daily, 10_000 // scale, 64, 500.0),
        ("top-100 models (30 days) at 200/s", lambda _: top30, 4_000 // scale, 64, 200.0),
        ("top-100 models (30 days), saturated", lambda _: top30, 4_000 // scale, 8, None),
        ("top-100 models (all time) at 100/s", lambda _: "/api/models?sort=downloadsAllTime&limit=100",
         2_000 // scale, 64, 100.0),
        (f"top-100 of an org of {BIG_ORG_REPOS:,} repos, saturated",
         lambda _: f"/api/models?author={BIG_ORG}&limit=100", 400 // scale, 2, None),
    ]


def uncached_scenarios(quick: bool) -> list[Scenario]:
    """The listings again, on a server started with ``--cache-seconds 0``: every request reads Redis."""
    scale = _QUICK_SCALE if quick else 1
    top30 = "/api/models?sort=downloads&limit=100"
    return [
        ("uncached top-100 models (30 days) at 200/s", lambda _: top30, 4_000 // scale, 64, 200.0),
        ("uncached top-100 models (30 days), saturated", lambda _: top30, 4_000 // scale, 8, None),
        (f"uncached top-100 of an org of {BIG_ORG_REPOS:,} repos, saturated",
         lambda _: f"/api/models?author={BIG_ORG}&limit=100", 200 // scale, 2, None),
    ]


# The access layer stays on (a token check and a rate-limit call per request, as deployed),
# with limits the load generator, one address, never reaches.
UNREACHED_LIMITS = {f"HUBCOUNTER_API_{kind}_{what}": "1000000" for kind in ("ADDRESS", "TOKEN")
                    for what in ("RATE", "BURST")}


def serve(redis_url: str, workdir: Path, workers: int, cache_seconds: float = 1.0) -> ManagedProcess:
    """Start ``python -m stream.api`` and wait until it is ready."""
    port = free_port()
    argv = [sys.executable, "-m", "stream.api", "--host", "127.0.0.1", "--port", str(port), "--redis-url",
            redis_url, "--workers", str(workers), "--cache-seconds", str(cache_seconds), "--log-level", "warning"]
    return start_server("api", argv, port, workdir, UNREACHED_LIMITS)


def start_server(name: str, argv: list[str], port: int, workdir: Path, env: dict[str, str]) -> ManagedProcess:
    """Start a server process with ``env`` on top of ours; wait until every process is ready."""
    server = ManagedProcess(name, ["env", *(f"{k}={v}" for k, v in env.items()), *argv], port,
                            workdir / f"{name}.log")
    server.start()
    wait_for_port(port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # every worker process must have imported the app
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
    return server


async def operator_token(redis_url: str) -> str:
    """A token for every organisation (the CSV breakdown is private)."""
    client = aioredis.from_url(redis_url)
    try:
        token, _ = await TokenStore(client).create(["*"], f"bench-{os.getpid()}-{time.monotonic_ns()}")
        return token
    finally:
        await client.aclose()


def breakdown_figures(base: str, token: str, runs: int = 3) -> dict[str, Any]:
    """Time to stream the big organisation's whole CSV breakdown (every day of every repo)."""
    timings, size = [], 0
    for _ in range(runs):
        began = time.perf_counter()
        request = urllib.request.Request(f"{base}/api/organizations/{BIG_ORG}/download-breakdown",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=120) as r:
            size = sum(len(chunk) for chunk in iter(lambda: r.read(1 << 16), b""))
        timings.append(time.perf_counter() - began)
    return {"repos": BIG_ORG_REPOS, "bytes": size, "best_s": round(min(timings), 3)}


def _server_stack() -> str:
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"uvicorn {loop}/{http}"


def run(quick: bool = False, workers: int = 1, repos: int | None = None, access_only: bool = False) -> dict[str, Any]:
    """Fill a fresh Redis, serve the API, measure every scenario; return the figures.

    ``access_only``: only what the access layer costs (``bench.api_access_bench``).
    """
    repos = repos or (_QUICK_REPOS if quick else 1_000_000)
    figures: dict[str, Any] = {
        "quick": quick, "date": datetime.now(UTC).date().isoformat(), "cores": os.cpu_count(),
        "python": platform.python_version(), "server": f"{_server_stack()}, {workers} worker process(es)",
        "load_generator": "asyncio + aiohttp in one process on 127.0.0.1, 200 warm-up requests; "
                          "open loop at a fixed rate (latency from the scheduled time) or closed loop",
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory(prefix="api-bench-") as tmp:
        workdir = Path(tmp)
        redis = redis_process(workdir, durable=False)
        redis.start()
        try:
            url = f"redis://127.0.0.1:{redis.port}/0"
            _log(f"filling {repos:,} repos")
            figures["fill"] = asyncio.run(fill(url, repos))
            _log(f"filled: {figures['fill']}")
            measurements = () if access_only else ((1.0, scenarios(repos, quick)), (0.0, uncached_scenarios(quick)))
            for cache_seconds, measured in measurements:
                server = serve(url, workdir, workers, cache_seconds)
                try:
                    base = f"http://127.0.0.1:{server.port}"
                    for name, make_path, count, concurrency, rate in measured:
                        figures[name] = asyncio.run(load(base, make_path, count, concurrency, rate))
                        _log(f"{name}: {figures[name]}")
                    if cache_seconds:
                        token = asyncio.run(operator_token(url))
                        figures["csv breakdown"] = breakdown_figures(base, token, runs=1 if quick else 3)
                finally:
                    server.stop()
            _log("the access layer, on versus off")
            figures["access layer"] = importlib.import_module("bench.api_access_bench").run(url, repos, workdir, quick)
            _log(f"access layer: {figures['access layer']}")
        finally:
            redis.stop()
    figures["load_average_at_end"] = round(os.getloadavg()[0], 2)
    figures["goals"] = {"access layer adds < 1 ms at p50": all(
        row["added_p50_ms"] < 1 for row in figures["access layer"].values() if isinstance(row, dict)
        and "added_p50_ms" in row)}
    if not access_only:
        figures["goals"].update({
            "repo lookup p99 < 10 ms": figures["repo lookup at 1,000/s"]["p99_ms"] < 10,
            "top-100 p99 < 50 ms": figures["top-100 models (30 days) at 200/s"]["p99_ms"] < 50,
            "uncached top-100 p99 < 50 ms": figures["uncached top-100 models (30 days) at 200/s"]["p99_ms"] < 50,
        })
    return figures


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: print the figures as a table (or JSON)."""
    parser = argparse.ArgumentParser(prog="python -m bench.api_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 repos, a fortieth of the requests")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (as `hubcounter api`)")
    parser.add_argument("--repos", type=int, help="repos to fill (default 1,000,000; quick 10,000)")
    parser.add_argument("--access-only", action="store_true",
                        help="measure only what the access layer costs (on versus off)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = run(quick=args.quick, workers=args.workers, repos=args.repos, access_only=args.access_only)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    for name, value in figures.items():
        if isinstance(value, dict) and "p99_ms" in value:
            print(f"{name:<34} p50 {value['p50_ms']:>7.2f} ms  p90 {value['p90_ms']:>7.2f} ms  "
                  f"p99 {value['p99_ms']:>7.2f} ms  {value['requests_per_s']:>6,} req/s  "
                  f"({value['requests']:,} requests, at most {value['concurrency']} in flight, "
                  f"errors {value['errors']})")
        else:
            print(f"{name:<34} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
