"""Creating the project's Kafka topics (for the demo, the tests and first deploys)."""

from __future__ import annotations

import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream import deadletters
from stream.settings import Settings

log = logging.getLogger(__name__)


def topic_specs(settings: Settings, partitions: int = 8) -> list[NewTopic]:
    """The events, dead-letter and compacted metadata topics."""
    return [
        NewTopic(settings.events_topic, partitions, 1),
        NewTopic(settings.dlq_topic, 1, 1, topic_configs=deadletters.topic_configs()),
        NewTopic(settings.metadata_topic, 2, 1, topic_configs={"cleanup.policy": "compact"}),
    ]


async def ensure_topics(bootstrap: str, topics: list[NewTopic]) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created concurrently elsewhere
                await admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
    finally:
        await admin.close()
