"""What a recount changes, per repo and day: the two tallies of a :class:`Judge` subtracted.

Pure. A :class:`Change` holds the downloads the old and the new rules counted, and the
differences of every breakdown field and every uncounted path, in the store's own field
names (``stream.fields``), so applying it is adding it; undoing it, subtracting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from stream.counting import Tally
from stream.fields import uncounted_fields


@dataclass(slots=True)
class Change:
    """One repo-day of a recount. ``breakdown`` and ``uncounted`` map store fields to
    differences (new minus old, none zero); ``downloaders`` are the new rules' ones."""

    repo: str
    day: str
    library: str | None
    old: int = 0
    new: int = 0
    breakdown: dict[str, int] = field(default_factory=dict)
    uncounted: dict[str, int] = field(default_factory=dict)
    downloaders: list[str] = field(default_factory=list)

    @property
    def delta(self) -> int:
        return self.new - self.old

    @property
    def changes_anything(self) -> bool:
        return bool(self.delta or self.breakdown or self.uncounted)


def _minus(new: dict[str, int], old: dict[str, int]) -> dict[str, int]:
    return {name: d for name in new.keys() | old.keys() if (d := new.get(name, 0) - old.get(name, 0))}


def changes(old: Tally, new: Tally, library_of: Callable[[str], str | None]) -> list[Change]:
    """Every repo-day whose counts, breakdowns or uncounted requests differ, sorted.

    ``library_of`` names each repo's library (the report groups by it)."""
    old_bd, new_bd, old_nc, new_nc = old.breakdown, new.breakdown, old.uncounted, new.uncounted
    slots = old.plain.keys() | new.plain.keys() | old_bd.keys() | new_bd.keys() | old_nc.keys() | new_nc.keys()
    out = []
    for repo, day in sorted(slots):
        change = Change(repo, day, library_of(repo), old.plain.get((repo, day), 0), new.plain.get((repo, day), 0),
                        _minus(new_bd.get((repo, day), {}), old_bd.get((repo, day), {})),
                        uncounted_fields(_minus(new_nc.get((repo, day), {}), old_nc.get((repo, day), {}))),
                        sorted(new.downloaders.get((repo, day), ())))
        if change.changes_anything:
            out.append(change)
    return out
