"""Fixtures: the broker and Redis for the whole session, isolated per test.

``HUBCOUNTER_TEST_BROKER`` chooses the broker: ``kafka`` (the default: Apache Kafka from
``make kafka``, one KRaft node), ``tansu`` (the demo's in-memory broker; ``make test``
runs the ``smoke`` tests on it a second time) or ``external:HOST:PORT`` (any running
cluster; ``KAFKA_BOOTSTRAP`` means the same). ``REDIS_URL`` replaces the embedded Redis.
No broker or Redis means an error that says what is missing, never a skip; a test that
only one broker can run is marked ``kafka_only`` and reported as skipped, with the reason,
on the others.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stream.devstack import Stack, embedded_stack, env_overrides
from stream.settings import Settings
from tests.support import isolated_settings

KAFKA_ONLY_REASON = (
    "needs the Apache Kafka broker the tests start (HUBCOUNTER_TEST_BROKER=kafka): Tansu keeps its log "
    "in memory, so a restart loses it, and has no DeleteRecords; an external broker is not ours to stop"
)


def chosen_broker() -> tuple[str, str | None]:
    """The session's broker kind and, for an external one, its bootstrap servers."""
    choice = os.environ.get("HUBCOUNTER_TEST_BROKER", "").strip()
    bootstrap, _ = env_overrides()
    if choice.startswith("external:"):
        return "external", choice.removeprefix("external:")
    if bootstrap and not choice:
        return "external", bootstrap
    choice = choice or "kafka"
    if choice not in ("kafka", "tansu"):
        raise pytest.UsageError(f"HUBCOUNTER_TEST_BROKER must be kafka, tansu or external:HOST:PORT, got {choice!r}")
    return choice, None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if chosen_broker()[0] == "kafka":
        return
    skip = pytest.mark.skip(reason=KAFKA_ONLY_REASON)
    for item in items:
        if "kafka_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A Kafka-protocol broker and a durable Redis, started once per session."""
    kind, bootstrap = chosen_broker()
    _, redis_url = env_overrides()
    with embedded_stack(kafka_bootstrap=bootstrap, redis_url=redis_url, broker="tansu" if kind == "tansu" else "kafka",
                        workdir=tmp_path_factory.mktemp("stack")) as started:
        yield started


@pytest.fixture
def settings(stack: Stack, request: pytest.FixtureRequest) -> Settings:
    """Worker settings with topics and group of this test's own, on an empty Redis."""
    redis.Redis.from_url(stack.redis_url).flushall()
    return isolated_settings(stack, request.node.name)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
