"""Fixtures: the embedded broker and Redis for the whole session, isolated per test.

No broker or Redis means an error that says what is missing, never a skip. Set
``KAFKA_BOOTSTRAP`` / ``REDIS_URL`` to use running services instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stream.devstack import Stack, embedded_stack, env_overrides, free_port
from stream.settings import Settings

_ids = itertools.count()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A Kafka-protocol broker and a durable Redis, started once per session."""
    kafka, redis_url = env_overrides()
    with embedded_stack(kafka_bootstrap=kafka, redis_url=redis_url,
                        workdir=tmp_path_factory.mktemp("stack")) as started:
        yield started


@pytest.fixture
def settings(stack: Stack, request: pytest.FixtureRequest) -> Settings:
    """Worker settings with topics and group of this test's own, on an empty Redis."""
    redis.Redis.from_url(stack.redis_url).flushall()
    prefix = f"t{next(_ids)}-{request.node.name[:40]}".replace("[", "-").replace("]", "")
    return Settings(
        kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url, group=f"{prefix}-group",
        events_topic=f"{prefix}-events", metadata_topic=f"{prefix}-metadata",
        dlq_topic=f"{prefix}-dlq", web_port=free_port(), shards=16, batch_size=5000,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
