"""The batch reference: the counting semantics computed plainly over a whole log.

This is the yardstick the streaming worker is checked against, so it shares no code with
it: its own message reading (:mod:`stream.reference.messages`), its own rule evaluator
(:mod:`stream.reference.rules`), one pass in plain Python. The semantics:

* a message the worker dead-letters (see :mod:`stream.reference.messages` for the
  reasons and their order) never counts; ``stats`` counts each reason as ``dead:<reason>``;
* the event time, to the millisecond, must lie in ``[now - lateness, now + 1 h]``, else
  ``dead:too_late`` / ``dead:too_early``;
* only ``GET``/``HEAD`` (any case) answered 200-399 are candidates;
* a model candidate counts when the rules say so for the repo's library (from the
  metadata records, applied in order: no entry or a tombstone means no library);
* a dataset candidate counts at most once per user (``hashedUserId``, else ``hashedIp``;
  without either it always counts) per dataset per UTC-epoch-aligned 300 s bucket of its
  own timestamp, so arrival order does not matter; spaces never count;
* the day is the UTC date of the event timestamp.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson

from stream.reference.analytics import Analytics
from stream.reference.messages import EPOCH, MS, Rejected, read_message
from stream.reference.rules import RuleBook

BUCKET_MS = 300_000
DAY_MS = 86_400_000
AHEAD = timedelta(hours=1)
DEFAULT_MAX_BYTES = 64 * 1024


class Rules(Protocol):
    """What the count needs of the rules: whether a model request counts."""

    def counts(self, library: str | None, path: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Result:
    """Counts per ``type:repo`` (all time and per UTC day) and why lines did not count."""

    counts: dict[str, dict[str, Any]]
    stats: Counter[str] = field(default_factory=Counter)

    @property
    def dead_lettered(self) -> int:
        """How many lines the worker must dead-letter (the ``dead:<reason>`` outcomes)."""
        return sum(n for outcome, n in self.stats.items() if outcome.startswith("dead:"))


def _library_of(value: object) -> str | None:
    """The library a metadata value names: a dict's library_name, a bare name, or None."""
    if isinstance(value, bytes | str) and (not value or value[:1] in (b"{", "{")):
        try:
            value = orjson.loads(value) if value else None
        except orjson.JSONDecodeError:
            return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        library = value.get("library_name")
        return library if isinstance(library, str) and library else None
    return None


def library_table(metadata: Mapping[str, Any] | Iterable[Any] | None) -> dict[str, str | None]:
    """``type:repo -> library`` after applying metadata records in order.

    Accepts a mapping (key -> value dict, JSON text, bare library name, or None for a
    tombstone) or an iterable of records: NDJSON lines, ``{"key", "value"}`` dicts or
    ``(key, value)`` pairs. Unusable records are skipped.
    """
    table: dict[str, str | None] = {}
    items: Iterable[Any] = (() if metadata is None else metadata.items()
                            if isinstance(metadata, Mapping) else metadata)
    for record in items:
        if isinstance(record, bytes | str):
            try:  # a blank or broken line is no record
                record = orjson.loads(record)
            except orjson.JSONDecodeError:
                continue
        if isinstance(record, dict):
            key, value = record.get("key"), record.get("value")
        elif isinstance(record, tuple | list) and len(record) == 2:
            key, value = record
        else:
            continue
        if isinstance(key, bytes):
            key = key.decode("utf-8", "replace")
        if isinstance(key, str):
            table[key] = _library_of(value)
    return table


def run(lines: Iterable[bytes | str], metadata: Mapping[str, Any] | Iterable[Any] | None = None,
        now: datetime | None = None, lateness: timedelta = timedelta(days=7),
        rules: Rules | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
        analytics: Analytics | None = None) -> Result:
    """Count ``lines`` (see the module docstring); ``now`` defaults to the wall clock.

    ``rules`` defaults to the reference's own :class:`RuleBook` of the shipped rules.
    ``analytics``, when given, collects what the counted downloads say
    (:mod:`stream.reference.analytics`).
    """
    rules = RuleBook() if rules is None else rules
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now_ms = (now - EPOCH) // MS
    earliest, latest = now_ms - lateness // MS, now_ms + AHEAD // MS
    libraries = library_table(metadata)
    daily: dict[str, Counter[str]] = {}
    seen: set[tuple[str, tuple[str, str], int]] = set()
    decided: dict[tuple[str | None, str], bool] = {}
    stats: Counter[str] = Counter()
    for line in lines:
        raw = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
        raw = raw[:-1] if raw.endswith(b"\n") else raw  # the line's end is no part of the message
        if not raw.strip():
            continue  # blank lines are not records
        stats["lines"] += 1
        request = read_message(raw, max_bytes)
        if isinstance(request, Rejected):
            stats[f"dead:{request.reason}"] += 1
            continue
        if not earliest <= request.ts_ms <= latest:
            stats["dead:too_late" if request.ts_ms < earliest else "dead:too_early"] += 1
            continue
        if request.method not in ("GET", "HEAD") or not 200 <= request.status <= 399:
            stats["not_candidate"] += 1
            continue
        key = f"{request.repo_type}:{request.repo}"
        if request.repo_type == "space":
            stats["space"] += 1
            continue
        day = (EPOCH + (request.ts_ms // DAY_MS) * timedelta(days=1)).date().isoformat()
        if request.repo_type == "model":
            asked = (libraries.get(key), request.path)
            verdict = decided.get(asked)
            if verdict is None:  # the evaluator walks the rule every time: ask it once per pair
                verdict = decided[asked] = rules.counts(*asked)
            if not verdict:
                stats["rule_says_no"] += 1
                if analytics is not None:
                    analytics.missed(key, day, request.path, asked[0])
                continue
        elif request.user is not None:
            slot = (key, request.user, request.ts_ms // BUCKET_MS)
            if slot in seen:
                stats["dataset_repeat"] += 1
                continue
            seen.add(slot)
        stats["counted"] += 1
        daily.setdefault(key, Counter())[day] += 1
        if analytics is not None:
            analytics.counted(key, day, request)
    counts = {
        key: {"downloadsAllTime": sum(days.values()), "daily": dict(sorted(days.items()))}
        for key, days in sorted(daily.items())
    }
    return Result(counts, stats)


def compute(lines: Iterable[bytes | str],
            metadata: Mapping[str, Any] | Iterable[Any] | None = None,
            now: datetime | None = None, lateness: timedelta = timedelta(days=7),
            rules: Rules | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, dict[str, Any]]:
    """``{"type:repo": {"downloadsAllTime": n, "daily": {"YYYY-MM-DD": n}}}``, sorted."""
    return run(lines, metadata, now, lateness, rules, max_bytes).counts


def read_lines(path: str | Path) -> Iterable[bytes]:
    """The lines of an NDJSON file, gunzipped when it is gzip (by its magic bytes)."""
    with open(path, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gz else open(path, "rb") as handle:
        yield from handle
