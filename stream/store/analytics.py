"""Reading what downloads say: breakdowns, unique downloaders, what did not count.

Every read of a repo is one pipeline on the repo's shard (one slot, one node). A day's
breakdown is folded to its top values as it is read, exactly as a closed day is folded in
Redis (:mod:`stream.store.folding`), so an answer does not depend on whether the day was
folded yet; a range sums the days' folded values and folds the sum again. A day counted
before analytics was on (or a share of it) has no breakdown: what its breakdown lacks of
its count is "other", so every breakdown sums to the downloads it breaks down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from stream.fields import DIMENSION_PREFIXES, UNCOUNTED_LIBRARY, UNCOUNTED_PATH
from stream.store import keys
from stream.store.reader import CounterReader

OTHER: Final = ""  # the value of what folding summed up
DIMENSIONS: Final = tuple(DIMENSION_PREFIXES)


@dataclass(frozen=True, slots=True)
class Breakdown:
    """A repo's downloads over a range by the values of one dimension, most first."""

    total: int
    values: list[tuple[str, int]]  # OTHER, when present, is the rest summed
    daily: dict[str, list[tuple[str, int]]]  # each day's folded values


@dataclass(frozen=True, slots=True)
class Uniques:
    """Distinct downloaders over a range (HyperLogLog estimates: about 0.81% standard error)."""

    total: int
    daily: dict[str, int]


@dataclass(frozen=True, slots=True)
class Uncounted:
    """Requests for one path that were download candidates but did not count."""

    path: str
    requests: int
    library: str | None  # the library whose rule judged them (None: no library)


def fold(values: dict[str, int], top: int) -> list[tuple[str, int]]:
    """The ``top`` values with most downloads (ties: the smaller value), then the rest as OTHER."""
    rest = values.get(OTHER, 0)
    ranked = sorted(((v, n) for v, n in values.items() if v != OTHER), key=lambda item: (-item[1], item[0]))
    rest += sum(n for _, n in ranked[top:])
    return ranked[:top] + ([(OTHER, rest)] if rest else [])


def days(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


class AnalyticsReader:
    """The analytics reads of the API and the CLI, on a :class:`CounterReader`'s client."""

    def __init__(self, reader: CounterReader):
        self.reader = reader

    async def _repo_shard(self, repo_key: str) -> int | None:
        shards = await self.reader.shards()
        return None if shards is None else keys.shard_of(repo_key, shards)

    async def breakdown(self, repo_key: str, start: date, end: date, dimension: str) -> Breakdown | None:
        """Downloads of ``repo_key`` over [start, end] by ``dimension``; None for an unknown repo."""
        shard = await self._repo_shard(repo_key)
        if shard is None:
            return None
        names = days(start, end)
        prefix = DIMENSION_PREFIXES[dimension]

        def queue(pipe: Any) -> None:
            pipe.hmget(keys.repo(shard, repo_key), [keys.ALL_TIME_FIELD, *names])
            for day in names:
                pipe.hgetall(keys.breakdown(shard, repo_key, day))

        counts, *hashes = await self.reader.execute(queue)
        if counts[0] is None:
            return None
        top = await self.reader.top_values()
        daily: dict[str, list[tuple[str, int]]] = {}
        summed: dict[str, int] = {}
        for day, downloads, fields in zip(names, counts[1:], hashes, strict=True):
            values = {_text(f)[len(prefix):]: int(n) for f, n in fields.items() if _text(f).startswith(prefix)}
            lacking = int(downloads or 0) - sum(values.values())
            if lacking > 0:
                values[OTHER] = values.get(OTHER, 0) + lacking
            if values:
                daily[day] = fold(values, top)
                for value, n in daily[day]:
                    summed[value] = summed.get(value, 0) + n
        return Breakdown(sum(int(n or 0) for n in counts[1:]), fold(summed, top), daily)

    async def uniques(self, repo_key: str, start: date, end: date) -> Uniques | None:
        """Distinct downloaders of ``repo_key`` per day and over [start, end] (days merged)."""
        shard = await self._repo_shard(repo_key)
        if shard is None:
            return None
        names = days(start, end)
        hlls = [keys.downloaders(shard, repo_key, day) for day in names]

        def queue(pipe: Any) -> None:
            pipe.exists(keys.repo(shard, repo_key))
            for hll in hlls:
                pipe.pfcount(hll)
            pipe.pfcount(*hlls)  # one slot: the union of the days, each downloader once

        exists, *counts, total = await self.reader.execute(queue)
        if not exists:
            return None
        return Uniques(int(total), {day: int(n) for day, n in zip(names, counts, strict=True)})

    async def uncounted(self, repo_key: str, start: date, end: date) -> list[Uncounted] | None:
        """The candidate requests of ``repo_key`` that did not count, by path, most first.

        None when the repo has neither a counter nor an uncounted request in the range.
        """
        shard = await self._repo_shard(repo_key)
        if shard is None:
            return None
        names = days(start, end)

        def queue(pipe: Any) -> None:
            pipe.exists(keys.repo(shard, repo_key))
            for day in names:
                pipe.hgetall(keys.breakdown(shard, repo_key, day))

        exists, *hashes = await self.reader.execute(queue)
        paths: dict[str, int] = {}
        library: str | None = None
        for fields in hashes:  # oldest first: the latest library wins
            for field, n in fields.items():
                name = _text(field)
                if name == UNCOUNTED_LIBRARY:
                    library = _text(n) or None
                elif name.startswith(UNCOUNTED_PATH):
                    path = name[len(UNCOUNTED_PATH):]
                    paths[path] = paths.get(path, 0) + int(n)
        if not exists and not paths:
            return None
        return [Uncounted(path, n, library) for path, n in fold(paths, keys.UNCOUNTED_TOP)]

    async def excluded(self, repo_key: str, days_counted: Iterable[str], classes: Iterable[str]) -> int:
        """Downloads of ``classes`` (e.g. ci and bot) on ``days_counted``, as stored: one HMGET of
        their class fields per day, so the caller passes only the days with downloads."""
        names = list(days_counted)
        shard = await self._repo_shard(repo_key) if names else None
        if shard is None:
            return 0
        fields = [DIMENSION_PREFIXES["class"] + value for value in classes]

        def queue(pipe: Any) -> None:
            for day in names:
                pipe.hmget(keys.breakdown(shard, repo_key, day), fields)

        return sum(int(n or 0) for values in await self.reader.execute(queue) for n in values)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
