"""Reading the counters: one repo's days and totals, and the top repos.

Used by the ``hubcounter counts`` command and by the read API. Every key is built from
a validated repo id and the layout in :mod:`stream.store.keys`; no key patterns, no
``KEYS``/``SCAN``. A reader never writes: it works on replicas and with a read-only
ACL user. A 30-day leaderboard not yet rolled to the reader's day is corrected while it
is read (:mod:`stream.store.window`), and every read of one checks, in the same round
trip, that the board did not move under it.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from stream.errors import StoreUnavailable
from stream.store import keys
from stream.store.connect import RedisClient
from stream.store.ranking import Board, Execute, Pipeline, corrected_scores, top_entries
from stream.store.window import Correction, moves, window_bounds

T = TypeVar("T")
BoardId = tuple[int, str]  # (shard, repo type): one shard's w30 board
Span = tuple[str | None, str | None]  # the days a board covers, from its meta hash
_REPLANS = 5


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
    """Reads counters written by :class:`stream.store.writer.CounterStore`; never writes."""

    def __init__(self, client: RedisClient):
        self.client = client
        self._shards: int | None = None
        self._top_values: int | None = None
        self._spans: dict[BoardId, Span] = {}  # what each board's meta said when last read

    async def shards(self) -> int | None:
        """The shard count recorded by the workers, or None when nothing was ever counted."""
        if self._shards is None:
            stored = await self.client.hget(keys.CONFIG_KEY, "shards")
            if stored is None:
                return None
            self._shards = int(stored)
        return self._shards

    async def top_values(self) -> int:
        """How many values of a breakdown a day keeps (set by the workers; read once)."""
        if self._top_values is None:
            stored = await self.client.hget(keys.CONFIG_KEY, "top_values")
            self._top_values = int(stored) if stored is not None else keys.DEFAULT_TOP_VALUES
        return self._top_values

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

    async def leaders(self, repo_type: str, limit: int, *, all_time: bool = False,
                      today: date | None = None) -> list[RankedRepo]:
        """The ``limit`` repos of one type with most downloads, reading a few entries per shard
        (see :mod:`stream.store.ranking`)."""
        shards = await self.shards()
        if shards is None or limit <= 0:
            return []
        if all_time:
            boards = [Board(keys.all_time(shard, repo_type)) for shard in range(shards)]
            entries = await top_entries(self.execute, boards, limit)
        else:
            ids = [(shard, repo_type) for shard in range(shards)]

            async def rank(plan: dict[BoardId, Correction], execute: Execute) -> list[tuple[int, str]]:
                return await top_entries(execute, [_board(board, plan[board]) for board in ids], limit)

            entries = await self._windowed(ids, today or today_utc(), rank)
        return [RankedRepo(repo_type, member, score) for score, member in entries]

    async def totals_many(self, repo_keys: Sequence[str], today: date | None = None,
                          chunk: int = 1000) -> list[RepoCounts]:
        """Last-30-days and all-time downloads of many repos (``type:repo`` keys), in order.

        Read from the shards' leaderboards (one ``ZMSCORE`` per shard, type and board),
        which hold exactly these sums: far less to read than every repo's days. A repo
        without a counter comes back with zeros; ``daily`` is left empty.
        """
        shards = await self.shards()
        if shards is None or not repo_keys:
            return [_empty(key) for key in repo_keys]
        today = today or today_utc()
        out: list[RepoCounts] = []
        for begin in range(0, len(repo_keys), chunk):
            part = repo_keys[begin:begin + chunk]
            groups: dict[BoardId, list[str]] = {}
            for repo_key in part:
                repo_type, _, repo = repo_key.partition(":")
                groups.setdefault((keys.shard_of(repo_key, shards), repo_type), []).append(repo)

            async def read(plan: dict[BoardId, Correction], execute: Execute,
                           groups: dict[BoardId, list[str]] = groups) -> dict[str, tuple[int, int]]:
                def queue(pipe: Pipeline) -> None:
                    for board_id, repos in groups.items():
                        board = _board(board_id, plan[board_id])
                        for key in (board.key, *board.add, *board.sub, keys.all_time(*board_id)):
                            pipe.zmscore(key, repos)

                replies = iter(await execute(queue))
                found: dict[str, tuple[int, int]] = {}
                for board_id, repos in groups.items():
                    correction = plan[board_id]
                    plus = [next(replies) for _ in range(1 + len(correction.add))]
                    minus = [next(replies) for _ in correction.sub]
                    totals = next(replies)
                    last30 = corrected_scores(plus, minus, len(repos))
                    for repo, w, a in zip(repos, last30, totals, strict=True):
                        found[f"{board_id[1]}:{repo}"] = (w, int(a or 0))
                return found

            found = await self._windowed(list(groups), today, read)
            for repo_key in part:
                repo_type, _, repo = repo_key.partition(":")
                last30_n, total_n = found[repo_key]
                out.append(RepoCounts(repo_type, repo, last30_n, total_n, {}))
        return out

    async def execute(self, queue: Callable[[Pipeline], None]) -> list[Any]:
        """Run the reads ``queue`` puts on a pipeline (one per node on a cluster, all at once)."""
        async with self.client.pipeline(transaction=False) as pipe:
            queue(pipe)
            return list(await pipe.execute())

    async def _windowed(self, boards: list[BoardId], today: date,
                        action: Callable[[dict[BoardId, Correction], Execute], Awaitable[T]]) -> T:
        """Run ``action`` on the w30 ``boards`` as they should be for the window ending ``today``.

        ``action`` gets each board's correction and an ``execute`` that re-reads every
        board's span after the reads it runs, in the same pipeline: a board's commands run
        in order on its node, and a span only moves forward, so an unchanged span proves the
        reads saw the board as planned. When one moved (the daily roll ran meanwhile), the
        plan is made again and ``action`` runs again.
        """
        start, end = window_bounds(today)
        for _attempt in range(_REPLANS):
            unknown = [board for board in boards if board not in self._spans]
            if unknown:
                await self._read_spans(unknown)
            check = _SpanCheck({board: self._spans[board] for board in boards})
            plan = {board: moves(span, start, end) for board, span in check.planned.items()}
            result = await action(plan, functools.partial(self._checked, check))
            if not check.moved:
                return result
        raise StoreUnavailable("the 30-day leaderboards kept moving while being read; retry")

    async def _checked(self, check: _SpanCheck, queue: Callable[[Pipeline], None]) -> list[Any]:
        """Run ``queue``'s reads, then re-read the spans of the boards ``check`` planned for."""
        boards = list(check.planned)

        def with_spans(pipe: Pipeline) -> None:
            queue(pipe)
            _queue_spans(pipe, boards)

        replies = await self.execute(with_spans)
        cut = len(replies) - len(boards)
        for board, span in zip(boards, _spans(replies[cut:]), strict=True):
            check.moved = check.moved or span != check.planned[board]
            self._spans[board] = span
        return replies[:cut]

    async def _read_spans(self, boards: list[BoardId]) -> None:
        replies = await self.execute(lambda pipe: _queue_spans(pipe, boards))
        self._spans.update(zip(boards, _spans(replies), strict=True))

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


@dataclass(slots=True)
class _SpanCheck:
    """The spans a read was planned for, and whether any moved while it ran."""

    planned: dict[BoardId, Span]
    moved: bool = False


def _board(board: BoardId, correction: Correction) -> Board:
    """A shard's w30 board with the day zsets that correct it."""
    shard, repo_type = board
    return Board(keys.window(shard, repo_type),
                 tuple(keys.day(shard, repo_type, d) for d in correction.add),
                 tuple(keys.day(shard, repo_type, d) for d in correction.sub))


def _queue_spans(pipe: Pipeline, boards: Iterable[BoardId]) -> None:
    for shard, repo_type in boards:
        pipe.hmget(keys.meta(shard), f"{repo_type}:start", f"{repo_type}:end")


def _spans(replies: Iterable[list]) -> list[Span]:
    return [(_text(start) if start is not None else None, _text(end) if end is not None else None)
            for start, end in replies]


def _empty(repo_key: str) -> RepoCounts:
    repo_type, _, repo = repo_key.partition(":")
    return RepoCounts(repo_type, repo, 0, 0, {})


def _day_names(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
