"""``python -m bench soak --minutes M``: workers under chaos for M minutes, then a verdict.

Several workers count simulated live traffic while a chaos loop SIGKILLs and SIGTERMs
them, kills and restarts Redis and pauses the broker, at random. Then the traffic stops,
every service comes back, and the verdict compares what Redis holds with the reference
over exactly what was produced, and the dead-letter topic with the records the reference
rejects: nothing lost, nothing doubled, every bad record dead-lettered once at least.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import redis

from bench.redisview import worker_counts
from stream import kafka
from stream.devstack import ManagedProcess, Stack, embedded_stack, free_port, wait_ready, worker_process
from stream.reference import read_lines
from stream.reference import run as reference_run
from stream.settings import Settings
from stream.simulate import Simulation
from stream.topics import ensure_topics, topic_specs

BROKER = "tansu"  # the embedded default (the one `make demo` runs)
PARTITIONS = 8
SESSION_TIMEOUT_MS = 6000  # the shortest a broker accepts by default: a killed worker's partitions move fast


@dataclass
class Tally:
    """What the chaos loop did and what the workers went through."""

    sigkills: int = 0
    sigterms: int = 0
    sigterm_clean_exits: int = 0
    redis_restarts: int = 0
    broker_pauses: int = 0
    worker_starts: int = 0
    failures: list[str] = field(default_factory=list)


class Traffic(threading.Thread):
    """Produces live simulated traffic at a steady rate until stopped; keeps a copy of it."""

    def __init__(self, settings: Settings, sim: Simulation, rate: float, log_path: Path):
        super().__init__(name="traffic", daemon=True)
        self.settings, self.sim, self.rate, self.log_path = settings, sim, rate, log_path
        self.sent = 0
        self.last: dict[int, int] = {}
        self.labelled_bad: set[tuple[int, int]] = set()  # (partition, offset) the simulator made bad
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(120)
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        try:
            asyncio.run(self._produce())
        except BaseException as exc:
            self.error = exc

    async def _produce(self) -> None:
        producer = kafka.producer(self.settings.kafka, linger_ms=10, max_batch_size=1 << 20,
                                  request_timeout_ms=60_000)
        await producer.start()
        records = self.sim.records()
        chunk = max(1, int(self.rate / 10))
        started = time.monotonic()
        try:
            with gzip.open(self.log_path, "wb", compresslevel=1) as log:
                while not self._stop_event.is_set():
                    batch = [next(records) for _ in range(chunk)]
                    futures = [await producer.send(self.settings.events_topic, key=r.key, value=r.value)
                               for r in batch]
                    for record, meta in zip(batch, await asyncio.gather(*futures), strict=True):
                        log.write(record.value + b"\n")
                        self.last[meta.partition] = max(self.last.get(meta.partition, -1), meta.offset)
                        if record.bad is not None:
                            self.labelled_bad.add((meta.partition, meta.offset))
                    self.sent += len(batch)
                    ahead = self.sent / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        finally:
            await producer.stop()


class Soak:
    """The stack, the workers and the chaos loop of one soak run."""

    def __init__(self, stack: Stack, workers: int, rate: float, seed: int, log: Callable[[str], None]):
        self.stack, self.rate, self.log = stack, rate, log
        self.rng = random.Random(seed)
        self.now = datetime.now(UTC)
        self.settings = Settings(
            kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url, kafka_idempotence=stack.idempotence,
            group="soak",
            events_topic="soak-events", metadata_topic="soak-metadata", dlq_topic="soak-dlq",
            session_timeout_ms=SESSION_TIMEOUT_MS, web_port=free_port())
        self.sim = Simulation(seed=seed, repos=20_000, now=self.now, live_rate=rate, bad_fraction=0.01)
        self.workers = [self._worker(f"worker{i}") for i in range(workers)]
        self.tally = Tally()

    def _worker(self, name: str) -> ManagedProcess:
        settings = self.settings.model_copy(update={"web_port": free_port()})
        return worker_process(settings, self.stack.workdir, name)

    def prepare(self) -> None:
        asyncio.run(ensure_topics(self.settings.kafka, topic_specs(self.settings, PARTITIONS)))
        asyncio.run(_send(self.settings, self.settings.metadata_topic, list(self.sim.metadata_records())))
        for worker in self.workers:
            self._start(worker)

    def _start(self, worker: ManagedProcess) -> None:
        worker.start()
        self.tally.worker_starts += 1

    def chaos(self, seconds: float) -> None:
        """Disrupt something every 1 to 3 s for ``seconds``; bring dead workers back."""
        deadline = time.monotonic() + seconds
        actions = [(self._sigkill, 0.55), (self._sigterm, 0.25), (self._restart_redis, 0.1),
                   (self._pause_broker, 0.1)]
        while time.monotonic() < deadline:
            time.sleep(self.rng.uniform(1.0, 3.0))
            self._revive()
            action = self.rng.choices([a for a, _ in actions], [w for _, w in actions])[0]
            action()

    def _revive(self) -> None:
        for worker in self.workers:
            if not worker.running:
                self._start(worker)

    def _victim(self) -> ManagedProcess | None:
        running = [w for w in self.workers if w.running]
        return self.rng.choice(running) if running else None

    def _sigkill(self) -> None:
        victim = self._victim()
        if victim is not None:
            victim.kill()
            self.tally.sigkills += 1

    def _sigterm(self) -> None:
        victim = self._victim()
        if victim is None or victim.proc is None:
            return
        victim.proc.send_signal(signal.SIGTERM)
        self.tally.sigterms += 1
        try:
            code = victim.proc.wait(10)
        except Exception:
            self.tally.failures.append(f"{victim.name} did not exit within 10 s of SIGTERM")
            victim.kill()
            return
        if code == 0:
            self.tally.sigterm_clean_exits += 1
        else:
            self.tally.failures.append(f"{victim.name} exited {code} after SIGTERM")

    def _restart_redis(self) -> None:
        assert self.stack.redis is not None
        self.stack.redis.kill()
        time.sleep(self.rng.uniform(0.5, 3.0))
        self.stack.redis.start()
        self.tally.redis_restarts += 1

    def _pause_broker(self) -> None:
        assert self.stack.kafka is not None
        self.stack.kafka.signal(signal.SIGSTOP)
        time.sleep(self.rng.uniform(1.0, 5.0))
        self.stack.kafka.signal(signal.SIGCONT)
        self.tally.broker_pauses += 1

    def settle(self, last: dict[int, int], timeout: float = 600.0) -> float:
        """Wait until every worker is ready and the group committed past ``last``; the seconds it took."""
        started = time.monotonic()
        self._revive()
        for worker in self.workers:
            wait_ready(worker.port, timeout=120, proc=worker)
        deadline = started + timeout
        while True:
            seen = asyncio.run(_committed(self.settings, list(last)))
            if all(seen.get(p, -1) > offset for p, offset in last.items()):
                return time.monotonic() - started
            if time.monotonic() > deadline:
                raise RuntimeError(f"the group committed {seen}, not past {last}, {timeout:.0f} s after the chaos")
            time.sleep(1.0)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


async def _send(settings: Settings, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = kafka.producer(settings.kafka, linger_ms=10)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, key=k, value=v) for k, v in records])
    finally:
        await producer.stop()


async def _committed(settings: Settings, partitions: list[int]) -> dict[int, int]:
    from aiokafka import TopicPartition

    consumer = kafka.consumer(settings.kafka, group_id=settings.group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: (await consumer.committed(TopicPartition(settings.events_topic, p))) or -1 for p in partitions}
    finally:
        await consumer.stop()


async def _dead_lettered(settings: Settings) -> tuple[set[tuple[int, int]], int, Counter[str]]:
    """The (partition, offset) of every event in the dead-letter topic, the letters, their reasons."""
    consumer = kafka.consumer(settings.kafka, settings.dlq_topic, group_id=None, auto_offset_reset="earliest",
                              enable_auto_commit=False)
    await consumer.start()
    found: set[tuple[int, int]] = set()
    letters = 0
    reasons: Counter[str] = Counter()
    try:
        while batch := await consumer.getmany(timeout_ms=3000, max_records=50_000):
            for records in batch.values():
                for record in records:
                    letter = orjson.loads(record.value)
                    found.add((letter["partition"], letter["offset"]))
                    reasons[letter["reason"]] += 1
                    letters += 1
    finally:
        await consumer.stop()
    return found, letters, reasons


def run(minutes: float, workers: int = 3, rate: float = 3000.0, seed: int = 9,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the soak and return its figures and verdict."""
    started = time.monotonic()
    with embedded_stack(broker=BROKER) as stack:
        soak = Soak(stack, workers, rate, seed, log)
        traffic = Traffic(soak.settings, soak.sim, rate, stack.workdir / "traffic.ndjson.gz")
        try:
            soak.prepare()
            traffic.start()
            log(f"soak: {workers} workers, {rate:,.0f} events/s, chaos for {minutes:g} min")
            soak.chaos(minutes * 60)
            traffic.stop()
            log(f"soak: chaos over ({soak.tally}); {traffic.sent:,} events sent; settling")
            settle_s = soak.settle(traffic.last)
            with redis.Redis.from_url(soak.settings.redis_url) as client:
                actual = worker_counts(client)
            dead, letters, reasons = asyncio.run(_dead_lettered(soak.settings))
        finally:
            with contextlib.suppress(Exception):
                traffic.stop()
            soak.stop()
        # Judged as the workers judged: every event was counted minutes ago, well inside the window.
        reference = reference_run(read_lines(traffic.log_path), list(soak.sim.metadata()),
                                  now=datetime.now(UTC), lateness=timedelta(days=7))
    expected = reference.counts
    wrong = [k for k in expected.keys() | actual.keys() if expected.get(k) != actual.get(k)]
    rejected = reference.dead_lettered
    missing_dead = traffic.labelled_bad - dead
    tally = soak.tally
    verdict = {
        "exact": not wrong, "repos_wrong": len(wrong), "examples": {k: (actual.get(k), expected.get(k))
                                                                    for k in sorted(wrong)[:3]},
        "every_bad_dead_lettered": not missing_dead and len(dead) == rejected,
        "bad_records": rejected, "dead_lettered_distinct": len(dead), "dead_letters": letters,
        "failures": tally.failures,
    }
    verdict["passed"] = verdict["exact"] and verdict["every_bad_dead_lettered"] and not tally.failures
    return {
        "minutes": minutes, "workers": workers, "rate": rate, "seed": seed, "events": traffic.sent,
        "downloads": sum(c["downloadsAllTime"] for c in expected.values()), "repos": len(expected),
        "sigkills": tally.sigkills, "sigterms": tally.sigterms, "sigterm_clean_exits": tally.sigterm_clean_exits,
        "redis_restarts": tally.redis_restarts, "broker_pauses": tally.broker_pauses,
        "worker_starts": tally.worker_starts, "settle_s": round(settle_s, 1),
        "dead_letter_reasons": dict(reasons), "duration_s": round(time.monotonic() - started),
        "verdict": verdict,
    }


