"""The batch reference: the counting semantics computed plainly over a whole log.

This is the yardstick the streaming worker is checked against, so it shares nothing with
it but the rule registry: its own event parsing, its own url parsing, one pass in plain
Python. The semantics:

* only ``GET``/``HEAD`` (any case) answered 200-399 are candidates;
* a model candidate counts when the registry says so for the repo's library (from the
  metadata records, applied in order: no entry or a tombstone means no library);
* a dataset candidate counts at most once per user (``hashedUserId``, else ``hashedIp``;
  without either it always counts) per dataset per UTC-epoch-aligned 300 s bucket of its
  own timestamp, so arrival order does not matter; spaces never count;
* the day is the UTC date of the event timestamp; an event counts only when
  ``now - lateness <= timestamp <= now + 1 h``;
* malformed records (bad JSON, not an object, required field missing or mistyped, unknown
  repo type, unparseable url, timestamp without a zone) never count.
"""

from __future__ import annotations

import gzip
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import click
import orjson

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BUCKET_US = 300 * 1_000_000
AHEAD = timedelta(hours=1)
REPO_TYPES = ("model", "dataset", "space")
URL_PREFIXES = {"datasets": "dataset", "spaces": "space"}
DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts '²'


@dataclass(frozen=True, slots=True)
class Request:
    """A well-formed file request, reduced to what counting needs."""

    repo_type: str
    repo: str
    path: str
    method: str
    status: int
    timestamp: datetime
    user: tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class Result:
    """Counts per ``type:repo`` (all time and per UTC day) and why lines did not count."""

    counts: dict[str, dict[str, Any]]
    stats: Counter[str] = field(default_factory=Counter)


