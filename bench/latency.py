"""Event-to-counter latency of the worker under a steady load at half its peak rate.

Method: a fresh live topic and a fresh worker. A feeder process produces simulated live
traffic at 50% of the worker's best end-to-end rate. Meanwhile the driver sends a probe
event every 20 ms: an anonymous dataset request for ``bench-probe/latency`` (it always
counts, and as one key it stays in one partition, so probes are applied in order). It
stamps each probe just before handing it to the producer (``linger_ms=0``) and polls the
probe repo's all-time counter every 2 ms; when the counter reaches n, probes 1..n
are visible. A probe's latency is visible time minus send time, on one clock.

The worker and the feeder start in :class:`LiveRig` ahead of the measurement (the driver
runs the memory figures meanwhile, which do not depend on timing), so their start-up and
the group join cost no extra wall time.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import orjson
import psutil
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic

from bench.child import Child
from bench.stats import percentile
from stream import kafka
from stream.devstack import ManagedProcess, wait_ready, worker_process
from stream.store import keys
from stream.topics import ensure_topics

if TYPE_CHECKING:
    from bench.workload import Workload

PROBE_REPO = "bench-probe/latency"
PROBE_KEY = f"dataset:{PROBE_REPO}"
PROBE_INTERVAL_S = 0.02
POLL_S = 0.002
SETTLE_S = 1.0
GOAL_P99_MS = 1000.0


def probe_value() -> bytes:
    return orjson.dumps({"timestamp": int(time.time() * 1000), "method": "GET", "status": 200,
                         "repoType": "dataset", "repoName": PROBE_REPO, "path": "data/probe.parquet"})


class Probe:
    """Sends probes and watches their counter; keeps send and visible times per probe."""

    def __init__(self, producer: AIOKafkaProducer, client: aioredis.Redis, topic: str, shards: int):
        self.producer, self.client, self.topic = producer, client, topic
        self.counter_key = keys.repo(keys.shard_of(PROBE_KEY, shards), PROBE_KEY)
        self.sent: list[float] = []
        self.visible: list[float] = []
        self.caught_up = asyncio.Event()  # set while every probe sent is visible

    async def send(self) -> None:
        self.caught_up.clear()
        self.sent.append(time.perf_counter())
        await self.producer.send(self.topic, key=PROBE_KEY.encode(), value=probe_value())

    async def poll(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            value = await self.client.hget(self.counter_key, keys.ALL_TIME_FIELD)
            now = time.perf_counter()
            self.visible += [now] * (int(value or 0) - len(self.visible))
            if len(self.visible) >= len(self.sent):
                self.caught_up.set()
            await asyncio.sleep(POLL_S)

    async def wait_visible(self, within_s: float) -> bool:
        """Whether every probe sent became visible within ``within_s`` seconds."""
        try:
            async with asyncio.timeout(within_s):
                await self.caught_up.wait()
        except TimeoutError:
            return False
        return True


class LiveRig:
    """A worker on a fresh live topic and a feeder that has generated its traffic."""

    def __init__(self, workload: Workload, run_id: str = "0"):
        self.workload = workload
        self.topic = f"bench-live-{run_id}"
        bootstrap = workload.settings.kafka_bootstrap
        asyncio.run(ensure_topics(workload.settings.kafka, [NewTopic(self.topic, 8, 1)]))
        workdir = workload.workdir
        self.ready_path, self.go_path, self.stop_path = (workdir / f"feeder-{run_id}.{name}"
                                                         for name in ("ready", "go", "stop"))
        count = 100_000 if workload.sizes.latency_seconds < 10 else 400_000
        self.feeder = Child("bench.feeder", [
            "--bootstrap", bootstrap, "--topic", self.topic, "--count", str(count), "--ready", str(self.ready_path),
            "--go", str(self.go_path), "--stop", str(self.stop_path), "--repos", str(workload.sizes.repos),
        ], workdir, f"feeder-{run_id}")
        self.settings = workload.settings_for(f"bench-live-{run_id}", events_topic=self.topic)
        self.worker: ManagedProcess = worker_process(self.settings, workdir, f"worker-live-{run_id}")
        try:
            self.worker.start()
        except Exception:
            self.feeder.stop()
            raise

    def measure(self, peak_rate: float) -> dict[str, Any]:
        """Probe latencies while the feeder sends at half of ``peak_rate``."""
        wait_ready(self.settings.web_port, timeout=120, proc=self.worker)
        self.feeder.wait_file(self.ready_path, timeout=300)
        rate = 0.5 * peak_rate
        seconds = self.workload.sizes.latency_seconds
        assert self.worker.proc is not None
        figures = asyncio.run(self._probe(rate, seconds, self.worker.proc.pid))
        fed = self.feeder.result(timeout=60)
        figures.update(target_rate=rate, achieved_rate=fed["rate"], seconds=seconds,
                       probe_interval_ms=1000 * PROBE_INTERVAL_S, goal_p99_ms=GOAL_P99_MS,
                       meets_goal=figures["p99_ms"] < GOAL_P99_MS)
        return figures

    async def _probe(self, rate: float, seconds: float, pid: int) -> dict[str, Any]:
        producer = kafka.producer(self.settings.kafka, linger_ms=0)
        await producer.start()
        client = aioredis.from_url(self.settings.redis_url)
        probe = Probe(producer, client, self.topic, self.settings.shards)
        stop = asyncio.Event()
        poller = asyncio.create_task(probe.poll(stop))
        try:
            await probe.send()  # the first probe proves the worker has joined and is counting
            if not await probe.wait_visible(120):
                raise TimeoutError("the worker never counted the warm-up probe")
            warmup = len(probe.sent)
            self.go_path.write_text(str(rate))
            await asyncio.sleep(SETTLE_S)  # let the load settle before timing
            worker = psutil.Process(pid)
            worker.cpu_percent()
            started = time.perf_counter()
            while time.perf_counter() - started < seconds:
                await probe.send()
                await asyncio.sleep(PROBE_INTERVAL_S)
            cpu = worker.cpu_percent()
            all_seen = await probe.wait_visible(30)
        finally:
            self.stop_path.touch()
            stop.set()
            await poller
            await producer.stop()
            await client.aclose()
        latencies = [(v - s) * 1000 for s, v in zip(probe.sent[warmup:], probe.visible[warmup:], strict=False)]
        return {"probes": len(probe.sent) - warmup, "probes_seen": len(latencies), "all_seen": all_seen,
                "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99), "max_ms": max(latencies),
                "worker_cpu_percent": cpu}

    def close(self) -> None:
        self.stop_path.touch()
        self.feeder.stop()
        self.worker.stop()
