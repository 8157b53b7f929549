"""Which library each repo has: the in-memory map fed by the ``repo-metadata`` topic.

Every worker keeps the whole map, so it reads every partition of the compacted topic
itself (manual assignment, no consumer group) from the beginning, and signals ``ready``
once it has caught up; the hot path waits for that before counting anything.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from stream import kafka

log = logging.getLogger(__name__)


class _Metadata(msgspec.Struct):
    library_name: str | None = None


_decode = msgspec.json.Decoder(_Metadata).decode


class LibraryMap:
    """Repo key (``model:org/name``) to library name.

    Only repos with a library are stored: a repo without one, or deleted by a tombstone,
    uses the default rule, exactly like a repo never seen. Library names are interned, so
    a million repos cost about the keys alone.
    """

    def __init__(self) -> None:
        self._libraries: dict[str, str] = {}
        self.bad_records = 0
        # Called once per event: the dict's own bound ``get``, without a wrapper frame.
        self.library_of: Callable[[str], str | None] = self._libraries.get

    def __len__(self) -> int:
        return len(self._libraries)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one record of the metadata topic (a ``None`` value is a tombstone)."""
        if not key:
            self.bad_records += 1
            return
        repo_key = key.decode("utf-8", errors="replace")
        library = None
        if value is not None:
            try:
                library = _decode(value).library_name
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
                self.bad_records += 1
                log.warning("ignoring bad metadata record for %s: %s", repo_key, exc)
                return
        if library:
            self._libraries[repo_key] = sys.intern(library)
        else:
            self._libraries.pop(repo_key, None)


class MetadataFeed:
    """Keeps a :class:`LibraryMap` up to date from the metadata topic."""

    def __init__(self, connection: kafka.KafkaConnection, topic: str, libraries: LibraryMap,
                 on_record: Callable[[], None] | None = None):
        self.connection = connection
        self.topic = topic
        self.libraries = libraries
        self.ready = asyncio.Event()
        self._on_record = on_record
        self._consumer: AIOKafkaConsumer | None = None

    async def run(self) -> None:
        """Load the whole topic, set ``ready``, then follow new records until cancelled.

        A broker failure restarts the read from the beginning: replaying a compacted topic
        in order always converges on the same map. Being refused (ACLs) is no failure to
        wait out: it raises :class:`~stream.errors.KafkaAccessError`.
        """
        delay = 0.2
        while True:
            try:
                await self._follow()
            except KafkaError as exc:
                kafka.raise_if_refused(exc, self.connection)
                log.warning("metadata feed failed (%s); restarting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _follow(self) -> None:
        consumer = kafka.consumer(self.connection, enable_auto_commit=False, group_id=None,
                                  auto_offset_reset="earliest", isolation_level="read_committed")
        self._consumer = consumer
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            await self._catch_up(consumer, partitions)
            self.ready.set()
            log.info("metadata loaded: %d repos with a library", len(self.libraries))
            while True:
                self._apply(await consumer.getmany(timeout_ms=1000, max_records=10_000))
        finally:
            await consumer.stop()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        while True:
            found = consumer.partitions_for_topic(self.topic)
            if not found:
                await consumer._client.force_metadata_update()
                found = consumer.partitions_for_topic(self.topic)
            if found:
                return [TopicPartition(self.topic, p) for p in sorted(found)]
            # A topic this client may not see is "not found" too: ask whether it is denied.
            await kafka.preflight(self.connection, [self.topic])
            log.warning("metadata topic %s not found yet; waiting", self.topic)
            await asyncio.sleep(1.0)

    async def _catch_up(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        # Some brokers report a partition's end as the start of its last record batch, so
        # reaching the reported end is not enough: read on until a fetch comes back empty.
        ends = await consumer.end_offsets(partitions)
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=50_000)
            self._apply(batch)
            if not batch and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                return

    def _apply(self, batch: dict[TopicPartition, list]) -> None:
        for records in batch.values():
            for record in records:
                self.libraries.apply(record.key, record.value)
        if batch and self._on_record is not None:
            self._on_record()