def parse_timestamp(value: object) -> datetime | None:
    """Epoch milliseconds (int) or ISO 8601 with a zone, as an aware UTC datetime."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            return EPOCH + timedelta(milliseconds=value)
        except OverflowError:
            return None
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None  # a time without a zone could be any of 26 hours
    return parsed.astimezone(UTC)


def parse_url(url: object) -> tuple[str, str, str, str] | None:
    """``/[datasets|spaces/]{repo}/resolve/{revision}/{path}`` -> (type, repo, rev, path)."""
    if not isinstance(url, str):
        return None
    try:
        segments = urlsplit(url).path.split("/")
    except ValueError:
        return None
    if len(segments) < 2 or segments[0] != "":
        return None
    segments = segments[1:]
    repo_type = URL_PREFIXES.get(segments[0], "model")
    if repo_type != "model":
        segments = segments[1:]
    # split first, decode after: an encoded '/' (refs%2Fpr%2F1) stays inside its segment
    if len(segments) >= 5 and segments[2] == "resolve":
        repo_parts, rest = segments[:2], segments[3:]
    elif len(segments) >= 4 and segments[1] == "resolve":
        repo_parts, rest = segments[:1], segments[2:]  # legacy repo without an org
    else:
        return None
    decoded = [unquote(s) for s in repo_parts]
    revision = unquote(rest[0])
    path = "/".join(unquote(s) for s in rest[1:])
    if not all(decoded) or not revision or not path or path.endswith("/"):
        return None
    return repo_type, "/".join(decoded), revision, path


def _valid_repo(name: object) -> bool:
    return isinstance(name, str) and len(parts := name.split("/")) <= 2 and all(parts)


def _status(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and DIGITS.fullmatch(value) else None


def _user(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """Who asked: the user id when authenticated, else the IP (a non-string is no id)."""
    for field_name, kind in (("hashedUserId", "user"), ("hashedIp", "ip")):
        value = event.get(field_name)
        if isinstance(value, str) and value:
            return (kind, value)
    return None


def parse_line(line: bytes | str) -> Request | None:
    """One NDJSON line -> :class:`Request`, or None when the record is malformed."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    timestamp = parse_timestamp(event.get("timestamp"))
    method = event.get("method")
    status = _status(event.get("status"))
    if timestamp is None or not isinstance(method, str) or status is None:
        return None
    if "repoType" in event or "repoName" in event or "path" in event:
        repo_type, repo, path = event.get("repoType"), event.get("repoName"), event.get("path")
        if repo_type not in REPO_TYPES or not _valid_repo(repo):
            return None
        if not isinstance(path, str) or not path:
            return None
    else:
        parsed = parse_url(event.get("url"))
        if parsed is None:
            return None
        repo_type, repo, _revision, path = parsed
    return Request(repo_type, repo, path, method.upper(), status, timestamp, _user(event))


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
        registry: Any = None) -> Result:
    """Count ``lines`` (see the module docstring); ``now`` defaults to the wall clock."""
    if registry is None:
        from stream.rules import load_registry

        registry = load_registry()
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    earliest, latest = now - lateness, now + AHEAD
    libraries = library_table(metadata)
    daily: dict[str, Counter[str]] = {}
    seen: set[tuple[str, tuple[str, str], int]] = set()
    stats: Counter[str] = Counter()
    for line in lines:
        if not line.strip():
            continue  # blank lines are not records
        stats["lines"] += 1
        request = parse_line(line)
        if request is None:
            stats["malformed"] += 1
            continue
        if not earliest <= request.timestamp <= latest:
            stats["out_of_window"] += 1
            continue
        if request.method not in ("GET", "HEAD") or not 200 <= request.status <= 399:
            stats["not_candidate"] += 1
            continue
        key = f"{request.repo_type}:{request.repo}"
        if request.repo_type == "space":
            stats["space"] += 1
            continue
        if request.repo_type == "model":
            if not registry.counts(libraries.get(key), request.path):
                stats["rule_says_no"] += 1
                continue
        elif request.user is not None:
            micros = (request.timestamp - EPOCH) // timedelta(microseconds=1)
            slot = (key, request.user, micros // BUCKET_US)
            if slot in seen:
                stats["dataset_repeat"] += 1
                continue
            seen.add(slot)
        stats["counted"] += 1
        daily.setdefault(key, Counter())[request.timestamp.date().isoformat()] += 1
    counts = {
        key: {"downloadsAllTime": sum(days.values()), "daily": dict(sorted(days.items()))}
        for key, days in sorted(daily.items())
    }
    return Result(counts, stats)


def compute(lines: Iterable[bytes | str],
            metadata: Mapping[str, Any] | Iterable[Any] | None = None,
            now: datetime | None = None, lateness: timedelta = timedelta(days=7),
            registry: Any = None) -> dict[str, dict[str, Any]]:
    """``{"type:repo": {"downloadsAllTime": n, "daily": {"YYYY-MM-DD": n}}}``, sorted."""
    return run(lines, metadata, now, lateness, registry).counts


def read_lines(path: str | Path) -> Iterable[bytes]:
    """The lines of an NDJSON file, gunzipped when it is gzip (by its magic bytes)."""
    with open(path, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gz else open(path, "rb") as handle:
        yield from handle


@click.command()
@click.argument("log", type=click.Path(exists=True, dir_okay=False))
@click.option("--metadata", type=click.Path(exists=True, dir_okay=False),
              help="NDJSON of repo metadata records, applied in order before the log.")
@click.option("--now", "now_text", help="ISO 8601 time with zone [wall clock].")
@click.option("--lateness-days", type=float, default=7.0, show_default=True)
@click.option("--rules", type=click.Path(exists=True, dir_okay=False),
              help="Operator rules file on top of the shipped rules.")
@click.option("--indent", is_flag=True, help="Pretty-print the JSON.")
def reference(log: str, metadata: str | None, now_text: str | None, lateness_days: float,
              rules: str | None, indent: bool) -> None:
    """Compute the exact download counts of LOG (NDJSON, .gz ok) in one batch pass."""
    from stream.rules import load_registry

    now = None
    if now_text is not None:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError as exc:
            raise click.BadParameter(f"not an ISO 8601 time: {now_text!r}") from exc
        if now.tzinfo is None:
            raise click.BadParameter(f"{now_text!r} has no timezone")
    records = list(read_lines(metadata)) if metadata else None
    result = run(read_lines(log), records, now, timedelta(days=lateness_days),
                 load_registry(rules))
    option = orjson.OPT_SORT_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    sys.stdout.buffer.write(orjson.dumps(result.counts, option=option) + b"\n")
    click.echo(" ".join(f"{k}={v}" for k, v in sorted(result.stats.items())), err=True)
