"""Reading the counters: one repo's days and totals, and the top repos.

Used by the ``hubcounter counts`` command and by the read API. Every key is built from
a validated repo id and the layout in :mod:`stream.store.keys`; no key patterns, no
``KEYS``/``SCAN``.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from stream.store import keys
from stream.store.writer import lua_script, roll_windows, window_bounds


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
        self._rolled_for: date | None = None  # the day this reader last rolled the windows to
        self._roll = client.register_script(lua_script("roll.lua"))

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
        """The ``limit`` repos of ``repo_types`` with most downloads (30 days, or all time)."""
        ranked = [repo for repo_type in repo_types
                  for repo in await self.leaders(repo_type, limit, all_time=all_time, today=today)]
        return heapq.nsmallest(limit, ranked, key=lambda r: (-r.downloads, r.repo_type, r.repo))

    # -- reads for the API: organisations, many repos at once, live workers -------------

    async def org_repo_keys(self, org: str) -> list[str]:
        """The ``type:org/name`` keys of an org's counted repos, sorted (``org`` must be validated)."""
        members = await self.client.smembers(keys.org_repos(org))
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    async def org_index(self, org: str, cap: int) -> tuple[int, list[str]]:
        """How many repos an org's index holds, and the sorted keys of at most ``cap`` of them.

        A bounded read whatever the org's size: past ``cap`` members the index is scanned
        only until ``cap`` are found (``org`` must be validated).
        """
        name = keys.org_repos(org)
        size = await self.client.scard(name)
        if size <= cap:
            members = set(await self.client.smembers(name))
        else:
            members, cursor = set(), 0
            while True:
                cursor, found = await self.client.sscan(name, cursor, count=1000)
                members.update(found)
                if not cursor or len(members) >= cap:
                    break
        found_keys = sorted(m.decode() if isinstance(m, bytes) else m for m in members)
        return max(size, len(found_keys)), found_keys[:cap]

    async def rolled_shards(self, today: date) -> int | None:
        """The shard count, once the 30-day leaderboards end on ``today``.

        Rolls at most once per day per reader (a roll is idempotent and only moves
        forward, and the workers roll too), so the request path pays for it once a day.
        """
        shards = await self.shards()
        if shards is not None and self._rolled_for != today:
            await roll_windows(self.client, self._roll, shards, today)
            self._rolled_for = today
        return shards

    async def leaders(self, repo_type: str, limit: int, *, all_time: bool = False,
                      today: date | None = None) -> list[RankedRepo]:
        """The ``limit`` repos of one type with most downloads, reading a few entries per shard.

        First the best ``k`` of every shard (``k`` about twice ``limit / shards``); the
        ``limit``-th best of those, ``floor``, bounds the final cut from below, so only a
        shard whose ``k``-th entry still reaches ``floor`` can hold more of the top, and
        only those are read again (their entries scoring ``floor`` or more). Exact, and
        about ``limit`` entries read instead of ``limit`` per shard.
        """
        shards = await self.shards() if all_time else await self.rolled_shards(today or today_utc())
        if shards is None or limit <= 0:
            return []
        board = keys.all_time if all_time else keys.window
        first = 2 + (2 * limit) // shards
        async with self.client.pipeline(transaction=False) as pipe:
            for shard in range(shards):
                pipe.zrevrange(board(shard, repo_type), 0, first - 1, withscores=True)
            replies: list[list] = list(await pipe.execute())
        best = sorted((-score for reply in replies for _, score in reply))
        floor = -best[limit - 1] if len(best) >= limit else None
        again = [shard for shard, reply in enumerate(replies)
                 if len(reply) == first and (floor is None or reply[-1][1] >= floor)]
        if again:
            async with self.client.pipeline(transaction=False) as pipe:
                for shard in again:
                    pipe.zrevrangebyscore(board(shard, repo_type), "+inf", "-inf" if floor is None else floor,
                                          start=0, num=limit, withscores=True)
                for shard, reply in zip(again, await pipe.execute(), strict=True):
                    replies[shard] = reply
        # plain tuples until the cut: a few hundred candidates, a hundred results
        candidates = ((-int(score), _text(member)) for reply in replies for member, score in reply)
        best_first = heapq.nsmallest(limit, candidates)
        return [RankedRepo(repo_type, repo, -negated) for negated, repo in best_first]

    async def totals_many(self, repo_keys: Sequence[str], today: date | None = None,
                          chunk: int = 1000) -> list[RepoCounts]:
        """Last-30-days and all-time downloads of many repos (``type:repo`` keys), in order.

        Read from the shards' leaderboards (one ``ZMSCORE`` per shard, type and board),
        which hold exactly these sums: far less to read than every repo's days. A repo
        without a counter comes back with zeros; ``daily`` is left empty.
        """
        shards = await self.rolled_shards(today or today_utc())
        if shards is None or not repo_keys:
            return [_empty(key) for key in repo_keys]
        out: list[RepoCounts] = []
        for begin in range(0, len(repo_keys), chunk):
            part = repo_keys[begin:begin + chunk]
            groups: dict[tuple[int, str], list[str]] = {}
            for repo_key in part:
                repo_type, _, repo = repo_key.partition(":")
                groups.setdefault((keys.shard_of(repo_key, shards), repo_type), []).append(repo)
            async with self.client.pipeline(transaction=False) as pipe:
                for (shard, repo_type), repos in groups.items():
                    pipe.zmscore(keys.window(shard, repo_type), repos)
                    pipe.zmscore(keys.all_time(shard, repo_type), repos)
                replies = iter(await pipe.execute())
            found: dict[str, tuple[int, int]] = {}
            for (_, repo_type), repos in groups.items():
                last30, total = next(replies), next(replies)
                for repo, w, a in zip(repos, last30, total, strict=True):
                    found[f"{repo_type}:{repo}"] = (int(w or 0), int(a or 0))
            for repo_key in part:
                repo_type, _, repo = repo_key.partition(":")
                last30_n, total_n = found[repo_key]
                out.append(RepoCounts(repo_type, repo, last30_n, total_n, {}))
        return out

    async def days_many(self, repo_keys: Sequence[str], days: Sequence[str] | None) -> list[RepoCounts]:
        """Per-day counts and all-time totals of a few hundred repos, in one round trip.

        ``days`` names the days wanted (zero-filled); None asks for every day the repo
        ever had. ``downloads`` is the sum over the returned days.
        """
        shards = await self.shards()
        if shards is None or not repo_keys:
            return [_empty(key) for key in repo_keys]
        if days is not None:
            replies = await self._hmget_many(shards, repo_keys, [keys.ALL_TIME_FIELD, *days])
            pairs = [(values[0], dict(zip(days, values[1:], strict=True))) for values in replies]
        else:
            async with self.client.pipeline(transaction=False) as pipe:
                for repo_key in repo_keys:
                    pipe.hgetall(keys.repo(keys.shard_of(repo_key, shards), repo_key))
                everything = await pipe.execute()
            pairs = []
            for fields in everything:
                decoded = {_text(k): v for k, v in fields.items()}
                total = decoded.pop(keys.ALL_TIME_FIELD, None)
                pairs.append((total, dict(sorted(decoded.items()))))
        out = []
        for repo_key, (total, per_day) in zip(repo_keys, pairs, strict=True):
            repo_type, _, repo = repo_key.partition(":")
            daily = {d: int(v or 0) for d, v in per_day.items()}
            out.append(RepoCounts(repo_type, repo, sum(daily.values()), int(total or 0), daily))
        return out

    async def workers(self) -> list[WorkerStats]:
        """The live totals of every worker that sent a heartbeat lately, by worker id."""
        members: list[Any] = await self.client.zrange(keys.WORKERS, 0, -1)
        ids = [_text(m) for m in members]
        if not ids:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.hgetall(keys.worker(worker_id))
            replies = await pipe.execute()
        out = []
        for worker_id, fields in zip(ids, replies, strict=True):
            if not fields:
                continue  # its hash expired: the worker is gone
            decoded = {_text(k): _text(v) for k, v in fields.items()}
            out.append(WorkerStats(worker_id, decoded.pop("group", ""),
                                   {k: int(v) for k, v in decoded.items() if v.lstrip("-").isdigit()}))
        return sorted(out, key=lambda w: w.worker_id)

    async def _hmget_many(self, shards: int, repo_keys: Sequence[str], fields: list[str]) -> list[list]:
        async with self.client.pipeline(transaction=False) as pipe:
            for repo_key in repo_keys:
                pipe.hmget(keys.repo(keys.shard_of(repo_key, shards), repo_key), fields)
            return list(await pipe.execute())


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """One worker's heartbeat: cumulative totals and gauges (``keys.WORKER_FIELDS``) as ints."""

    worker_id: str
    group: str
    values: dict[str, int]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _empty(repo_key: str) -> RepoCounts:
    repo_type, _, repo = repo_key.partition(":")
    return RepoCounts(repo_type, repo, 0, 0, {})


def _day_names(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
