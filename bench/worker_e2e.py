"""This project's worker, end to end: the real ``hubcounter worker`` on the pre-produced topic.

A run flushes Redis, starts the worker (default batch size and shards) with a fresh
consumer group, and measures from its first applied batch to its last: the start is seen
by polling the ``applied`` offset markers of a few shards every 5 ms (which also gives how
many records that first batch held), the end is the ``last_apply_ms`` the worker publishes
in ``hc:worker:<id>`` once its ``events_read`` covers the whole topic. The rate is over the
records after the first batch, so neither the group join nor the first fetch is in it.
Then every counter in Redis is compared with the reference.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import psutil
import redis

from bench.child import stop_in_background
from bench.procmem import mib, peak_rss_bytes, rss_bytes
from bench.redisview import Counts, differences, worker_counts
from stream.devstack import ManagedProcess, wait_ready, worker_process
from stream.settings import Settings
from stream.store import keys

if TYPE_CHECKING:
    from bench.workload import Workload

_WATCHED_SHARDS = 4  # every batch of a realistic mix touches each of these shards
_POLL_S = 0.005


class FirstApply(threading.Thread):
    """Polls the worker's position markers until a first batch is applied."""

    def __init__(self, client: redis.Redis | redis.RedisCluster, topic: str, first_offsets: dict[int, int]):
        super().__init__(name="first-apply", daemon=True)
        self.client, self.topic, self.first_offsets = client, topic, first_offsets
        self.at_ms: float | None = None
        self.events = 0
        self.pid: int | None = None  # set once the worker runs: its CPU time is read at the first batch
        self.cpu_at = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            with self.client.pipeline(transaction=False) as pipe:
                for shard in range(_WATCHED_SHARDS):
                    pipe.hgetall(keys.position(shard))
                replies = pipe.execute()
            now_ms = time.time() * 1000
            markers: dict[int, int] = {}
            for reply in replies:
                for name, offset in reply.items():
                    topic, _, partition = name.decode().rpartition(":")
                    if topic == self.topic:
                        markers[int(partition)] = max(markers.get(int(partition), -1), int(offset) - 1)
            if markers:
                self.at_ms = now_ms
                self.cpu_at = cpu_seconds(self.pid) if self.pid else 0.0
                self.events = sum(o - self.first_offsets[p] + 1 for p, o in markers.items())
                return
            time.sleep(_POLL_S)

    def stop(self) -> None:
        self._halt.set()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def worker_id(proc: ManagedProcess) -> str:
    """The id a worker process publishes its totals under (``host-pid``)."""
    assert proc.proc is not None
    return f"{socket.gethostname()}-{proc.proc.pid}"


def wait_totals(client: redis.Redis | redis.RedisCluster, proc: ManagedProcess, events: int,
                timeout: float) -> dict[str, int]:
    """Block until the worker's published ``events_read`` reaches ``events``; return its totals."""
    key = keys.worker(worker_id(proc))
    deadline = time.monotonic() + timeout
    totals: dict[str, int] = {}
    while time.monotonic() < deadline:
        if not proc.running:
            raise RuntimeError(f"{proc.name} exited; see {proc.log_path}")
        raw = client.hgetall(key)
        totals = {k.decode(): int(v) for k, v in raw.items() if v.isdigit()}
        if totals.get("events_read", 0) >= events:
            return totals
        time.sleep(0.1)
    raise TimeoutError(f"{proc.name} read {totals.get('events_read', 0)} of {events} events in {timeout:.0f} s")


def measure(workload: Workload, settings: Settings, name: str, expected: Counts,
            ready_timeout: float = 120.0) -> dict[str, Any]:
    """Start a worker with ``settings``, let it count the whole topic, measure and verify."""
    workload.flush_redis(settings.redis_url)
    client = workload.redis(settings.redis_url)
    watch = FirstApply(client, settings.events_topic, workload.produced.first_offset)
    watch.start()
    proc = worker_process(settings, workload.workdir, name)
    started = time.monotonic()
    proc.start()
    try:
        assert proc.proc is not None
        pid = watch.pid = proc.proc.pid
        wait_ready(settings.web_port, timeout=ready_timeout, proc=proc)
        ready_s = time.monotonic() - started
        rss_ready, peak_ready = rss_bytes(pid), peak_rss_bytes(pid)
        totals = wait_totals(client, proc, workload.events, timeout=600)
        done_s = time.monotonic() - started
        watch.join(5)
        rss_done, peak_done, cpu_done = rss_bytes(pid), peak_rss_bytes(pid), cpu_seconds(pid)
    finally:
        watch.stop()
        stop_in_background(proc.stop)
    if watch.at_ms is None:
        raise RuntimeError("never saw the first batch applied")
    seconds = (totals["last_apply_ms"] - watch.at_ms) / 1000
    wrong, examples = differences(worker_counts(client), expected)
    client.close()
    own_seconds = (totals["last_apply_ms"] - totals["first_read_ms"]) / 1000
    return {
        "events": totals["events_read"], "first_batch": watch.events, "seconds": seconds,
        "cpu_seconds": cpu_done - watch.cpu_at,
        "rate": (totals["events_read"] - watch.events) / seconds if seconds > 0 else None,
        # the worker's own figure: first_read_ms (first batch read) to last_apply_ms, every event
        "rate_own_fields": totals["events_read"] / own_seconds if own_seconds > 0 else None,
        "counted": totals.get("events_counted"), "dead_lettered": totals.get("dead_lettered"),
        "verified": wrong == 0, "repos_wrong": wrong, "examples": examples,
        "phases_s": {"ready": ready_s, "counted": done_s},
        "rss_ready_mib": mib(rss_ready), "peak_rss_ready_mib": mib(peak_ready),
        "rss_done_mib": mib(rss_done), "peak_rss_mib": mib(peak_done),
    }


def run_once(workload: Workload, run_id: str) -> dict[str, Any]:
    """One end-to-end run on the workload with a fresh consumer group."""
    settings = workload.settings_for(f"bench-worker-{run_id}")
    return measure(workload, settings, f"worker-{run_id}", workload.expected)


def run_plain(workload: Workload, run_id: str) -> dict[str, Any]:
    """The same with analytics off: counts only (what the breakdowns cost is the difference)."""
    settings = workload.settings_for(f"bench-plain-{run_id}", analytics=False)
    return measure(workload, settings, f"plain-{run_id}", workload.expected)