def markdown(results: dict[str, Any]) -> str:
    """The soak's section of docs/BENCHMARKS.md."""
    verdict = results["verdict"]
    meta = results["meta"]
    rows = [
        ("Chaos", f"{results['minutes']:g} min, {results['workers']} workers, "
                  f"{results['rate']:,.0f} events/s produced"),
        ("Events produced", f"{results['events']:,} ({results['downloads']:,} downloads "
                            f"in {results['repos']:,} repos)"),
        ("Worker SIGKILLs survived", f"{results['sigkills']}"),
        ("Worker SIGTERMs (clean exit 0 within 10 s)", f"{results['sigterms']} ({results['sigterm_clean_exits']})"),
        ("Redis kill -9 and restart", f"{results['redis_restarts']}"),
        ("Broker paused (SIGSTOP 1-5 s)", f"{results['broker_pauses']}"),
        ("Worker starts", f"{results['worker_starts']}"),
        ("Caught up after the chaos", f"{results['settle_s']} s"),
        ("Counts equal the reference", "yes, every repo, every day" if verdict["exact"]
         else f"NO: {verdict['repos_wrong']} repos differ, e.g. {verdict['examples']}"),
        ("Bad records dead-lettered", f"{verdict['dead_lettered_distinct']:,} of {verdict['bad_records']:,} "
                                      f"({verdict['dead_letters']:,} letters, replays included)"),
        ("Verdict", "PASSED" if verdict["passed"] else f"FAILED {verdict['failures']}"),
    ]
    lines = ["## Soak: workers under chaos", "",
             f"`{meta['command']}` on {meta['machine']['date']}, {results['duration_s']} s in all "
             f"(one-minute load average {meta['load_end']} at the end).", "",
             "| Figure | Value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    return "\n".join(lines)
