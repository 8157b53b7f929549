"""The top entries of a leaderboard split over shards, reading a few entries per shard.

Each shard's board is a zset (``w30`` or all-time), possibly to be corrected by day zsets
(see :mod:`stream.store.window`): ``board + add days - sub days``. The top ``limit`` of
the union is found without reading whole boards:

- a board needing no correction is read best-first, ``k`` entries (about twice
  ``limit / shards``); the ``limit``-th best score seen so far, ``floor``, bounds the final
  cut from below, so only a board whose ``k``-th entry still reaches ``floor`` is read
  again, once, for its entries scoring ``floor`` or more;
- a corrected board is read best-first in its board and in every day it adds, and the
  exact score of each entry found is asked for (``ZMSCORE`` in all of its zsets). An entry
  not found yet scores at most the sum of the last scores read from each list (day zsets
  only subtract otherwise), so the board is read deeper (four times) only while that
  bound beats ``floor``. That is the threshold algorithm; it is needed only on a day
  whose boards have not been rolled yet.

Ties at the cut are broken by id among the entries read; which of several entries tied
at the last place is read at all is not specified.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

Pipeline = Any  # a redis-py pipeline (one Redis or a cluster)
Execute = Callable[[Callable[[Pipeline], None]], Awaitable[list[Any]]]
_DEEPER = 4


@dataclass(frozen=True, slots=True)
class Board:
    """One shard's leaderboard as wanted: ``key`` plus the ``add`` zsets minus the ``sub`` zsets."""

    key: str
    add: tuple[str, ...] = ()
    sub: tuple[str, ...] = ()

    @property
    def sorted_lists(self) -> tuple[str, ...]:
        """The zsets read best-first: the board and the days it adds."""
        return (self.key, *self.add)


async def top_entries(execute: Execute, boards: Sequence[Board], limit: int) -> list[tuple[int, str]]:
    """The ``limit`` best (score, member) over ``boards``, best first, ties by member; scores > 0.

    ``execute`` runs the reads a callback queues on a pipeline and returns their replies.
    """
    if not boards or limit <= 0:
        return []
    scores: dict[str, int] = {}
    depth = [2 + (2 * limit) // len(boards)] * len(boards)
    open_boards = list(range(len(boards)))
    by_floor: set[int] = set()  # plain boards whose second, last read goes down to the floor
    floor: int | None = None
    while open_boards:
        reads = await _read_lists(execute, boards, open_boards, depth, by_floor, floor, limit)
        await _score(execute, boards, reads, scores)
        best = heapq.nlargest(limit, scores.values())
        floor = best[-1] if len(best) >= limit else None
        still_open = []
        for index in open_boards:
            board, lists = boards[index], reads[index]
            if index in by_floor or all(len(entries) < depth[index] for entries in lists):
                continue  # read to the floor, or every list read to its end
            if not board.add and not board.sub:
                if floor is None or lists[0][-1][1] >= floor:
                    by_floor.add(index)
                    still_open.append(index)
                continue
            bound = sum(entries[-1][1] for entries in lists if len(entries) == depth[index])
            if floor is None or bound > floor:
                depth[index] *= _DEEPER
                still_open.append(index)
        open_boards = still_open
    ranked = heapq.nsmallest(limit, ((-score, member) for member, score in scores.items() if score > 0))
    return [(-negated, member) for negated, member in ranked]


async def _read_lists(execute: Execute, boards: Sequence[Board], open_boards: list[int], depth: list[int],
                      by_floor: set[int], floor: int | None, limit: int) -> dict[int, list[list[tuple[str, int]]]]:
    """Each open board's sorted lists, best first: ``depth`` entries, or down to ``floor``."""
    def queue(pipe: Pipeline) -> None:
        for index in open_boards:
            for key in boards[index].sorted_lists:
                if index in by_floor:
                    pipe.zrevrangebyscore(key, "+inf", "-inf" if floor is None else floor, start=0, num=limit,
                                          withscores=True)
                else:
                    pipe.zrevrange(key, 0, depth[index] - 1, withscores=True)

    replies = iter(await execute(queue))
    return {index: [[(_text(m), int(s)) for m, s in next(replies)] for _ in boards[index].sorted_lists]
            for index in open_boards}


async def _score(execute: Execute, boards: Sequence[Board], reads: dict[int, list[list[tuple[str, int]]]],
                 scores: dict[str, int]) -> None:
    """Record the exact score of every member just read (asking corrected boards for it)."""
    asks: list[tuple[Board, list[str]]] = []
    for index, lists in reads.items():
        board = boards[index]
        if not board.add and not board.sub:
            scores.update(lists[0])
            continue
        new = sorted({member for entries in lists for member, _ in entries} - scores.keys())
        if new:
            asks.append((board, new))
    if not asks:
        return

    def queue(pipe: Pipeline) -> None:
        for board, members in asks:
            for key in (board.key, *board.add, *board.sub):
                pipe.zmscore(key, members)

    replies = iter(await execute(queue))
    for board, members in asks:
        plus = [next(replies) for _ in range(1 + len(board.add))]
        minus = [next(replies) for _ in board.sub]
        scores.update(zip(members, corrected_scores(plus, minus, len(members)), strict=True))


def corrected_scores(plus: Sequence[Sequence[Any]], minus: Sequence[Sequence[Any]], count: int) -> list[int]:
    """Per member: the sum of its scores in ``plus`` minus those in ``minus`` (ZMSCORE replies)."""
    return [sum(int(values[i] or 0) for values in plus) - sum(int(values[i] or 0) for values in minus)
            for i in range(count)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
