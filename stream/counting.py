"""Pure counting: file requests and their verdicts to the increments of one batch.

No Kafka, no Redis. :class:`Tally` collects what a batch adds: plain increments per
(repo, UTC day), and the dataset requests that count only if their (dataset, user,
5-minute bucket) has not been seen before; that last check needs state that outlives
the batch, so the store makes it (see ``stream.store``). With analytics on, it also
collects what each download says (class, client, country, file, downloader) and the
model requests that did not count, all keyed the same way so the store writes them in
the same atomic step as the counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from stream.errors import EventError
from stream.events import TOO_EARLY, TOO_LATE, FileRequest
from stream.facets import Facets

DAY_MS: Final = 86_400_000
DEDUPE_BUCKET_MS: Final = 300_000
MAX_AHEAD: Final = timedelta(hours=1)
CANDIDATE_METHODS: Final = frozenset(("GET", "HEAD"))
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)

# Outcomes of one valid event, as metric labels.
COUNTED = "counted"
DATASET_CANDIDATE = "dataset_candidate"  # counts unless its dedupe bucket was seen
NOT_COUNTED_METHOD = "method"
NOT_COUNTED_STATUS = "status"
NOT_COUNTED_SPACE = "space"
NOT_COUNTED_RULE = "not_query_file"


class Rules(Protocol):
    """The part of the rule registry counting needs."""

    def counts(self, library: str | None, path: str, repo_type: str = "model") -> bool: ...


_day_names: dict[int, str] = {}


def day_name(ts_ms: int) -> str:
    """The UTC date (``YYYY-MM-DD``) of an epoch-millisecond timestamp."""
    index = ts_ms // DAY_MS
    name = _day_names.get(index)
    if name is None:
        name = datetime.fromtimestamp(index * 86_400, UTC).date().isoformat()
        _day_names[index] = name
    return name


Facet = tuple[str, str, str, str]  # traffic class, client, country, file of one download


@dataclass(slots=True)
class Tally:
    """What one batch adds.

    ``plain`` maps (repo key, day) to an increment. ``distinct`` holds one entry per
    (dataset key, day, bucket, user) seen in the batch: it counts 1 when the store has not
    seen that (dataset, user, bucket) before; its value is the facets of the slot's first
    request (None with analytics off).

    With analytics on: ``facets`` maps (repo key, day, class, client, country, file) to
    the downloads counted in ``plain``; ``downloaders`` holds (repo key, day, user) of
    them (anonymous ones excluded); ``uncounted`` maps (model key, day, path) to the
    requests of a model candidate the rules did not count, and ``libraries`` the library
    that judged each such model.
    """

    plain: dict[tuple[str, str], int] = field(default_factory=dict)
    distinct: dict[tuple[str, str, int, str], Facet | None] = field(default_factory=dict)
    facets: dict[tuple[str, str, str, str, str, str], int] = field(default_factory=dict)
    downloaders: set[tuple[str, str, str]] = field(default_factory=set)
    uncounted: dict[tuple[str, str, str], int] = field(default_factory=dict)
    libraries: dict[str, str | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.plain or self.distinct or self.uncounted)


@dataclass(slots=True)
class Counter:
    """Judges events against the rules and adds what counts to a :class:`Tally`.

    ``library_of`` maps a repo key (``model:org/name``) to its library, or None.
    ``facets``, when given, turns analytics on.
    """

    rules: Rules
    library_of: Callable[[str], str | None]
    lateness: timedelta = timedelta(days=7)
    facets: Facets | None = None

    def window(self, now: datetime) -> tuple[int, int]:
        """The accepted [oldest, newest] event times in epoch ms, relative to ``now``."""
        # Integer arithmetic: a float timestamp can land a millisecond off at the edges.
        now_ms = (now - _EPOCH) // _ONE_MS
        return now_ms - self.lateness // _ONE_MS, now_ms + MAX_AHEAD // _ONE_MS

    def add(self, event: FileRequest, tally: Tally, window: tuple[int, int]) -> str:
        """Judge one event, add it to ``tally`` if it may count, and return its outcome.

        Raises EventError (too_late / too_early) for an event outside the lateness window:
        such an event is not counted and belongs in the dead-letter topic.
        """
        ts_ms = event.ts_ms
        if ts_ms < window[0]:
            raise EventError(TOO_LATE, f"event time {_iso(ts_ms)} is before the lateness window")
        if ts_ms > window[1]:
            raise EventError(TOO_EARLY, f"event time {_iso(ts_ms)} is over 1 h ahead of the clock")
        if event.method not in CANDIDATE_METHODS:
            return NOT_COUNTED_METHOD
        if not 200 <= event.status <= 399:
            return NOT_COUNTED_STATUS
        repo_type = event.repo_type
        if repo_type == "space":
            return NOT_COUNTED_SPACE
        key = f"{repo_type}:{event.repo}"
        facets = self.facets
        if repo_type == "dataset":
            if event.user is not None:
                slot = (key, day_name(ts_ms), ts_ms // DEDUPE_BUCKET_MS, event.user)
                if slot not in tally.distinct:  # the slot's first request decides its facets
                    tally.distinct[slot] = (*facets.of(event.user_agent, event.country), event.path) \
                        if facets is not None else None
                return DATASET_CANDIDATE
        else:
            library = self.library_of(key)
            if not self.rules.counts(library, event.path):
                if facets is not None:
                    missed = (key, day_name(ts_ms), event.path)
                    tally.uncounted[missed] = tally.uncounted.get(missed, 0) + 1
                    tally.libraries[key] = library
                return NOT_COUNTED_RULE
        day = day_name(ts_ms)
        plain_key = (key, day)
        tally.plain[plain_key] = tally.plain.get(plain_key, 0) + 1
        if facets is not None:
            facet_key = (key, day, *facets.of(event.user_agent, event.country), event.path)
            tally.facets[facet_key] = tally.facets.get(facet_key, 0) + 1  # type: ignore[index]
            if event.user is not None:
                tally.downloaders.add((key, day, event.user))
        return COUNTED


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat()
