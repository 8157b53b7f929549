"""Checking request input before it comes anywhere near Redis.

Every repo id, org, date, range and choice a client sends passes through here first; a
key is only ever built from a value these functions returned, so no input can become a
key pattern or a command. Names follow the Hub's rule, the one the worker counts by
(:mod:`stream.names`): ASCII letters, digits, ``-``, ``_`` and ``.``, 1 to 96
characters, not starting or ending with ``-`` or ``.``, and no ``--`` or ``..`` anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

from stream.api.errors import BadRequest
from stream.names import RULE as NAME_RULE
from stream.names import valid_part

RepoType = Literal["model", "dataset"]
Sort = Literal["downloads", "downloadsAllTime"]

MAX_QUERY_BYTES: Final = 2048  # a longer query string is refused (414) before it is parsed
MAX_RANGE_DAYS: Final = 400
MAX_LIMIT: Final = 1000
DEFAULT_DAYS: Final = 30
SORTS: Final[tuple[Sort, ...]] = ("downloads", "downloadsAllTime")
EXPANDABLE: Final = ("downloads", "downloadsExcludingCI", "downloadsAllTime")
# Path segment of the Hub's API -> the counters' repo type.
REPO_TYPE_OF_SEGMENT: Final[dict[str, RepoType]] = {"models": "model", "datasets": "dataset"}

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class RepoRef:
    """A validated repo: its type and ``org/name`` (or a bare legacy ``name``)."""

    repo_type: RepoType
    repo: str

    @property
    def key(self) -> str:
        """The counters' repo key, ``model:org/name``."""
        return f"{self.repo_type}:{self.repo}"


@dataclass(frozen=True, slots=True)
class DayRange:
    """UTC days from ``start`` to ``end``, both included."""

    start: date
    end: date

    def days(self) -> list[str]:
        """Every day of the range as ``YYYY-MM-DD``, oldest first."""
        return [(self.start + timedelta(days=i)).isoformat() for i in range((self.end - self.start).days + 1)]


def check_name(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a valid org or repo name part; raise BadRequest otherwise."""
    if not valid_part(value):
        raise BadRequest(f"invalid {what} {_shown(value)}: use {NAME_RULE}")
    return value


def check_org(value: str) -> str:
    """An organisation (or user) name, checked like a repo name part."""
    return check_name(value, "organization")


def repo_ref(segment: str, org: str | None, name: str) -> RepoRef:
    """The repo named by an API path: ``/api/{models|datasets}/[{org}/]{name}``."""
    repo_type = repo_type_of(segment)
    check_name(name, "repo name")
    if org is None:
        return RepoRef(repo_type, name)
    return RepoRef(repo_type, f"{check_org(org)}/{name}")


def parse_repo_id(value: str, repo_type: RepoType) -> RepoRef:
    """``org/name`` or a legacy ``name`` as one string (the dashboard's search box)."""
    parts = value.split("/")
    if len(parts) > 2:
        raise BadRequest(f"invalid repo id {_shown(value)}: expected org/name or name")
    org, name = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    return repo_ref(f"{repo_type}s", org, name)


def repo_type_of(segment: str) -> RepoType:
    """``models`` -> ``model``, ``datasets`` -> ``dataset``."""
    try:
        return REPO_TYPE_OF_SEGMENT[segment]
    except KeyError:
        raise BadRequest(f"unknown repo type {_shown(segment)}: expected models or datasets") from None


def parse_day(value: str, what: str) -> date:
    """A ``YYYY-MM-DD`` calendar date (nothing looser: no times, no week dates)."""
    if not _DATE.fullmatch(value):
        raise BadRequest(f"invalid {what} {_shown(value)}: expected a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"invalid {what} {_shown(value)}: no such date") from None


def day_range(start: str | None, end: str | None, today: date,
              default_days: int = DEFAULT_DAYS) -> DayRange:
    """The range a request asks for, both ends inclusive.

    Without ``end`` the range ends today (UTC); without ``start`` it spans
    ``default_days`` ending at ``end``. At most ``MAX_RANGE_DAYS`` days.
    """
    last = parse_day(end, "end") if end else today
    first = parse_day(start, "start") if start else last - timedelta(days=default_days - 1)
    if last < first:
        raise BadRequest(f"end {last.isoformat()} is before start {first.isoformat()}")
    span = (last - first).days + 1
    if span > MAX_RANGE_DAYS:
        raise BadRequest(f"the range {first.isoformat()}..{last.isoformat()} spans {span} days; "
                         f"at most {MAX_RANGE_DAYS} are allowed")
    return DayRange(first, last)


def optional_day_range(start: str | None, end: str | None, today: date) -> DayRange | None:
    """Like :func:`day_range`, but None when neither end is given (meaning: every day)."""
    if not start and not end:
        return None
    return day_range(start, end, today)


def parse_flag(value: str | None, what: str) -> bool:
    """An optional yes/no parameter: ``true``/``1`` or ``false``/``0`` (absent: no)."""
    if value is None or value in ("false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise BadRequest(f"invalid {what} {_shown(value)}: expected true or false")


def parse_sort(value: str | None) -> Sort:
    """``downloads`` (last 30 days, the default) or ``downloadsAllTime``."""
    if value is None or value == "downloads":
        return "downloads"
    if value == "downloadsAllTime":
        return "downloadsAllTime"
    raise BadRequest(f"unknown sort {_shown(value)}: expected one of {', '.join(SORTS)}")


def parse_expand(values: Iterable[str]) -> tuple[str, ...]:
    """The fields a repo lookup returns besides ``id``; none asked means all of them."""
    wanted = [v for v in values if v]
    unknown = [v for v in wanted if v not in EXPANDABLE]
    if unknown:
        raise BadRequest(f"unknown expand {_shown(unknown[0])}: expected one of {', '.join(EXPANDABLE)}")
    return tuple(f for f in EXPANDABLE if f in wanted) if wanted else EXPANDABLE


def _shown(value: str) -> str:
    """A value quoted for an error message, cut short so a huge input stays a short answer."""
    return repr(value if len(value) <= 120 else value[:117] + "...")
