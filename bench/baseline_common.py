"""What the framework baselines share: the per-event decision and their Redis layout.

The decision reuses the project's pure core (``parse_event`` and ``Counter``) one event at
a time, so the Faust and Quix Streams pipelines count exactly what the worker counts; only
the way they read Kafka and write Redis is each framework's own. Their Redis layout is a
plain one (no shards, no offsets), written with the same commands per counted event as the
worker's Lua apply, minus the 30-day window and key expiries:

====================================  ======  ==========================================
``<p>:repo:<type>:<repo>``            hash    ``YYYY-MM-DD`` -> downloads; ``all``
``<p>:day:<type>:<YYYY-MM-DD>``       zset    repo -> downloads that day
``<p>:all:<type>``                    zset    repo -> all-time downloads
``<p>:seen:<bucket>``                 set     dataset dedupe: ``<dataset>\\0<user>``
====================================  ======  ==========================================
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from stream.counting import Counter, Tally
from stream.errors import EventError
from stream.events import parse_event
from stream.metadata import LibraryMap
from stream.rules import load_registry

PREFIX = "bl"
_WINDOW_REFRESH_S = 1.0


class Increment(NamedTuple):
    """One counted event: plain (bucket None) or a dataset candidate to dedupe."""

    repo_key: str
    day: str
    bucket: int | None
    user: str | None


class Decider:
    """Judges one raw event with the project's rules; None when it does not count."""

    def __init__(self, libraries: LibraryMap, lateness: timedelta = timedelta(days=7)):
        self.counter = Counter(load_registry(), libraries.library_of, lateness)
        self._window = self.counter.window(datetime.now(UTC))
        self._window_at = time.monotonic()

    def decide(self, raw: bytes) -> Increment | None:
        now = time.monotonic()
        if now - self._window_at > _WINDOW_REFRESH_S:  # the lateness window moves with the clock
            self._window, self._window_at = self.counter.window(datetime.now(UTC)), now
        tally = Tally()
        try:
            self.counter.add(parse_event(raw), tally, self._window)
        except EventError:
            return None  # malformed or outside the window: never counted
        for (repo_key, day), _ in tally.plain.items():
            return Increment(repo_key, day, None, None)
        for repo_key, day, bucket, user in tally.distinct:
            return Increment(repo_key, day, bucket, user)
        return None


def repo_hash(repo_key: str, prefix: str = PREFIX) -> str:
    return f"{prefix}:repo:{repo_key}"


def seen_set(bucket: int, prefix: str = PREFIX) -> str:
    return f"{prefix}:seen:{bucket}"


def seen_member(repo_key: str, user: str) -> str:
    return f"{repo_key}\0{user}"


def queue_increment(pipe: Any, repo_key: str, day: str, n: int, prefix: str = PREFIX) -> None:
    """Queue the writes of ``n`` downloads of a repo on a day on a Redis pipeline."""
    repo_type, _, name = repo_key.partition(":")
    key = repo_hash(repo_key, prefix)
    pipe.hincrby(key, day, n)
    pipe.hincrby(key, "all", n)
    pipe.zincrby(f"{prefix}:day:{repo_type}:{day}", n, name)
    pipe.zincrby(f"{prefix}:all:{repo_type}", n, name)


def split(increments: Iterable[Increment]) -> tuple[dict[tuple[str, str], int], list[Increment]]:
    """A batch's plain increments summed per (repo, day), and its dataset candidates, which
    count only if their dedupe member is new (SADD them first, then :func:`add_new`)."""
    plain: dict[tuple[str, str], int] = {}
    candidates: list[Increment] = []
    for increment in increments:
        if increment.bucket is None:
            key = (increment.repo_key, increment.day)
            plain[key] = plain.get(key, 0) + 1
        else:
            candidates.append(increment)
    return plain, candidates


def queue_dedupe(pipe: Any, candidates: list[Increment]) -> None:
    """Queue the SADD of each candidate's dedupe member (each answers 1 when it is new)."""
    for c in candidates:
        pipe.sadd(seen_set(c.bucket or 0), seen_member(c.repo_key, c.user or ""))


def add_new(plain: dict[tuple[str, str], int], candidates: list[Increment], added: list[int]) -> None:
    """Count the candidates whose dedupe member was new into ``plain``."""
    for c, new in zip(candidates, added, strict=True):
        if new:
            plain[(c.repo_key, c.day)] = plain.get((c.repo_key, c.day), 0) + 1


class Progress:
    """Which records a baseline still has to see: done when every partition reached its last offset."""

    def __init__(self, last_offsets: dict[int, int]):
        self.last = last_offsets
        self.pending = set(last_offsets)
        self.first_read: float | None = None
        self.cpu_first = 0.0
        self.last_write: float | None = None
        self.cpu_last = 0.0
        self.seen = 0
        self.reported = False

    def wanted(self, partition: int, offset: int) -> bool:
        """Whether a record is inside the measured workload (a prefix of its partition)."""
        return offset <= self.last.get(partition, -1)

    def begin(self) -> None:
        """Note that a record was read (the first call starts the clock)."""
        if self.first_read is None:
            self.first_read = time.time()
            self.cpu_first = time.process_time()

    def saw(self, partition: int, offset: int) -> bool:
        """Note a record as processed; True once the whole workload has been."""
        if offset <= self.last.get(partition, -1):
            self.seen += 1
        if offset >= self.last.get(partition, -1):
            self.pending.discard(partition)
        return not self.pending

    def wrote(self) -> None:
        """Note a write to Redis (the last one ends the measured window)."""
        self.last_write = time.time()
        self.cpu_last = time.process_time()

    def result(self, **extra: Any) -> dict[str, Any]:
        assert self.first_read is not None and self.last_write is not None
        return {"events": self.seen, "first_read": self.first_read, "last_write": self.last_write,
                "seconds": self.last_write - self.first_read, "cpu_seconds": self.cpu_last - self.cpu_first,
                **extra}
