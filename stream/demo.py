"""The main job on embedded services: broker, Redis, worker, read API and live traffic.

``hubcounter demo`` starts everything on free loopback ports (nothing to install, no
Docker), has the worker count 30 days of simulated history first (produced to Kafka and
counted like any traffic, so the trends, leaderboards and breakdowns show something from
the first second), then feeds it live simulated traffic, prints where to look and a status
line every few seconds, and stops it all on Ctrl-C (or after ``--duration``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from stream.api.tokens import ALL_ORGS, TokenStore
from stream.devstack import ManagedProcess, embedded_stack, free_port, wait_for_port, wait_ready, worker_process
from stream.settings import Settings
from stream.simulate import Simulation, produce_metadata, produce_to_kafka
from stream.store.connect import LazyClient, RedisConfig, connect
from stream.store.reader import CounterReader
from stream.topics import ensure_topics, topic_specs

DEMO_TOKEN = "demo"
HISTORY_TIMEOUT_S = 300.0  # the history is counted in seconds; this only catches a stuck worker
_DEFAULT_LATENESS_DAYS: float = Settings.model_fields["lateness_days"].default


@dataclass(frozen=True, slots=True)
class DemoOptions:
    rate: float
    repos: int
    seed: int
    duration: float | None
    api_port: int
    history_days: int = 30
    history_events: int = 150_000


def lateness_days(history_days: int) -> float:
    """The demo worker's lateness window: the usual 7 days, or longer to count the whole history.

    Events older than the window are dead-lettered, so the history's first day (``days - 1``
    days before today, from midnight UTC) must lie inside it.
    """
    return max(_DEFAULT_LATENESS_DAYS, history_days + 1.0)


def history_simulation(options: DemoOptions, now: datetime) -> Simulation:
    """``options.history_days`` UTC days of traffic ending at ``now``, today included."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = min(midnight - timedelta(days=options.history_days - 1), now - timedelta(hours=2))
    return Simulation(seed=options.seed, repos=options.repos, now=now, start=start)


def run_demo(options: DemoOptions, kafka_bootstrap: str | None, redis_url: str | None) -> None:
    """Run the whole stack until Ctrl-C or ``options.duration`` seconds."""
    with embedded_stack(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, durable_redis=False) as stack:
        settings = Settings(kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url,
                            kafka_idempotence=stack.idempotence, web_port=free_port(),
                            lateness_days=lateness_days(options.history_days))
        asyncio.run(ensure_topics(settings.kafka, topic_specs(settings)))
        history = history_simulation(options, datetime.now(UTC)) if options.history_days else None
        # The metadata first: the worker reads it whole when it starts, so it knows every
        # repo's library before it counts the first event.
        asyncio.run(produce_metadata(history or _live_simulation(options), settings.kafka, settings.metadata_topic))
        worker = worker_process(settings, stack.workdir)
        api = _api_process(settings, stack.workdir, options.api_port)
        try:
            began_ms = int(time.time() * 1000)
            worker.start()
            api.start()
            click.echo(f"broker  {stack.kafka_bootstrap}\nredis   {stack.redis_url}\nlogs    {stack.workdir}")
            wait_ready(settings.web_port, timeout=90, proc=worker)
            wait_for_port(api.port)
            if history is not None:
                asyncio.run(_count_history(settings, options, history, worker, began_ms))
            _announce(settings, options, asyncio.run(_demo_token(settings.redis_url)),
                      asyncio.run(_busiest_model(settings.redis_url)))
            asyncio.run(_feed_and_report(settings, options))
        finally:
            for proc in (api, worker):
                proc.stop()
        click.echo("stopped: broker, Redis, worker and API are down")


def _live_simulation(options: DemoOptions) -> Simulation:
    """Live traffic from now on (the same seed: the same hub as the history's)."""
    return Simulation(seed=options.seed, repos=options.repos, now=datetime.now(UTC), live_rate=options.rate)


async def _count_history(settings: Settings, options: DemoOptions, sim: Simulation, worker: ManagedProcess,
                         began_ms: int) -> None:
    """Produce the history to the events topic and wait until the worker has counted it all."""
    total = options.history_events
    click.echo(f"history {options.history_days} days: {total:,} simulated requests to Kafka, counted by the "
               f"worker (lateness window {settings.lateness_days:g} days, HUBCOUNTER_LATENESS_DAYS)")
    client = await connect(RedisConfig(settings.redis_url, settings.redis_cluster))
    reader = CounterReader(client)
    feed = asyncio.create_task(produce_to_kafka(sim, settings.kafka, settings.events_topic, None, count=total))
    started = time.monotonic()
    shown = -1
    try:
        while True:
            await asyncio.sleep(0.5)
            if feed.done():
                feed.result()  # surface a producer failure
            if not worker.running:
                raise click.ClickException(f"the worker stopped while counting the history; see {worker.log_path}")
            read = await _events_read(reader, settings.group, began_ms)
            if read != shown:
                shown = read
                click.echo(f"history {min(read, total):,} of {total:,} requests counted")
            if feed.done() and read >= total:
                break
            if time.monotonic() - started > HISTORY_TIMEOUT_S:
                raise click.ClickException(f"the history was not counted within {HISTORY_TIMEOUT_S:.0f} s; "
                                           f"see {worker.log_path}")
    finally:
        feed.cancel()
        await asyncio.gather(feed, return_exceptions=True)
        await client.aclose()
    click.echo(f"history counted in {time.monotonic() - started:.1f} s")


