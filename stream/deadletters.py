"""The dead-letter topic: what the worker sends there for an event it rejects, and how.

A dead letter says why the event was rejected and where it came from, and carries the
original bytes up to a bound, always with their length and SHA-256. The bound matters: an
event near the broker's size limit, embedded whole and base64-encoded (4/3 its size),
would make a dead letter over that limit, which could never be sent, and the worker
would be stuck on it for good.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import zlib
from dataclasses import dataclass
from typing import Final

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition

from stream.errors import EventError
from stream.records import Record

DETAIL_MAX_CHARS: Final = 512
# The producer puts a batch's dead letters for one partition into one record batch of at
# most this size (a second batch would wait for the first's delivery, one round trip
# each), and the topic accepts record batches of TOPIC_MAX_MESSAGE_BYTES: room for it.
PRODUCER_BATCH_BYTES: Final = 512 * 1024
TOPIC_MAX_MESSAGE_BYTES: Final = 1024 * 1024
# The most original bytes a dead letter may keep: its base64 plus the other fields must
# stay well inside one record batch.
KEEP_BYTES_LIMIT: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected record: where it was read and why it was rejected."""

    source: TopicPartition
    record: Record
    error: EventError


def encode(letter: DeadLetter, keep_bytes: int) -> bytes:
    """The dead-letter value: JSON, its size bounded by ``keep_bytes`` whatever the original's."""
    original = letter.record.value or b""
    detail = letter.error.detail
    if len(detail) > DETAIL_MAX_CHARS:
        detail = detail[:DETAIL_MAX_CHARS] + "..."
    return orjson.dumps({
        "reason": letter.error.reason, "detail": detail,
        "topic": letter.source.topic, "partition": letter.source.partition, "offset": letter.record.offset,
        "original_bytes": len(original),
        "original_sha256": hashlib.sha256(original).hexdigest(),
        "original_truncated": len(original) > keep_bytes,
        "original_b64": base64.b64encode(original[:keep_bytes]).decode(),
    })


def producer_options() -> dict[str, object]:
    """The dead-letter producer's settings (to add to the connection settings).

    Every acknowledged dead letter is on all in-sync replicas and written once even when a
    send is retried; ``linger_ms=0`` because the worker sends a batch's letters at once.
    """
    return {"acks": "all", "enable_idempotence": True, "linger_ms": 0,
            "max_batch_size": PRODUCER_BATCH_BYTES, "max_request_size": TOPIC_MAX_MESSAGE_BYTES}


def topic_configs() -> dict[str, str]:
    """The dead-letter topic's settings: record batches as large as the producer makes."""
    return {"max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES)}


class DeadLetterSink:
    """Sends dead letters to one topic, a batch's letters as one record batch per partition."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, keep_bytes: int):
        self.producer = producer
        self.topic = topic
        self.keep_bytes = keep_bytes

    async def send(self, letters: list[DeadLetter]) -> None:
        """Send ``letters`` and wait until the broker has them all (raises KafkaError if not).

        A letter keeps its record's key, so the letters of one key stay in order; the
        partition is chosen by the key's CRC-32, like the simulator's keys.
        """
        if not letters:
            return
        producer = self.producer
        partitions = sorted(await producer.partitions_for(self.topic))
        batches: dict[int, list] = {}
        for letter in letters:
            key = letter.record.key
            partition = partitions[zlib.crc32(key or b"") % len(partitions)]
            builders = batches.get(partition)
            if builders is None:
                builders = batches[partition] = [producer.create_batch()]
            value = encode(letter, self.keep_bytes)
            if builders[-1].append(key=key, value=value, timestamp=None) is None:  # full
                builders.append(producer.create_batch())
                builders[-1].append(key=key, value=value, timestamp=None)
        sent = [await producer.send_batch(built, self.topic, partition=partition)
                for partition, chain in batches.items() for built in chain]
        await asyncio.gather(*sent)
