"""Judging history twice: each event under the rules that counted it and under the new rules.

Pure: no Kafka, no Redis. The worker's own :class:`~stream.counting.Counter` judges every
event of the affected repos in the period, once with the version that counted it (the
*old* side) and once with the new rules, into two tallies: the difference is what a
recount changes, for the counts and for every breakdown. The lateness window is judged
relative to a clock the source gives per event (see :mod:`stream.recount.sources`), the
dead-letter rules and the request filters are the worker's because the code is.

Besides the tallies, per library: the downloads of each file before and after, and the
downloads counted more than once within one load (one downloader, one repo, one 5-minute
bucket: the window the dataset dedupe calls one request), with how many of those were
config files (``*.json``, ``*.yaml``): what a rule that counts config files and weights
of one load counts twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from stream.counting import COUNTED, DAY_MS, DEDUPE_BUCKET_MS, MAX_AHEAD, Counter, Rules, Tally
from stream.errors import EventError
from stream.events import parse_event
from stream.facets import Facets

AFTER_FENCE: Final = "\0after"  # placement: counted after the fence, by the live worker (kept)
_AHEAD_MS: Final = MAX_AHEAD // timedelta(milliseconds=1)
_CONFIG_SUFFIXES: Final = (".json", ".yaml", ".yml")
_UNSEEN: Final = object()  # a repo whose library was not looked up yet

# Outcomes of one read event, for the report's accounting of what was read.
DEAD, OTHER_TYPE, OUTSIDE, UNAFFECTED, AFTER, UNKNOWN, JUDGED = (
    "dead_letter", "not_a_model", "outside_period", "not_affected", "after_fence", "unknown_version",
    "judged")


@dataclass(frozen=True, slots=True)
class Period:
    """UTC days ``first`` to ``last``, both included."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"the period ends ({self.last}) before it starts ({self.first})")

    @property
    def start_ms(self) -> int:
        return _ms(self.first)

    @property
    def end_ms(self) -> int:
        """Just past the period's last millisecond."""
        return _ms(self.last) + DAY_MS

    def days(self) -> list[str]:
        return [(self.first + timedelta(days=i)).isoformat() for i in range((self.last - self.first).days + 1)]


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


Placement = Callable[[str, str, int], str | None]
"""(repo key, source field, position) -> the version that counted it, AFTER_FENCE, or None (unknown)."""
_NO_TIME: Final = 1 << 62  # later than any event time: no event was judged yet


@dataclass(slots=True)
class LibraryFigures:
    """Per library: downloads per file before and after, and repeats within one load."""

    files: dict[str, list[int]] = field(default_factory=dict)  # path -> [before, after]
    # (repo, downloader, bucket) -> [before, after, config files before, config files after]
    loads: dict[tuple[str, str, int], list[int]] = field(default_factory=dict)

    def merge(self, other: LibraryFigures) -> None:
        """Add ``other``'s figures (of other events) to these."""
        for name, (before, after) in other.files.items():
            counts = self.files.setdefault(name, [0, 0])
            counts[0] += before
            counts[1] += after
        for slot, load in other.loads.items():
            mine = self.loads.setdefault(slot, [0, 0, 0, 0])
            for i, n in enumerate(load):
                mine[i] += n

    def repeats(self) -> dict[str, int]:
        """Downloads counted beyond the first of a load, and how many of those repeats were
        config files (a load's first counted download taken to be its weights, if any)."""
        out = {"before": 0, "after": 0, "configBefore": 0, "configAfter": 0}
        for before, after, config_before, config_after in self.loads.values():
            out["before"] += max(before - 1, 0)
            out["after"] += max(after - 1, 0)
            out["configBefore"] += min(config_before, max(before - 1, 0))
            out["configAfter"] += min(config_after, max(after - 1, 0))
        return out


@dataclass(slots=True)
class Verdicts:
    """What a :class:`Judge` found, without its rules: picklable, so that judges of other
    processes can hand it back, and mergeable, as every figure is a sum or a union."""

    old: Tally
    new: Tally
    libraries: dict[str | None, LibraryFigures]
    outcomes: dict[str, int]
    used: dict[str, int]
    watermark_ms: int
    first_judged_ms: int  # the earliest event time that passed the lateness window (_NO_TIME: none)


def _add_counts(into: dict[Any, int], other: dict[Any, int]) -> None:
    for name, n in other.items():
        into[name] = into.get(name, 0) + n


def _merge_tally(into: Tally, other: Tally) -> None:
    """Add ``other`` to ``into``. Only model repos are recounted, so ``distinct`` (the
    dataset dedupe's slots, which are not sums) is always empty."""
    if into.distinct or other.distinct:
        raise ValueError("a recount's tallies hold no dataset slots")
    _add_counts(into.plain, other.plain)
    for mine, theirs in ((into.breakdown, other.breakdown), (into.uncounted, other.uncounted)):
        for repo_day, fields in theirs.items():
            _add_counts(mine.setdefault(repo_day, {}), fields)
    for repo_day, users in other.downloaders.items():
        into.downloaders.setdefault(repo_day, set()).update(users)
    into.libraries |= other.libraries