async def _events_read(reader: CounterReader, group: str, since_ms: int) -> int:
    """Events read by this demo's workers (their heartbeats, every 2 s), each applied to Redis."""
    return sum(w.values.get("events_read", 0) for w in await reader.workers()
               if w.group == group and w.values.get("started_ms", 0) >= since_ms)


def _api_process(settings: Settings, workdir: Path, port: int) -> ManagedProcess:
    argv = [sys.executable, "-m", "stream", "api", "--host", "127.0.0.1", "--port", str(port),
            "--redis-url", settings.redis_url]
    return ManagedProcess("api", argv, port, workdir / "api.log")


async def _demo_token(redis_url: str) -> str:
    """An operator token (every organisation) for a day, to open the dashboard's private views."""
    client = LazyClient(RedisConfig(redis_url))
    try:
        store = TokenStore(client)
        await store.revoke(DEMO_TOKEN)  # an earlier demo's, when REDIS_URL names a lasting Redis
        token, _ = await store.create([ALL_ORGS], DEMO_TOKEN, timedelta(days=1))
        return token
    finally:
        await client.aclose()


def _announce(settings: Settings, options: DemoOptions, token: str, busiest: str | None) -> None:
    base = f"http://127.0.0.1:{options.api_port}"
    repo = busiest or "ORG/NAME"
    redis = f"--redis-url {settings.redis_url}"
    lines = [
        ("dashboard", f"{base}/"),
        ("token", token),
        ("", "(paste it with Token on the dashboard to see organisations' private analytics)"),
        *([("top model", f"{base}/#/models/{repo}")] if busiest else []),
        ("API", f"{base}/api/models?sort=downloads&limit=10"),
        ("analytics", f"curl -H 'Authorization: Bearer {token}' "
                      f"'{base}/api/models/{repo}/downloads/breakdown?by=client'"),
        ("metrics", f"http://127.0.0.1:{settings.web_port}/metrics"),
        ("top repos", f"hubcounter counts --top 10 {redis}"),
        ("one repo", f"hubcounter counts model:{repo} --by class {redis}"),
        ("why not", f"hubcounter why model:{repo} {redis}"),
    ]
    click.echo(f"\nhubcounter is counting simulated hub traffic ({options.rate:,.0f} requests/s).")
    for label, value in lines:
        click.echo(f"  {label:<11} {value}")
    click.echo("Ctrl-C stops everything.\n")


async def _busiest_model(redis_url: str) -> str | None:
    """The model with most downloads over the last 30 days, if any was counted."""
    client = await connect(RedisConfig(redis_url))
    try:
        top = await CounterReader(client).top(("model",), 1)
        return top[0].repo if top else None
    finally:
        await client.aclose()


async def _feed_and_report(settings: Settings, options: DemoOptions) -> None:
    client = await connect(RedisConfig(settings.redis_url, settings.redis_cluster))
    reader = CounterReader(client)
    feed = asyncio.create_task(produce_to_kafka(
        _live_simulation(options), settings.kafka, settings.events_topic, None,
        duration=options.duration or 365 * 86_400.0, rate=options.rate))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    deadline = time.monotonic() + options.duration if options.duration else None
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5.0)
            await _report(reader)
            if feed.done():
                feed.result()  # surface a producer failure
    finally:
        feed.cancel()
        await asyncio.gather(feed, return_exceptions=True)
        await _report(reader, top=True)
        await client.aclose()


async def _report(reader: CounterReader, top: bool = False) -> None:
    workers = await reader.workers()
    read = sum(w.values.get("events_read", 0) for w in workers)
    counted = sum(w.values.get("events_counted", 0) for w in workers)
    click.echo(f"{datetime.now(UTC):%H:%M:%S}  events read {read:,}  downloads counted {counted:,}")
    if top:
        for rank, repo in enumerate(await reader.top(("model", "dataset"), 5), 1):
            click.echo(f"  {rank}. {repo.repo_type}:{repo.repo}  {repo.downloads:,}")


@click.command()
@click.option("--rate", default=2_000.0, show_default=True, help="Simulated requests per second.")
@click.option("--repos", default=5_000, show_default=True, help="Model repos in the simulated hub.")
@click.option("--seed", default=0, show_default=True)
@click.option("--duration", type=float, help="Stop after this many seconds (default: until Ctrl-C).")
@click.option("--api-port", default=8000, show_default=True, help="Port of the dashboard and read API.")
@click.option("--history-days", type=click.IntRange(0, 90), default=30, show_default=True,
              help="UTC days of simulated history, today included, counted before the live traffic (0: none).")
@click.option("--history-events", type=click.IntRange(min=1), default=150_000, show_default=True,
              help="Simulated requests over those days.")
@click.option("--kafka-bootstrap", envvar="KAFKA_BOOTSTRAP", help="Use this broker instead of an embedded one.")
@click.option("--redis-url", envvar="REDIS_URL", help="Use this Redis instead of an embedded one.")
def demo(rate: float, repos: int, seed: int, duration: float | None, api_port: int, history_days: int,
         history_events: int, kafka_bootstrap: str | None, redis_url: str | None) -> None:
    """Run the whole pipeline on embedded services with simulated traffic (the README's main command)."""
    run_demo(DemoOptions(rate, repos, seed, duration, api_port, history_days, history_events),
             kafka_bootstrap, redis_url)
