"""Helpers the integration tests share: produce, wait for commits, read Redis back."""

from __future__ import annotations

import asyncio
import itertools
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis
from aiokafka import TopicPartition

from stream import kafka
from stream.devstack import ManagedProcess, Stack, free_port, wait_ready, worker_process
from stream.fields import DIMENSION_PREFIXES, UNCOUNTED_LIBRARY, UNCOUNTED_PATH
from stream.kafka import KafkaConnection
from stream.reference import run
from stream.reference.analytics import Analytics
from stream.settings import Settings
from stream.simulate import Simulation
from stream.store import keys
from stream.topics import ensure_topics, topic_specs

Record = tuple[bytes | None, bytes | None]
_ids = itertools.count()


def isolated_settings(stack: Stack, name: str, **overrides: object) -> Settings:
    """Settings on ``stack`` whose topics and group are named for one test (``name``), never shared."""
    prefix = f"t{next(_ids)}-{name[:40]}".replace("[", "-").replace("]", "")
    values: dict[str, object] = {
        "kafka_bootstrap": stack.kafka_bootstrap, "redis_url": stack.redis_url,
        "kafka_idempotence": stack.idempotence, "group": f"{prefix}-group",
        "events_topic": f"{prefix}-events", "metadata_topic": f"{prefix}-metadata",
        "dlq_topic": f"{prefix}-dlq", "web_port": free_port(), "shards": 16, "batch_size": 5000,
    }
    return Settings(**{**values, **overrides})


async def produce(connection: KafkaConnection, topic: str, records: Iterable[Record]) -> dict[int, int]:
    """Send (key, value) records; return the last offset written to each partition."""
    # Idempotent (but on Tansu): a send retried across a broker outage is still written once.
    producer = kafka.producer(connection, linger_ms=10, max_batch_size=1 << 20, max_request_size=4 << 20)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value) for key, value in records]
        last: dict[int, int] = {}
        for meta in await asyncio.gather(*futures):
            last[meta.partition] = max(last.get(meta.partition, -1), meta.offset)
        return last
    finally:
        await producer.stop()


def create_topics(settings: Settings, partitions: int = 4, replication: int = 1) -> None:
    asyncio.run(ensure_topics(settings.kafka, topic_specs(settings, partitions, replication)))


def send(settings: Settings, topic: str, records: Iterable[Record]) -> dict[int, int]:
    return asyncio.run(produce(settings.kafka, topic, list(records)))


async def committed(connection: KafkaConnection, group: str, topic: str, partitions: Iterable[int]) -> dict[int, int]:
    """The group's committed offsets (a consumer that never subscribes, so never joins)."""
    consumer = kafka.consumer(connection, group_id=group, enable_auto_commit=False)
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
        seen = asyncio.run(committed(settings.kafka, settings.group, settings.events_topic, last))
        if all(seen.get(p, -1) >= offset + 1 for p, offset in last.items()):
            return
        time.sleep(0.5)
    raise AssertionError(f"group {settings.group} committed {seen}, expected past {last}")


def end_offsets(settings: Settings, topic: str, partitions: int) -> dict[int, int]:
    """Each partition's end offset (Apache Kafka's are exact; Tansu reports them low)."""
    async def run() -> dict[int, int]:
        consumer = kafka.consumer(settings.kafka, group_id=None)
        await consumer.start()
        try:
            ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
            return {tp.partition: end for tp, end in ends.items()}
        finally:
            await consumer.stop()
    return asyncio.run(run())


def read_topic(settings: Settings, topic: str, expected: int | Callable[[list], bool], timeout: float = 30.0,
               **options: object) -> list:
    """Read a topic from the beginning until ``expected`` records came, or ``expected(records)``
    says enough (``options``: the consumer's)."""
    enough = expected if callable(expected) else lambda got: len(got) >= expected
    async def run() -> list:
        consumer = kafka.consumer(settings.kafka, topic, auto_offset_reset="earliest", group_id=None, **options)
        await consumer.start()
        out: list = []
        try:
            deadline = time.monotonic() + timeout
            while not enough(out) and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    out += records
        finally:
            await consumer.stop()
        return out
    return asyncio.run(run())


def redis_client(url: str) -> redis.Redis | redis.RedisCluster:
    """A synchronous client of the Redis at ``url``: a cluster client when it names a cluster node."""
    with redis.Redis.from_url(url) as probe:
        cluster = bool(int(probe.info("cluster").get("cluster_enabled", 0)))
    return redis.RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)


