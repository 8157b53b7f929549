"""Kafka helpers of the benchmarks: batched produce with known offsets, paced produce, metadata.

Records are sent in per-partition batches (``send_batch``), partitioned by key exactly as
the default partitioner would, so the benchmark knows the offset of every record it sent:
contenders and waits are keyed on what was produced, never on the broker's end offsets
(Tansu reports a partition's end as the first offset of its last batch).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from stream import kafka
from stream.kafka import KafkaConnection
from stream.metadata import LibraryMap, MetadataFeed

Record = tuple[bytes, bytes | None]
# Tansu holds a new group's join for half the session timeout (23 s at librdkafka's 45 s
# default); a short one keeps the waits between runs short. Every contender uses it, and
# joins are outside every measured window either way. The heartbeat must then be well
# inside it (the worker uses a quarter): librdkafka's and Faust's 3 s default would let
# one late heartbeat end the session.
SESSION_TIMEOUT_MS = 3000
HEARTBEAT_INTERVAL_MS = SESSION_TIMEOUT_MS // 4
_MAX_IN_FLIGHT = 64  # batches awaiting delivery before the sender waits for the oldest


@dataclass(slots=True)
class Produced:
    """Where records landed: per partition, the first offset and the record indices in order."""

    first_offset: dict[int, int] = field(default_factory=dict)
    order: dict[int, list[int]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(indices) for indices in self.order.values())

    def last_offsets(self) -> dict[int, int]:
        """The offset of the last record sent to each partition."""
        return {p: self.first_offset[p] + len(ix) - 1 for p, ix in self.order.items() if ix}


class _Batcher:
    """One open batch per partition; full batches are sent, deliveries are awaited in order."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, partitions: list[int]):
        self.producer, self.topic, self.partitions = producer, topic, partitions
        self.partitioner = DefaultPartitioner()  # murmur2 of the key, like every Kafka client
        self.open: dict[int, tuple[object, list[int]]] = {}
        self.in_flight: list[tuple[asyncio.Future, int, list[int]]] = []
        self.delivered: list[tuple[int, int, list[int]]] = []  # (partition, base offset, indices)

    async def add(self, index: int, key: bytes, value: bytes | None) -> None:
        partition = self.partitioner(key, self.partitions, self.partitions)
        entry = self.open.get(partition)
        if entry is None:
            entry = self.open[partition] = (self.producer.create_batch(), [])
        batch, indices = entry
        if batch.append(key=key, value=value, timestamp=None) is None:  # type: ignore[attr-defined]
            await self.send(partition)
            batch, indices = self.open[partition] = (self.producer.create_batch(), [])
            batch.append(key=key, value=value, timestamp=None)  # type: ignore[attr-defined]
        indices.append(index)

    async def send(self, partition: int) -> None:
        """Send the open batch of ``partition`` now."""
        batch, indices = self.open.pop(partition)
        future = await self.producer.send_batch(batch, self.topic, partition=partition)  # type: ignore[arg-type]
        self.in_flight.append((future, partition, indices))
        if len(self.in_flight) > _MAX_IN_FLIGHT:
            await self._settle(len(self.in_flight) // 2)

    async def _settle(self, n: int) -> None:
        done, self.in_flight = self.in_flight[:n], self.in_flight[n:]
        for future, partition, indices in done:
            meta = await future
            self.delivered.append((partition, meta.offset, indices))

    async def send_open(self) -> None:
        """Send every open batch without waiting for delivery."""
        for partition in list(self.open):
            await self.send(partition)

    async def flush(self) -> None:
        """Send every open batch and wait until everything is delivered."""
        await self.send_open()
        await self._settle(len(self.in_flight))


def _placement(delivered: list[tuple[int, int, list[int]]]) -> Produced:
    """Per-partition order from delivered batches; offsets must be contiguous to be trusted."""
    produced = Produced()
    for partition, base, indices in sorted(delivered, key=lambda d: (d[0], d[1])):
        order = produced.order.setdefault(partition, [])
        first = produced.first_offset.setdefault(partition, base)
        if base != first + len(order):
            raise RuntimeError(f"partition {partition}: batch at offset {base}, expected {first + len(order)}")
        order.extend(indices)
    return produced


def _producer(connection: KafkaConnection, linger_ms: int = 20) -> AIOKafkaProducer:
    # Not idempotent: the benchmark writes without failures to recover from, and Tansu
    # cannot serve idempotent producers.
    return kafka.producer(connection, linger_ms=linger_ms, max_batch_size=1 << 20, max_request_size=8 << 20,
                          request_timeout_ms=60_000, enable_idempotence=False)


async def produce(connection: KafkaConnection, topic: str, records: Sequence[Record]) -> Produced:
    """Send ``records`` in order; return where each one landed."""
    producer = _producer(connection)
    await producer.start()
    try:
        batcher = _Batcher(producer, topic, sorted(await producer.partitions_for(topic)))
        for index, (key, value) in enumerate(records):
            await batcher.add(index, key, value)
        await batcher.flush()
    finally:
        await producer.stop()
    return _placement(batcher.delivered)


async def produce_paced(connection: KafkaConnection, topic: str, records: Sequence[Record], rate: float,
                        duration: float,
                        should_stop: Callable[[], bool] = lambda: False, tick: float = 0.01) -> tuple[int, float]:
    """Send ``records`` (cycled) at ``rate`` per second for ``duration`` seconds or until ``should_stop()``.

    Every ``tick`` it sends what the schedule says is due, so the stream is steady at the
    scale of the worker's batches. Returns (records sent, seconds taken): a producer
    that cannot keep up shows as an achieved rate below ``rate``.
    """
    producer = _producer(connection, linger_ms=0)
    await producer.start()
    loop = asyncio.get_running_loop()
    sent = 0
    try:
        batcher = _Batcher(producer, topic, sorted(await producer.partitions_for(topic)))
        started = loop.time()
        while (elapsed := loop.time() - started) < duration and not should_stop():
            due = int(rate * elapsed)
            while sent < due:
                key, value = records[sent % len(records)]
                await batcher.add(sent, key, value)
                sent += 1
            await batcher.send_open()  # a paced stream delivers what is due now, not when a batch fills
            await asyncio.sleep(max(0.0, tick - (loop.time() - started - elapsed)))
        await batcher.flush()
        return sent, loop.time() - started
    finally:
        await producer.stop()


async def load_libraries(connection: KafkaConnection, topic: str, within_s: float = 300.0) -> LibraryMap:
    """The whole metadata topic as a :class:`LibraryMap`, read the way the worker reads it."""
    libraries = LibraryMap()
    feed = MetadataFeed(connection, topic, libraries)
    task = asyncio.create_task(feed.run())
    try:
        await asyncio.wait_for(feed.ready.wait(), within_s)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return libraries
