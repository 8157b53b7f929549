"""Helpers of the API tests: Redis filled once per module by the real worker.

Starting a worker costs about ten seconds, so each module fills Redis once (its own
topics and group, a flushed Redis) from a simulated log and checks every endpoint
against the reference counts of that same log. The session's ``settings`` fixture is
not used there: it flushes Redis for every test.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import redis
import uvicorn
from click.testing import CliRunner, Result
from fastapi import FastAPI

from stream.api import create_app
from stream.api.token_commands import tokens
from stream.devstack import ManagedProcess, Stack, free_port, wait_for_port
from stream.reference import run
from stream.reference.analytics import Analytics
from stream.settings import AccessSettings, Settings
from stream.simulate import Simulation
from tests.support import create_topics, send, start_worker, wait_committed

_ids = itertools.count()


@dataclass
class Filled:
    """A Redis filled by a real worker, and what it should hold."""

    settings: Settings
    sim: Simulation
    now: datetime
    expected: dict[str, dict[str, Any]]  # the reference: {"type:repo": {downloadsAllTime, daily}}
    workdir: Path
    worker: ManagedProcess | None = None
    analytics: dict[str, dict[str, dict[str, Any]]] | None = None  # the reference's, unfolded

    @property
    def today(self) -> date:
        return self.now.date()

    def last30(self, key: str) -> int:
        """The reference's 30-day downloads of ``type:repo``, window ending on ``today``."""
        first = (self.today - timedelta(days=29)).isoformat()
        return sum(n for day, n in self.expected[key]["daily"].items() if first <= day <= self.today.isoformat())

    def of_type(self, repo_type: str) -> dict[str, dict[str, Any]]:
        return {k.partition(":")[2]: v for k, v in self.expected.items() if k.startswith(f"{repo_type}:")}

    def orgs(self) -> dict[str, list[str]]:
        """Org -> its counted ``type:repo`` keys, biggest org first."""
        found: dict[str, list[str]] = {}
        for key in self.expected:
            name = key.partition(":")[2]
            if "/" in name:
                found.setdefault(name.split("/")[0], []).append(key)
        return dict(sorted(found.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def module_settings(stack: Stack, name: str, lateness_days: float = 7.0) -> Settings:
    """Settings with topics and a group of their own, on a flushed Redis."""
    redis.Redis.from_url(stack.redis_url).flushall()
    prefix = f"api{next(_ids)}-{name}"
    return Settings(
        kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url, kafka_idempotence=stack.idempotence,
        group=f"{prefix}-group",
        events_topic=f"{prefix}-events", metadata_topic=f"{prefix}-metadata", dlq_topic=f"{prefix}-dlq",
        web_port=free_port(), shards=16, batch_size=5000, lateness_days=lateness_days,
    )


def fill(stack: Stack, workdir: Path, name: str, *, seed: int, events: int, repos: int = 400,
         days: float = 3.0, keep_worker: bool = False) -> Filled:
    """Count ``events`` simulated requests spread over ``days`` with a real worker.

    The worker's lateness is set to cover those days; it is stopped unless ``keep_worker``.
    """
    lateness = timedelta(days=max(7.0, days + 1))
    settings = module_settings(stack, name, lateness.total_seconds() / 86400)
    now = datetime.now(UTC)
    sim = Simulation(seed=seed, repos=repos, now=now, bad_fraction=0.01, days=days, lateness=lateness)
    create_topics(settings, partitions=4)
    send(settings, settings.metadata_topic, sim.metadata_records())
    records = [(r.key, r.value) for r in sim.records(events)]
    collected = Analytics()
    expected = run([value for _, value in records], list(sim.metadata()), now, lateness,
                   analytics=collected).counts
    last = send(settings, settings.events_topic, records)
    worker = start_worker(settings, workdir)
    try:
        wait_committed(settings, last)
    except BaseException:
        worker.stop()
        raise
    if not keep_worker:
        worker.stop()
    return Filled(settings, sim, now, expected, workdir, worker if keep_worker else None, collected.shape())


class ApiClient:
    """Synchronous calls into the app in-process (httpx over ASGI) on one event loop of its own.

    The app's Redis connections belong to the loop that opened them, so every call goes
    through the same blocking portal (an event loop in a helper thread).
    """

    def __init__(self, app: FastAPI):
        self.app = app
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(lambda: self._client.get(path, **kwargs))

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run an async callable on the client's loop (e.g. a direct reader call)."""
        return self._portal.call(fn)

    def close(self) -> None:
        self._portal.call(self._client.aclose)
        self._portal.call(self.app.state.api.aclose)
        self._portal_cm.__exit__(None, None, None)


class ServerThread:
    """uvicorn serving an app on a free loopback port from a background thread."""

    def __init__(self, app: FastAPI):
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="api-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self._thread.start()
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)


def pinned_app(filled: Filled) -> FastAPI:
    """An app whose clock is the simulation's ``now``: its 30-day window matches the reference's.

    Without rate limits: these tests ask for every repo at once (test_access.py tests the limits).
    """
    return create_app(filled.settings.redis_url, clock=lambda: filled.now,
                      access=AccessSettings.defaults(rate_limit=False))


def ranked(filled: Filled, repo_type: str, all_time: bool = False) -> list[tuple[str, int]]:
    """The reference's ranking of one type: (id, value), highest first, ties by id."""
    values = [(repo, data["downloadsAllTime"] if all_time else filled.last30(f"{repo_type}:{repo}"))
              for repo, data in filled.of_type(repo_type).items()]
    return sorted(values, key=lambda rv: (-rv[1], rv[0]))


def assert_top(actual: list[tuple[str, int]], expected: list[tuple[str, int]], limit: int) -> None:
    """Values must match exactly; ids too, except among repos tied at the cut-off.

    (Each shard's leaderboard is cut at ``limit`` before the merge, so which of several
    repos tied at the last place makes the list is not the reference's alphabetical pick.)
    """
    want = expected[:limit]
    assert [v for _, v in actual] == [v for _, v in want]
    cut = want[-1][1]
    assert [r for r, v in actual if v > cut] == [r for r, v in want if v > cut]
    tied = {r for r, v in expected if v == cut}
    assert {r for r, v in actual if v == cut} <= tied


def tokens_command(redis_url: str, *args: str) -> Result:
    """The real ``hubcounter tokens`` command, run here (in a thread: it runs an event loop of its own)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(CliRunner().invoke, tokens, [*args, "--redis-url", redis_url]).result()


def create_token(redis_url: str, *orgs: str, name: str, expires: str = "1d") -> str:
    """A new API token, made by ``hubcounter tokens create``: what it printed."""
    done = tokens_command(redis_url, "create", "--name", name, "--expires", expires,
                          *(arg for org in orgs for arg in ("--org", org)))
    assert done.exit_code == 0, done.output
    return done.stdout.strip()
