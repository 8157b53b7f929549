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
from typing import Final

from stream.counting import COUNTED, DAY_MS, DEDUPE_BUCKET_MS, MAX_AHEAD, Counter, Rules, Tally
from stream.errors import EventError
from stream.events import parse_event
from stream.facets import Facets

AFTER_FENCE: Final = "\0after"  # placement: counted after the fence, by the live worker (kept)
_AHEAD_MS: Final = MAX_AHEAD // timedelta(milliseconds=1)
_CONFIG_SUFFIXES: Final = (".json", ".yaml", ".yml")

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


@dataclass(slots=True)
class LibraryFigures:
    """Per library: downloads per file before and after, and repeats within one load."""

    files: dict[str, list[int]] = field(default_factory=dict)  # path -> [before, after]
    # (repo, downloader, bucket) -> [before, after, config files before, config files after]
    loads: dict[tuple[str, str, int], list[int]] = field(default_factory=dict)

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

    def _note(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def add(self, raw: bytes, clock_ms: int | None, placement: Placement, source: str, position: int) -> None:
        """Judge one event read at ``position`` of ``source``.

        ``clock_ms`` is the time the worker is taken to have counted it at (the lateness
        window's reference); None takes the watermark: the latest event time read so far,
        this event's included (for archives, which record no arrival time).
        """
        try:
            event = parse_event(raw, self.max_bytes)
        except EventError:
            self._note(DEAD)
            return
        if clock_ms is None:
            if event.ts_ms > self.watermark_ms:
                self.watermark_ms = event.ts_ms
            clock_ms = self.watermark_ms
        if event.repo_type != "model":
            self._note(OTHER_TYPE)
            return
        if not self.start_ms <= event.ts_ms < self.end_ms:
            self._note(OUTSIDE)
            return
        key = "model:" + event.repo
        library = self.library_of(key)
        if not self.affected(library):
            self._note(UNAFFECTED)
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
        after = self.new_counter.add(event, self.new, window) == COUNTED
        self._note(JUDGED)
        self.used[version] = self.used.get(version, 0) + 1
        if before or after:
            self._figures(library, key, event.path, event.user, event.ts_ms, before, after)

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
