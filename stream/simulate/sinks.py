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


async def produce_to_kafka(sim: Simulation, bootstrap: str, topic: str = "cdn-requests",
                           metadata_topic: str = "repo-metadata", count: int | None = None,
                           duration: float | None = None, rate: float | None = None) -> int:
    """Send the metadata records, then events, to Kafka; returns the number of events.

    Stops after ``count`` events or ``duration`` seconds, whichever first (at least one
    must be given); ``rate`` caps events per second (default: as fast as possible). The
    producer batches (linger) and this function only waits on delivery futures now and
    then, so the event loop keeps filling batches.
    """
    from aiokafka import AIOKafkaProducer  # imported here: file output needs no Kafka client

    if count is None and duration is None:
        raise ValueError("give count or duration")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20,
                                max_batch_size=512 * 1024, request_timeout_ms=30_000)
    await producer.start()
    try:
        pending = [await producer.send(metadata_topic, value=value, key=key)
                   for key, value in sim.metadata_records()]
        # metadata first, so a worker starting now knows each repo's library
        await asyncio.gather(*pending)
        return await _send_events(producer, sim, topic, count, duration, rate)
    finally:
        await producer.stop()


async def _send_events(producer: AIOKafkaProducer, sim: Simulation, topic: str,
                       count: int | None, duration: float | None, rate: float | None) -> int:
    loop = asyncio.get_running_loop()
    started = loop.time()
    expected = count or (int(rate * duration) if rate and duration else None)
    pending: list[asyncio.Future[object]] = []
    sent = 0
    for rec in sim.records(count, expected=expected):
        pending.append(await producer.send(topic, value=rec.value, key=rec.key))
        sent += 1
        if len(pending) >= CHUNK:
            # surface delivery errors early and keep the list short
            await asyncio.gather(*pending[: CHUNK // 2])
            del pending[: CHUNK // 2]
        if rate is not None and (sent % 100 == 0 or rate < 1000):
            ahead = sent / rate - (loop.time() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        if duration is not None and sent % 100 == 0 and loop.time() - started >= duration:
            break
    await asyncio.gather(*pending)
    return sent
