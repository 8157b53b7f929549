"""Pure counting: file requests and their verdicts to the increments of one batch.

No Kafka, no Redis. :class:`Tally` collects what a batch adds: plain increments per
(repo, UTC day), and the dataset requests that count only if their (dataset, user,
5-minute bucket) has not been seen before; that last check needs state that outlives
the batch, so the store makes it (see ``stream.store``). With analytics on, it also
collects what each download says (class, client, country, file, downloader) and the
model requests that did not count, per (repo, day) like the counts, so the store writes
them in the same atomic step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from stream.errors import EventError
from stream.events import TOO_EARLY, TOO_LATE, FileRequest
from stream.facets import Facets
from stream.fields import FILE

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


RepoDay = tuple[str, str]  # (repo key, UTC day)


@dataclass(slots=True)
class Tally:
    """What one batch adds.

    ``plain`` maps (repo key, day) to an increment. ``distinct`` holds one entry per
    (dataset key, day, bucket, user) seen in the batch: it counts 1 when the store has not
    seen that (dataset, user, bucket) before; its value is the breakdown fields of the
    slot's first request (None with analytics off).

    With analytics on, per (repo key, day): ``breakdown`` holds, in the store's field names
    (:mod:`stream.fields`), the downloads counted in ``plain`` by
    class, client, country and file (so each dimension sums to the count), and
    ``downloaders`` who made them (anonymous ones excluded); ``uncounted`` holds a model's
    candidate requests the rules did not count, by path (the store prefixes each with
    ``p:``: most candidates do not count, and keeping the string the rules already hashed
    is cheaper), and ``libraries`` the library that judged each such model.
    """

    plain: dict[RepoDay, int] = field(default_factory=dict)
    distinct: dict[tuple[str, str, int, str], tuple[str, str, str, str] | None] = field(default_factory=dict)
    breakdown: dict[RepoDay, dict[str, int]] = field(default_factory=dict)
    downloaders: dict[RepoDay, set[str]] = field(default_factory=dict)
    uncounted: dict[RepoDay, dict[str, int]] = field(default_factory=dict)
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
        # day_name inlined on its hit path: a call costs more than the lookup, on most events
        day = _day_names.get(ts_ms // DAY_MS) or day_name(ts_ms)
        if repo_type == "dataset":
            if event.user is not None:
                slot = (key, day, ts_ms // DEDUPE_BUCKET_MS, event.user)
                if slot not in tally.distinct:  # the slot's first request decides its fields
                    tally.distinct[slot] = (*facets.of(event.user_agent, event.country), FILE + event.path) \
                        if facets is not None else None
                return DATASET_CANDIDATE
        else:
            library = self.library_of(key)
            if not self.rules.counts(library, event.path):
                if facets is not None:
                    repo_day = (key, day)
                    paths = tally.uncounted.get(repo_day)
                    if paths is None:
                        paths = tally.uncounted[repo_day] = {}
                        tally.libraries[key] = library
                    path = event.path  # its hash is cached already (the rules looked it up)
                    paths[path] = paths.get(path, 0) + 1
                return NOT_COUNTED_RULE
        repo_day = (key, day)
        tally.plain[repo_day] = tally.plain.get(repo_day, 0) + 1
        if facets is not None:
            fields = tally.breakdown.get(repo_day)
            if fields is None:
                fields = tally.breakdown[repo_day] = {}
            for name in (*facets.of(event.user_agent, event.country), FILE + event.path):
                fields[name] = fields.get(name, 0) + 1
            if event.user is not None:
                users = tally.downloaders.get(repo_day)
                if users is None:
                    users = tally.downloaders[repo_day] = set()
                users.add(event.user)
        return COUNTED


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat()
