"""The rolling 30-day window: the days it covers, and how a shard's leaderboard differs from it.

Each shard's ``w30`` zset holds the sum of its day zsets over the days its ``meta`` hash
names. The worker moves it once a day (``roll.lua``); readers never write, so a reader
that finds a board not yet moved to the window it wants (no worker since midnight, or
clocks a little apart) corrects it: plus the days the wanted window has and the board
lacks, minus the days the board has and the window leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from stream.store import keys


def window_bounds(today: date) -> tuple[date, date]:
    """The last 30 UTC days including ``today``."""
    return today - timedelta(days=keys.WINDOW_DAYS - 1), today


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass(frozen=True, slots=True)
class Correction:
    """How to turn a shard's ``w30`` board into the window wanted: ``+ add - sub`` (day names)."""

    add: tuple[str, ...] = ()
    sub: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        """The board already is the window wanted."""
        return not self.add and not self.sub


@lru_cache(maxsize=1024)  # readers ask it per board and request; its answers change once a day
def moves(current: tuple[str | None, str | None], start: date, end: date) -> Correction:
    """The days entering (``add``) and leaving (``sub``) when a board covering ``current``
    (its meta's start and end day; None, None for a board never rolled, which is empty)
    moves to [start, end]."""
    cur_start, cur_end = current
    if cur_start is None or cur_end is None:
        return Correction(add=tuple(d.isoformat() for d in days_between(start, end)))
    old_start, old_end = date.fromisoformat(cur_start), date.fromisoformat(cur_end)
    return Correction(
        add=tuple(d.isoformat() for d in days_between(start, end) if not old_start <= d <= old_end),
        sub=tuple(d.isoformat() for d in days_between(old_start, old_end) if not start <= d <= end),
    )