def snapshot(settings: Settings) -> dict[str, dict]:
    """Every counter in Redis (one Redis or a cluster), in the reference's shape:
    {"type:repo": {total, daily}}."""
    with redis_client(settings.redis_url) as client:
        boards = [(shard, repo_type) for shard in range(settings.shards) for repo_type in keys.COUNTED_TYPES]
        with client.pipeline(transaction=False) as pipe:
            for shard, repo_type in boards:
                pipe.zrange(keys.all_time(shard, repo_type), 0, -1)
            members = pipe.execute()
        repos = [(shard, f"{repo_type}:{m.decode()}")
                 for (shard, repo_type), found in zip(boards, members, strict=True) for m in found]
        with client.pipeline(transaction=False) as pipe:
            for shard, repo_key in repos:
                pipe.hgetall(keys.repo(shard, repo_key))
            hashes = pipe.execute()
    out: dict[str, dict] = {}
    for (_, repo_key), fields in zip(repos, hashes, strict=True):
        decoded = {k.decode(): int(v) for k, v in fields.items()}
        total = decoded.pop(keys.ALL_TIME_FIELD)
        out[repo_key] = {"downloadsAllTime": total, "daily": {day: n for day, n in sorted(decoded.items()) if n}}
    return out


@dataclass(frozen=True)
class Expected:
    """What the reference says a log must leave in Redis: the counts, and the analytics
    (every day's breakdowns, downloaders and uncounted requests, unfolded)."""

    counts: dict[str, dict]
    analytics: dict[str, dict[str, dict]]


def simulated(settings: Settings, count: int, seed: int, replication: int = 1) -> tuple[list, Expected]:
    """Create the topics, send the simulation's metadata; return its event records and what
    the reference expects of them."""
    now = datetime.now(UTC)
    sim = Simulation(seed=seed, repos=3000, now=now, bad_fraction=0.01)
    create_topics(settings, partitions=4, replication=replication)
    send(settings, settings.metadata_topic, sim.metadata_records())
    records = [(r.key, r.value) for r in sim.records(count)]
    collected = Analytics()
    counts = run([value for _, value in records], list(sim.metadata()), now, analytics=collected).counts
    return records, Expected(counts, collected.shape())


def assert_exact(settings: Settings, expected: Expected | dict) -> None:
    """Redis holds exactly the expected counts and, given an :class:`Expected`, its analytics."""
    counts = expected.counts if isinstance(expected, Expected) else expected
    actual = snapshot(settings)
    wrong = {k: (actual.get(k), counts.get(k)) for k in counts.keys() | actual.keys()
             if actual.get(k) != counts.get(k)}
    assert not wrong, f"{len(wrong)} repos differ, e.g. {list(wrong.items())[:3]}"
    if isinstance(expected, Expected):
        assert_analytics(settings, expected.analytics)


def hll_tolerance(exact: int) -> int:
    """How far a HyperLogLog's count of ``exact`` distinct items may be off: three standard
    errors of Redis's HLL (0.81%), and at least 2. One standard error would fail about one
    repo-day in three."""
    return max(2, math.ceil(3 * 0.0081 * exact))


def assert_analytics(settings: Settings, expected: dict[str, dict[str, dict]]) -> None:
    """Every repo-day's breakdowns and uncounted requests equal the reference's, and the
    library that judged them; its unique downloaders too, within the HyperLogLog's error;
    and Redis holds no other repo-day's."""
    prefixes = DIMENSION_PREFIXES
    wrong: list[tuple] = []
    with redis_client(settings.redis_url) as client:
        for repo_key, days in expected.items():
            shard = keys.shard_of(repo_key, settings.shards)
            with client.pipeline(transaction=False) as pipe:
                for day in days:
                    pipe.hgetall(keys.breakdown(shard, repo_key, day))
                    # One key per PFCOUNT: a cluster pipeline refuses pfcount() only because it may span slots.
                    pipe.execute_command("PFCOUNT", keys.downloaders(shard, repo_key, day))
                replies = iter(pipe.execute())
            for day, want in days.items():
                fields = {k.decode(): v.decode() for k, v in next(replies).items()}
                uniques = next(replies)
                got = {d: {f[len(p):]: int(n) for f, n in fields.items() if f.startswith(p)}
                       for d, p in {**prefixes, "uncounted": UNCOUNTED_PATH}.items()}
                library = fields.get(UNCOUNTED_LIBRARY) or None
                if (got != {d: want[d] for d in got} or (want["uncounted"] and library != want["library"])
                        or abs(uniques - want["uniques"]) > hll_tolerance(want["uniques"])):
                    wrong.append((repo_key, day, got, library, uniques, want))
        stored = sum(1 for _ in client.scan_iter(match="hc:{*}:bd:*"))
    assert not wrong, f"{len(wrong)} repo-days differ, e.g. {wrong[:2]}"
    want_keys = sum(1 for days in expected.values() for d in days.values()
                    if d["uncounted"] or any(d[x] for x in prefixes))
    assert stored == want_keys, f"Redis holds {stored} breakdown hashes, the reference {want_keys}"