class Judge:
    """Judges events under their old version and the new rules (see the module docstring).

    ``affected(library)`` says whose model repos are recounted; ``placement`` says which
    version counted an event, or that it lies past the fence.
    """

    def __init__(self, new: Rules, old: dict[str, Rules], library_of: Callable[[str], str | None],
                 affected: Callable[[str | None], bool], period: Period, lateness: timedelta,
                 facets: Facets | None, max_bytes: int):
        self.library_of = library_of
        self.affected = affected
        self.period = period
        self.start_ms, self.end_ms = period.start_ms, period.end_ms  # read per event: computed once
        self.lateness_ms = lateness // timedelta(milliseconds=1)
        self.max_bytes = max_bytes
        self.new_counter = Counter(new, library_of, lateness, facets)
        self.old_counters = {version: Counter(rules, library_of, lateness, facets) for version, rules in old.items()}
        self.old = Tally()
        self.new = Tally()
        self.libraries: dict[str | None, LibraryFigures] = {}
        self.outcomes: dict[str, int] = {}
        self.used: dict[str, int] = {}  # old version -> events it had judged
        self.watermark_ms = 0
        self.first_judged_ms = _NO_TIME
        self._affected: dict[str, str | bool | None] = {}  # repo key -> its library, or False: not affected

    def verdicts(self) -> Verdicts:
        """Everything judged so far (see :class:`Verdicts`)."""
        return Verdicts(self.old, self.new, self.libraries, self.outcomes, self.used, self.watermark_ms,
                        self.first_judged_ms)

    def merge(self, found: Verdicts) -> None:
        """Add what another judge of the same rules found over other events."""
        _merge_tally(self.old, found.old)
        _merge_tally(self.new, found.new)
        for library, figures in found.libraries.items():
            self.libraries.setdefault(library, LibraryFigures()).merge(figures)
        _add_counts(self.outcomes, found.outcomes)
        _add_counts(self.used, found.used)
        self.watermark_ms = max(self.watermark_ms, found.watermark_ms)
        self.first_judged_ms = min(self.first_judged_ms, found.first_judged_ms)

    def _note(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def add(self, raw: bytes, clock_ms: int | None, placement: Placement, source: str, position: int) -> None:
        """Judge one event read at ``position`` of ``source``.

        ``clock_ms`` is the time the worker is taken to have counted it at (the lateness
        window's reference); None takes the watermark: the latest event time read so far,
        this event's included (for archives, which record no arrival time).
        """
        outcomes = self.outcomes
        try:
            event = parse_event(raw, self.max_bytes)
        except EventError:
            outcomes[DEAD] = outcomes.get(DEAD, 0) + 1
            return
        ts_ms = event.ts_ms
        if clock_ms is None:
            if ts_ms > self.watermark_ms:
                self.watermark_ms = ts_ms
            clock_ms = self.watermark_ms
        if event.repo_type != "model":
            outcomes[OTHER_TYPE] = outcomes.get(OTHER_TYPE, 0) + 1
            return
        if not self.start_ms <= ts_ms < self.end_ms:
            outcomes[OUTSIDE] = outcomes.get(OUTSIDE, 0) + 1
            return
        key = "model:" + event.repo
        library = self._affected.get(key, _UNSEEN)
        if library is _UNSEEN:
            library = self.library_of(key)
            if not self.affected(library):
                library = False
            self._affected[key] = library
        if library is False:
            outcomes[UNAFFECTED] = outcomes.get(UNAFFECTED, 0) + 1
            return
        version = placement(key, source, position)
        if version is None or version == AFTER_FENCE:
            self._note(UNKNOWN if version is None else AFTER)
            return
        window = (clock_ms - self.lateness_ms, clock_ms + _AHEAD_MS)
        try:
            before = self.old_counters[version].add(event, self.old, window) == COUNTED
        except EventError:
            self._note(DEAD)  # outside the lateness window: dead-lettered, under any rules
            return
        if ts_ms < self.first_judged_ms:
            self.first_judged_ms = ts_ms
        after = self.new_counter.add(event, self.new, window) == COUNTED
        self._note(JUDGED)
        self.used[version] = self.used.get(version, 0) + 1
        if before or after:
            self._figures(library, key, event.path, event.user, ts_ms, before, after)  # type: ignore[arg-type]

    def _figures(self, library: str | None, key: str, path: str, user: str | None, ts_ms: int,
                 before: bool, after: bool) -> None:
        figures = self.libraries.get(library)
        if figures is None:
            figures = self.libraries[library] = LibraryFigures()
        counts = figures.files.get(path)
        if counts is None:
            counts = figures.files[path] = [0, 0]
        counts[0] += before
        counts[1] += after
        if user is not None:
            slot = (key, user, ts_ms // DEDUPE_BUCKET_MS)
            load = figures.loads.get(slot)
            if load is None:
                load = figures.loads[slot] = [0, 0, 0, 0]
            config = path.endswith(_CONFIG_SUFFIXES)
            load[0] += before
            load[1] += after
            load[2] += before and config
            load[3] += after and config
