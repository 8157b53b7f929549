"""Helpers the integration tests share: produce, wait for commits, read Redis back."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.devstack import ManagedProcess, wait_ready, worker_process
from stream.settings import Settings
from stream.store import keys
from stream.topics import ensure_topics, topic_specs

Record = tuple[bytes | None, bytes | None]


async def produce(bootstrap: str, topic: str, records: Iterable[Record]) -> dict[int, int]:
    """Send (key, value) records; return the last offset written to each partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, max_batch_size=1 << 20,
                                max_request_size=4 << 20)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value) for key, value in records]
        last: dict[int, int] = {}
        for meta in await asyncio.gather(*futures):
            last[meta.partition] = max(last.get(meta.partition, -1), meta.offset)
        return last
    finally:
        await producer.stop()


def create_topics(settings: Settings, partitions: int = 4) -> None:
    asyncio.run(ensure_topics(settings.kafka_bootstrap, topic_specs(settings, partitions)))


def send(settings: Settings, topic: str, records: Iterable[Record]) -> dict[int, int]:
    return asyncio.run(produce(settings.kafka_bootstrap, topic, list(records)))


async def committed(bootstrap: str, group: str, topic: str, partitions: Iterable[int]) -> dict[int, int]:
    """The group's committed offsets (a consumer that never subscribes, so never joins)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: (await consumer.committed(TopicPartition(topic, p))) or -1 for p in partitions}
    finally:
        await consumer.stop()


def wait_committed(settings: Settings, last: dict[int, int], timeout: float = 120.0) -> None:
    """Block until the group has committed past every record we sent (not end offsets:
    the embedded broker reports those low)."""
    deadline = time.monotonic() + timeout
    seen: dict[int, int] = {}
    while time.monotonic() < deadline:
        seen = asyncio.run(committed(settings.kafka_bootstrap, settings.group, settings.events_topic, last))
        if all(seen.get(p, -1) >= offset + 1 for p, offset in last.items()):
            return
        time.sleep(0.5)
    raise AssertionError(f"group {settings.group} committed {seen}, expected past {last}")


def read_topic(settings: Settings, topic: str, expected: int, timeout: float = 30.0) -> list:
    """Read ``expected`` records of a topic from the beginning."""
    async def run() -> list:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        out: list = []
        try:
            deadline = time.monotonic() + timeout
            while len(out) < expected and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    out += records
        finally:
            await consumer.stop()
        return out
    return asyncio.run(run())


def snapshot(settings: Settings) -> dict[str, dict]:
    """Every counter in Redis, in the reference's shape: {"type:repo": {total, daily}}."""
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    out: dict[str, dict] = {}
    for shard in range(settings.shards):
        for repo_type in keys.COUNTED_TYPES:
            for repo in client.zrange(keys.all_time(shard, repo_type), 0, -1):
                fields = client.hgetall(keys.repo(shard, f"{repo_type}:{repo}"))
                total = int(fields.pop(keys.ALL_TIME_FIELD))
                daily = {day: int(n) for day, n in sorted(fields.items()) if int(n)}
                out[f"{repo_type}:{repo}"] = {"downloadsAllTime": total, "daily": daily}
    return out


def start_worker(settings: Settings, workdir: Path, name: str = "worker",
                 port: int | None = None) -> ManagedProcess:
    """Start a worker process and wait until it is ready to count."""
    if port is not None:
        settings = settings.model_copy(update={"web_port": port})
    proc = worker_process(settings, workdir, name)
    proc.start()
    try:
        wait_ready(settings.web_port, proc=proc)
    except BaseException:
        proc.stop()
        raise
    return proc


class Feeder:
    """Produces records at a steady rate from a background thread, so that disruptions in
    a test hit a worker that is busy, not idle. ``join()`` returns the last offsets."""

    def __init__(self, settings: Settings, records: list[Record], rate: float):
        self.settings = settings
        self.records = records
        self.rate = rate
        self.sent = 0
        self.last: dict[int, int] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="feeder", daemon=True)

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def join(self, timeout: float = 300.0) -> dict[int, int]:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError("the feeder did not finish in time")
        if self._error is not None:
            raise self._error
        return self.last

    def _run(self) -> None:
        try:
            asyncio.run(self._produce())
        except BaseException as exc:  # surfaced by join()
            self._error = exc

    async def _produce(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, linger_ms=10,
                                    max_batch_size=1 << 20, max_request_size=4 << 20)
        await producer.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        chunk = max(1, int(self.rate / 20))
        try:
            for begin in range(0, len(self.records), chunk):
                futures = [await producer.send(self.settings.events_topic, key=k, value=v)
                           for k, v in self.records[begin:begin + chunk]]
                for meta in await asyncio.gather(*futures):
                    self.last[meta.partition] = max(self.last.get(meta.partition, -1), meta.offset)
                self.sent = begin + len(futures)
                ahead = self.sent / self.rate - (loop.time() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        finally:
            await producer.stop()


def committed_total(settings: Settings, partitions: int = 4) -> int:
    """How many events the group has committed over all partitions of its topic."""
    offsets = asyncio.run(committed(settings.kafka_bootstrap, settings.group, settings.events_topic,
                                    range(partitions)))
    return sum(max(o, 0) for o in offsets.values())