def save_snapshot(port: int, data: Path) -> Path:
    """``BGSAVE`` the Redis on ``port`` (its files in ``data``), wait for it, and keep a copy
    of the file: that Redis as it is at this moment."""
    with redis.Redis(port=port) as client:
        before = client.lastsave()
        client.bgsave()
        deadline = time.monotonic() + 30
        while client.lastsave() == before or client.info("persistence")["rdb_bgsave_in_progress"]:
            assert time.monotonic() < deadline, "BGSAVE did not finish"
            time.sleep(0.05)
        assert client.info("persistence")["rdb_last_bgsave_status"] == "ok"
    kept = data / "older.rdb"
    shutil.copy(data / "dump.rdb", kept)
    return kept


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
    a test hit a worker that is busy, not idle. ``join()`` returns the last offsets.

    With ``cycle`` it starts over at the end of ``records`` until :meth:`stop`; what it
    sent, in order, is :meth:`sent_records` (a record sent twice is two events).
    """

    def __init__(self, settings: Settings, records: list[Record], rate: float, cycle: bool = False):
        self.settings = settings
        self.records = records
        self.rate = rate
        self.cycle = cycle
        self.sent = 0
        self.last: dict[int, int] = {}
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feeder", daemon=True)

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Finish the chunk being sent, then stop."""
        self._stop.set()

    def join(self, timeout: float = 300.0) -> dict[int, int]:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError("the feeder did not finish in time")
        if self._error is not None:
            raise self._error
        return self.last

    def sent_records(self) -> list[Record]:
        return [self.records[i % len(self.records)] for i in range(self.sent)]

    def _run(self) -> None:
        try:
            asyncio.run(self._produce())
        except BaseException as exc:  # surfaced by join()
            self._error = exc

    async def _produce(self) -> None:
        producer = kafka.producer(self.settings.kafka, linger_ms=10, max_batch_size=1 << 20,
                                  max_request_size=4 << 20)
        await producer.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        chunk = max(1, int(self.rate / 20))
        total = len(self.records)
        try:
            while not self._stop.is_set() and (self.cycle or self.sent < total):
                end = self.sent + chunk if self.cycle else min(self.sent + chunk, total)
                futures = [await producer.send(self.settings.events_topic, key=k, value=v)
                           for k, v in (self.records[i % total] for i in range(self.sent, end))]
                for meta in await asyncio.gather(*futures):
                    self.last[meta.partition] = max(self.last.get(meta.partition, -1), meta.offset)
                self.sent = end
                ahead = self.sent / self.rate - (loop.time() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        finally:
            await producer.stop()


def committed_total(settings: Settings, partitions: int = 4) -> int:
    """How many events the group has committed over all partitions of its topic."""
    offsets = asyncio.run(committed(settings.kafka, settings.group, settings.events_topic,
                                    range(partitions)))
    return sum(max(o, 0) for o in offsets.values())


class ProgressWatch:
    """Samples, every ``interval`` seconds from a background thread, how far Redis holds
    each partition (the shards' position markers), to find how long each partition stood
    still: a leader change's cost in counting delay."""

    def __init__(self, settings: Settings, interval: float = 0.05):
        self.settings, self.interval = settings, interval
        self.advances: dict[int, list[float]] = {}  # partition -> monotonic times its offset moved on
        self._last: dict[int, int] = {}
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._watch, name="progress-watch", daemon=True)

    def start(self) -> ProgressWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def longest_stall(self, partitions: Iterable[int], after: float) -> float:
        """The longest time any of ``partitions`` went without progress, from ``after`` on
        (between two advances: a stream that simply ended is not a stall)."""
        if self._failure is not None:
            raise AssertionError(f"the progress watch failed: {self._failure!r}") from self._failure
        assert self.advances, "the progress watch saw no marker move: it reads the wrong keys"
        worst = 0.0
        for partition in partitions:
            times = [t for t in self.advances.get(partition, []) if t >= after]
            before = [t for t in self.advances.get(partition, []) if t < after]
            if before:
                times.insert(0, before[-1])
            worst = max([worst, *(b - a for a, b in itertools.pairwise(times))])
        return worst

    def _watch(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # handed to the test by longest_stall
            self._failure = exc

    def _run(self) -> None:
        client = redis.Redis.from_url(self.settings.redis_url, socket_timeout=2)
        prefix = f"{self.settings.events_topic}:"
        while not self._stop.wait(self.interval):
            try:
                pipe = client.pipeline(transaction=False)
                for shard in range(self.settings.shards):
                    pipe.hgetall(keys.position(shard))
                markers = pipe.execute()
            except redis.RedisError:
                continue
            now = time.monotonic()
            latest: dict[int, int] = {}
            for fields in markers:
                for field, offset in fields.items():
                    name = field.decode()
                    if name.startswith(prefix):
                        partition = int(name[len(prefix):])
                        latest[partition] = max(latest.get(partition, -1), int(offset))
            for partition, offset in latest.items():
                if offset > self._last.get(partition, -1):
                    self._last[partition] = offset
                    self.advances.setdefault(partition, []).append(now)
