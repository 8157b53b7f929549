"""Where simulated records go: NDJSON files (gzip when the name ends in .gz) or Kafka."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from stream.simulate.traffic import Simulation

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer
    from aiokafka.producer.message_accumulator import BatchBuilder

    from stream.kafka import KafkaConnection

CHUNK = 10_000  # lines per write: few syscalls, bounded memory


def open_out(path: str | Path) -> IO[bytes]:
    """Open ``path`` for binary writing; gzip (fast level) when it ends in ``.gz``."""
    if str(path).endswith(".gz"):
        # level 1: the files are test fixtures, compressing them hard costs more than it saves
        return gzip.open(path, "wb", compresslevel=1)
    return open(path, "wb")  # the caller closes it


def write_lines(lines: Iterable[bytes], path: str | Path, duration: float | None = None) -> int:
    """Write ``lines`` as NDJSON to ``path``; stop early after ``duration`` wall seconds."""
    deadline = None if duration is None else time.monotonic() + duration
    written = 0
    chunk: list[bytes] = []
    with open_out(path) as out:
        for line in lines:
            chunk.append(line)
            if len(chunk) == CHUNK:
                out.write(b"\n".join(chunk) + b"\n")
                written += len(chunk)
                chunk.clear()
                if deadline is not None and time.monotonic() >= deadline:
                    break
        if chunk:
            out.write(b"\n".join(chunk) + b"\n")
            written += len(chunk)
    return written


def write_ndjson(sim: Simulation, path: str | Path, count: int | None = None,
                 duration: float | None = None) -> int:
    """Write ``count`` events of ``sim`` to ``path``; returns the number written."""
    if count is None and duration is None:
        raise ValueError("give count or duration, or the file never ends")
    return write_lines(sim.lines(count), path, duration)


def write_metadata(sim: Simulation, path: str | Path) -> int:
    """Write the metadata records of ``sim`` as NDJSON to ``path``."""
    return write_lines(sim.metadata_lines(), path)


async def produce_to_kafka(sim: Simulation, connection: KafkaConnection, topic: str = "cdn-requests",
                           metadata_topic: str | None = "repo-metadata", count: int | None = None,
                           duration: float | None = None, rate: float | None = None) -> int:
    """Send the metadata records, then events, to Kafka; returns the number of events.

    Stops after ``count`` events or ``duration`` seconds, whichever first (at least one
    must be given); ``rate`` caps events per second (default: as fast as possible).
    Events go out in per-partition batches (``send_batch``), keyed ``model:org/name`` and
    partitioned exactly as the default partitioner would. ``metadata_topic`` None sends
    no metadata (it was sent before: :func:`produce_metadata`).
    """
    if count is None and duration is None:
        raise ValueError("give count or duration")
    producer = await _producer(connection)
    try:
        if metadata_topic is not None:
            await _send_metadata(producer, sim, metadata_topic)
        batches = _Batches(producer, topic, sorted(await producer.partitions_for(topic)))
        return await _send_events(batches, sim, count, duration, rate)
    finally:
        await producer.stop()


async def produce_metadata(sim: Simulation, connection: KafkaConnection, topic: str = "repo-metadata") -> int:
    """Send the repo metadata records alone; returns how many. A worker started after
    this knows every repo's library before it counts the first event."""
    producer = await _producer(connection)
    try:
        return await _send_metadata(producer, sim, topic)
    finally:
        await producer.stop()


async def _producer(connection: KafkaConnection) -> AIOKafkaProducer:
    from stream import kafka  # imported here: file output needs no Kafka client

    producer = kafka.producer(connection, linger_ms=20, max_batch_size=512 * 1024, request_timeout_ms=30_000)
    await producer.start()
    return producer


async def _send_metadata(producer: AIOKafkaProducer, sim: Simulation, topic: str) -> int:
    pending = [await producer.send(topic, value=value, key=key) for key, value in sim.metadata_records()]
    await asyncio.gather(*pending)  # all delivered before any event goes out
    return len(pending)


class _Batches:
    """One open batch per partition; a full batch is sent and a new one opened."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, partitions: list[int]):
        from aiokafka.partitioner import DefaultPartitioner

        self.producer, self.topic, self.partitions = producer, topic, partitions
        self.partitioner = DefaultPartitioner()  # murmur2 of the key, like every client
        self.open: dict[int, BatchBuilder] = {}
        self.pending: list[asyncio.Future[object]] = []

    async def add(self, key: bytes, value: bytes) -> None:
        partition = self.partitioner(key, self.partitions, self.partitions)
        batch = self.open.get(partition)
        if batch is None:
            batch = self.open[partition] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:  # full
            await self._send(partition, batch)
            batch = self.open[partition] = self.producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)

    async def _send(self, partition: int, batch: BatchBuilder) -> None:
        self.pending.append(await self.producer.send_batch(batch, self.topic,
                                                           partition=partition))
        if len(self.pending) > 64:  # surface delivery errors early, keep the list short
            await asyncio.gather(*self.pending[:32])
            del self.pending[:32]

    async def flush(self) -> None:
        """Send every open batch and wait until all are delivered."""
        for partition, batch in self.open.items():
            await self._send(partition, batch)
        self.open.clear()
        await asyncio.gather(*self.pending)
        self.pending.clear()


async def _send_events(batches: _Batches, sim: Simulation, count: int | None,
                       duration: float | None, rate: float | None) -> int:
    loop = asyncio.get_running_loop()
    started = loop.time()
    expected = count or (int(rate * duration) if rate and duration else None)
    sent = 0
    for rec in sim.records(count, expected=expected):
        await batches.add(rec.key, rec.value)
        sent += 1
        if rate is not None and (sent % 100 == 0 or rate < 1000):
            ahead = sent / rate - (loop.time() - started)
            if ahead > 0:
                await batches.flush()  # a paced stream delivers what it has before it waits
                await asyncio.sleep(max(0.0, sent / rate - (loop.time() - started)))
        if duration is not None and sent % 100 == 0 and loop.time() - started >= duration:
            break
    await batches.flush()
    return sent
