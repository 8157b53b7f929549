"""Creating the project's Kafka topics (for the demo, the tests and first deploys)."""

from __future__ import annotations

import contextlib
import logging

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream import deadletters, kafka
from stream.settings import Settings

log = logging.getLogger(__name__)


def topic_specs(settings: Settings, partitions: int = 8, replication: int = 1) -> list[NewTopic]:
    """The events, dead-letter and compacted metadata topics.

    With three or more replicas, a write needs two of them in sync (``min.insync.replicas``
    2): with the producers' ``acks=all``, an acknowledged record survives losing a broker.
    """
    durable = {"min.insync.replicas": "2"} if replication >= 3 else {}
    return [
        NewTopic(settings.events_topic, partitions, replication, topic_configs=durable),
        NewTopic(settings.dlq_topic, 1, replication, topic_configs={**deadletters.topic_configs(), **durable}),
        NewTopic(settings.metadata_topic, 2, replication, topic_configs={"cleanup.policy": "compact", **durable}),
    ]


async def ensure_topics(connection: kafka.KafkaConnection, topics: list[NewTopic]) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = kafka.admin(connection)
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
