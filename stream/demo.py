"""The main job on embedded services: broker, Redis, worker, read API and live traffic.

``hubcounter demo`` starts everything on free loopback ports (nothing to install, no
Docker), feeds the worker simulated hub traffic, prints where to look and a status line
every few seconds, and stops it all on Ctrl-C (or after ``--duration``).
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
import redis.asyncio as aioredis

from stream.api.tokens import ALL_ORGS, TokenStore
from stream.devstack import ManagedProcess, embedded_stack, free_port, wait_for_port, wait_ready, worker_process
from stream.settings import Settings
from stream.simulate import Simulation, produce_to_kafka
from stream.store.reader import CounterReader
from stream.topics import ensure_topics, topic_specs

DEMO_TOKEN = "demo"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    rate: float
    repos: int
    seed: int
    duration: float | None
    api_port: int


def run_demo(options: DemoOptions, kafka_bootstrap: str | None, redis_url: str | None) -> None:
    """Run the whole stack until Ctrl-C or ``options.duration`` seconds."""
    with embedded_stack(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, durable_redis=False) as stack:
        settings = Settings(kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url,
                            web_port=free_port())
        asyncio.run(ensure_topics(settings.kafka_bootstrap, topic_specs(settings)))
        worker = worker_process(settings, stack.workdir)
        api = _api_process(settings, stack.workdir, options.api_port)
        try:
            worker.start()
            api.start()
            click.echo(f"broker  {stack.kafka_bootstrap}\nredis   {stack.redis_url}\nlogs    {stack.workdir}")
            wait_ready(settings.web_port, timeout=90, proc=worker)
            wait_for_port(api.port)
            _announce(settings, options, asyncio.run(_demo_token(settings.redis_url)))
            asyncio.run(_feed_and_report(settings, options))
        finally:
            for proc in (api, worker):
                proc.stop()
        click.echo("stopped: broker, Redis, worker and API are down")


def _api_process(settings: Settings, workdir: Path, port: int) -> ManagedProcess:
    argv = [sys.executable, "-m", "stream", "api", "--host", "127.0.0.1", "--port", str(port),
            "--redis-url", settings.redis_url]
    return ManagedProcess("api", argv, port, workdir / "api.log")


async def _demo_token(redis_url: str) -> str:
    """An operator token (every organisation) for a day, to open the dashboard's private views."""
    client = aioredis.from_url(redis_url)
    try:
        store = TokenStore(client)
        await store.revoke(DEMO_TOKEN)  # an earlier demo's, when REDIS_URL names a lasting Redis
        token, _ = await store.create([ALL_ORGS], DEMO_TOKEN, timedelta(days=1))
        return token
    finally:
        await client.aclose()


def _announce(settings: Settings, options: DemoOptions, token: str) -> None:
    click.echo(
        f"\nhubcounter is counting simulated hub traffic ({options.rate:,.0f} requests/s).\n"
        f"  dashboard   http://127.0.0.1:{options.api_port}/\n"
        f"  token       {token}\n"
        "              (paste it with Token on the dashboard to see organisations' private analytics)\n"
        f"  API         http://127.0.0.1:{options.api_port}/api/models?sort=downloads&limit=10\n"
        f"  metrics     http://127.0.0.1:{settings.web_port}/metrics\n"
        f"  top repos   hubcounter counts --top 10 --redis-url {settings.redis_url}\n"
        f"  one repo    hubcounter counts model:ORG/NAME --redis-url {settings.redis_url}\n"
        "Ctrl-C stops everything.\n"
    )


async def _feed_and_report(settings: Settings, options: DemoOptions) -> None:
    sim = Simulation(seed=options.seed, repos=options.repos, now=datetime.now(UTC), live_rate=options.rate)
    feed = asyncio.create_task(produce_to_kafka(
        sim, settings.kafka_bootstrap, settings.events_topic, settings.metadata_topic,
        duration=options.duration or 365 * 86_400.0, rate=options.rate))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = aioredis.from_url(settings.redis_url)
    reader = CounterReader(client)
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
@click.option("--kafka-bootstrap", envvar="KAFKA_BOOTSTRAP", help="Use this broker instead of an embedded one.")
@click.option("--redis-url", envvar="REDIS_URL", help="Use this Redis instead of an embedded one.")
def demo(rate: float, repos: int, seed: int, duration: float | None, api_port: int,
         kafka_bootstrap: str | None, redis_url: str | None) -> None:
    """Run the whole pipeline on embedded services with simulated traffic (the README's main command)."""
    run_demo(DemoOptions(rate, repos, seed, duration, api_port), kafka_bootstrap, redis_url)
