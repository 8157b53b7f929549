"""Session fixtures of the integration tests that more than one module reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from stream.devstack import Stack
from stream.settings import Settings
from stream.simulate import Simulation
from tests.foreign import Written, write_foreign
from tests.support import create_topics, isolated_settings, read_topic, send


@dataclass
class ForeignTopic:
    """An events topic written by librdkafka and the Java producer (see :mod:`tests.foreign`)."""

    settings: Settings
    sim: Simulation
    now: datetime
    written: Written
    last_offsets: dict[int, int]  # per partition, the offset of the last committed record


@pytest.fixture(scope="session")
def foreign(stack: Stack) -> ForeignTopic:
    """The simulator's traffic through every codec, batching and transaction outcome of two
    other clients; written once per session (about 20 s)."""
    now = datetime.now(UTC)
    sim = Simulation(seed=31, repos=2000, now=now, bad_fraction=0.01)
    settings = isolated_settings(stack, "foreign")
    create_topics(settings, partitions=4)
    send(settings, settings.metadata_topic, sim.metadata_records())
    records = [(r.key, r.value) for r in sim.records(12_000)]
    # Another seed: records that would count if an aborted transaction leaked.
    aborted = [(r.key, r.value) for r in Simulation(seed=32, repos=2000, now=now).records(3_000)]
    written = write_foreign(settings.kafka, settings.events_topic, records, aborted)
    seen = read_topic(settings, settings.events_topic, len(written.committed), isolation_level="read_committed")
    last: dict[int, int] = {}
    for record in seen:
        last[record.partition] = max(last.get(record.partition, -1), record.offset)
    return ForeignTopic(settings, sim, now, written, last)
