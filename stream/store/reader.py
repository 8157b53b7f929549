"""Reading the counters: one repo's days and totals, and the top repos.

Used by the ``hubcounter counts`` command and by the read API. Every key is built from
a validated repo id and the layout in :mod:`stream.store.keys`; no key patterns, no
``KEYS``/``SCAN``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources

import redis.asyncio as aioredis

from stream.store import keys
from stream.store.writer import roll_windows, window_bounds


@dataclass(frozen=True, slots=True)
class RepoCounts:
    """A repo's downloads: the last-30-days sum, the all-time total and per-day counts."""

    repo_type: str
    repo: str
    downloads: int
    downloads_all_time: int
    daily: dict[str, int]


@dataclass(frozen=True, slots=True)
class RankedRepo:
    repo_type: str
    repo: str
    downloads: int


def today_utc() -> date:
    return datetime.now(UTC).date()


class CounterReader:
    """Reads counters written by :class:`stream.store.writer.CounterStore`."""

    def __init__(self, client: aioredis.Redis):
        self.client = client
        self._shards: int | None = None
        self._roll = client.register_script(
            resources.files("stream.store").joinpath("lua", "roll.lua").read_text())

    async def shards(self) -> int | None:
        """The shard count recorded by the workers, or None when nothing was ever counted."""
        if self._shards is None:
            stored = await self.client.hget(keys.CONFIG_KEY, "shards")
            if stored is None:
                return None
            self._shards = int(stored)
        return self._shards

    async def repo_counts(self, repo_type: str, repo: str, start: date, end: date,
                          today: date | None = None) -> RepoCounts | None:
        """Daily counts over [start, end] (zero-filled), the 30-day sum and the total.

        Returns None when the repo has no counter at all.
        """
        shards = await self.shards()
        if shards is None:
            return None
        today = today or today_utc()
        w_start, w_end = window_bounds(today)
        days = sorted({*_day_names(start, end), *_day_names(w_start, w_end)})
        key = keys.repo(keys.shard_of(f"{repo_type}:{repo}", shards), f"{repo_type}:{repo}")
        values = await self.client.hmget(key, [keys.ALL_TIME_FIELD, *days])
        if values[0] is None:
            return None
        per_day = {d: int(v or 0) for d, v in zip(days, values[1:], strict=True)}
        last30 = sum(per_day[d] for d in _day_names(w_start, w_end))
        daily = {d: per_day[d] for d in _day_names(start, end)}
        return RepoCounts(repo_type, repo, last30, int(values[0]), daily)

    async def top(self, repo_types: tuple[str, ...], limit: int, *, all_time: bool = False,
                  today: date | None = None) -> list[RankedRepo]:
        """The ``limit`` repos with most downloads (last 30 days, or all time), highest first."""
        shards = await self.shards()
        if shards is None or limit <= 0:
            return []
        if not all_time:
            await roll_windows(self.client, self._roll, shards, today or today_utc())
        async with self.client.pipeline(transaction=False) as pipe:
            for repo_type in repo_types:
                for shard in range(shards):
                    key = keys.all_time(shard, repo_type) if all_time else keys.window(shard, repo_type)
                    pipe.zrevrange(key, 0, limit - 1, withscores=True)
            replies = await pipe.execute()
        ranked = (
            RankedRepo(repo_type, member.decode(), int(score))
            for i, repo_type in enumerate(repo_types)
            for reply in replies[i * shards:(i + 1) * shards]
            for member, score in reply
        )
        return heapq.nsmallest(limit, ranked, key=lambda r: (-r.downloads, r.repo_type, r.repo))


def _day_names(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
