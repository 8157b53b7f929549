"""The CDN file-request event and its parsing (pure: no Kafka, no Redis).

One event is one JSON object whose field names follow the Hub's request-level log
export. :func:`parse_event` turns raw message bytes into a :class:`FileRequest` or raises
:class:`~stream.errors.EventError` with the short reason code the dead-letter topic uses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Final, Literal
from urllib.parse import unquote

import msgspec

from stream.errors import EventError
from stream.names import RULE as NAME_RULE
from stream.names import valid_repo

RepoType = Literal["model", "dataset", "space"]
REPO_TYPES: Final[frozenset[str]] = frozenset(("model", "dataset", "space"))
_URL_PREFIXES: Final[dict[str, RepoType]] = {"datasets": "dataset", "spaces": "space"}

# Reason codes, as they appear in the DLQ and in metrics.
OVERSIZED = "oversized"
NOT_UTF8 = "not_utf8"
BAD_JSON = "bad_json"
NOT_OBJECT = "not_object"
MISSING_FIELD = "missing_field"
BAD_FIELD = "bad_field"
BAD_TIMESTAMP = "bad_timestamp"
UNKNOWN_REPO_TYPE = "unknown_repo_type"
BAD_URL = "bad_url"
TOO_LATE = "too_late"
TOO_EARLY = "too_early"
REJECT_REASONS: Final[tuple[str, ...]] = (
    OVERSIZED, NOT_UTF8, BAD_JSON, NOT_OBJECT, MISSING_FIELD, BAD_FIELD, BAD_TIMESTAMP,
    UNKNOWN_REPO_TYPE, BAD_URL, TOO_LATE, TOO_EARLY,
)

# Timestamps outside these bounds are certainly mistakes (epoch seconds, micros, year 1).
_MIN_EPOCH_MS: Final = 946_684_800_000  # 2000-01-01
_MAX_EPOCH_MS: Final = 4_102_444_800_000  # 2100-01-01
#: Deeper JSON is dead-lettered: the decoder recurses once per level (Python's limit is 1000).
MAX_DEPTH: Final = 512


class _Wire(msgspec.Struct, gc=False):
    """The JSON shape on the wire; msgspec checks types while decoding.

    Untracked by the garbage collector (``gc=False``): decoded JSON cannot form cycles.
    """

    timestamp: int | str
    method: str
    status: int | str
    repoType: str | None = None
    repoName: str | None = None
    path: str | None = None
    revision: object = None
    url: str | None = None
    # Optional fields of the wrong type are ignored rather than rejected: they do not
    # change whether a request happened, only who made it.
    hashedUserId: object = None
    hashedIp: object = None
    userAgent: object = None
    country: object = None


_decoder = msgspec.json.Decoder(_Wire)


class FileRequest(msgspec.Struct, frozen=True, gc=False):
    """One validated file request (a msgspec Struct: built per event, it must be cheap).

    ``ts_ms`` is UTC epoch milliseconds; ``method`` is upper case; ``user`` identifies who
    made the request for dataset dedupe: ``u:<hashedUserId>``, else ``i:<hashedIp>``, else
    None (an anonymous request, which counts alone). ``user_agent`` and ``country`` (ISO
    3166-1 alpha-2, unchecked) are None when the event has none, or not as a string.
    """

    ts_ms: int
    method: str
    status: int
    repo_type: RepoType
    repo: str
    path: str
    revision: str | None
    user: str | None
    user_agent: str | None = None
    country: str | None = None


def parse_event(raw: bytes, max_bytes: int = 64 * 1024) -> FileRequest:
    """Decode and validate one message value; raise EventError with a reason code.

    Checks run in this order, and the first that fails gives the reason (the batch
    reference, ``stream.reference``, applies the same order independently):

    1. ``oversized``: more than ``max_bytes`` bytes;
    2. ``not_utf8``: any byte sequence that is not strict UTF-8, in any field, known or not;
    3. ``bad_json``: not one JSON document, a string escape that is no Unicode character (a
       lone surrogate), or arrays and objects nested more than :data:`MAX_DEPTH` deep;
    4. ``not_object``: a JSON value that is not an object;
    5. ``bad_field``: a known field of the wrong JSON type (in any of its occurrences; an
       integer literal over 4300 characters or a number beyond a float's range counts as
       one), then ``missing_field`` for a missing ``timestamp``, ``method`` or ``status``;
    6. ``bad_field``: a ``status`` string that is not 1 to 3 ASCII digits;
    7. the repo: the url form (``bad_url``) when ``repoName`` is absent or null and
       ``url`` is present, else the field form (``missing_field``, ``unknown_repo_type``,
       ``bad_field`` for an empty ``path``); then ``bad_field`` for a repo name the Hub
       would not allow (:mod:`stream.names`);
    8. ``bad_timestamp``: a string that is not ISO 8601 with a zone, or a time (either
       form) outside 2000-01-01..2100-01-01.
    """
    if len(raw) > max_bytes:
        raise EventError(OVERSIZED, f"{len(raw)} bytes is over the {max_bytes}-byte limit")
    if not raw.isascii():
        # msgspec checks only the strings it decodes, not those of fields it skips; a
        # whole-buffer check costs nothing for the usual all-ASCII message.
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventError(NOT_UTF8, f"not valid UTF-8: {exc}") from None
    if len(raw) > 2 * MAX_DEPTH and _too_deep(raw):
        raise EventError(BAD_JSON, f"arrays and objects nested more than {MAX_DEPTH} deep")
    try:
        wire = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise _validation_error(raw, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise EventError(BAD_JSON, str(exc)) from None

    status = wire.status
    if status.__class__ is str:
        # At most 3 digits: an HTTP status, and never a number too long for int().
        if not (len(status) <= 3 and status.isascii() and status.isdigit()):  # type: ignore[union-attr]
            raise EventError(BAD_FIELD, f"status {_shown(status)} is not an HTTP status code")
        status = int(status)
    repo_type, repo, path = wire.repoType, wire.repoName, wire.path
    if repo is None and wire.url is not None:
        repo_type, repo, revision, path = parse_url(wire.url)
    else:
        if repo_type is None or repo is None or path is None:
            raise _missing_repo_fields(wire)
        if repo_type not in REPO_TYPES:
            raise EventError(UNKNOWN_REPO_TYPE, f"repoType {_shown(repo_type)} is not model, dataset or space")
        if not path:
            raise EventError(BAD_FIELD, "path is empty")
        revision = wire.revision if wire.revision.__class__ is str else None
    if repo not in _valid_repos:
        _check_repo_name(repo)
    user_id, ip = wire.hashedUserId, wire.hashedIp
    if user_id.__class__ is str and user_id:
        user: str | None = f"u:{user_id}"
    elif ip.__class__ is str and ip:
        user = f"i:{ip}"
    else:
        user = None
    agent, country = wire.userAgent, wire.country
    return FileRequest(parse_timestamp(wire.timestamp), wire.method.upper(), status,  # type: ignore[arg-type]
                       repo_type, repo, path, revision, user,  # type: ignore[arg-type]
                       agent if agent.__class__ is str else None, country if country.__class__ is str else None)


def _missing_repo_fields(wire: _Wire) -> EventError:
    missing = [name for name in ("repoType", "repoName", "path") if getattr(wire, name) is None]
    return EventError(MISSING_FIELD, f"missing {', '.join(missing)} (and no url)")


# Repo names already checked: most requests go to few repos, so checking each name once
# keeps validation off the per-event cost. Bounded so hostile input cannot grow it forever.
_valid_repos: set[str] = set()
_VALID_REPOS_MAX = 1_000_000


def _check_repo_name(repo: str) -> None:
    if not valid_repo(repo):
        raise EventError(BAD_FIELD, f"repo name {_shown(repo)} is not 'org/name' or 'name' with {NAME_RULE}")
    if len(_valid_repos) >= _VALID_REPOS_MAX:
        _valid_repos.clear()
    _valid_repos.add(repo)


# Outside strings, only these bytes change the nesting depth.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _STEP)


def _too_deep(raw: bytes) -> bool:
    """Whether arrays and objects nest more than MAX_DEPTH deep (msgspec would recurse).

    Only messages with that many brackets are scanned: a real event has one or two.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > MAX_DEPTH


def _validation_error(raw: bytes, message: str) -> EventError:
    # The typed decoder stops at the first mistyped field; a syntax error after it must
    # still win, so check the whole document's syntax (a skip: no values are built).
    try:
        msgspec.json.decode(raw, type=msgspec.Raw)
    except msgspec.DecodeError as exc:
        return EventError(BAD_JSON, str(exc))
    if message.startswith("Object missing required field"):
        return EventError(MISSING_FIELD, message)
    if message.startswith("Expected `object`"):
        return EventError(NOT_OBJECT, message)
    return EventError(BAD_FIELD, message)


def _shown(value: str) -> str:
    """A value quoted for a dead letter's detail, cut short so the detail stays short."""
    return repr(value if len(value) <= 120 else value[:117] + "...")


def parse_timestamp(value: int | str) -> int:
    """UTC epoch milliseconds from epoch-ms or ISO 8601 with a zone; EventError otherwise.

    Either form must fall between 2000-01-01 and 2100-01-01 (epoch milliseconds outside
    are certainly unit mistakes, and every later step may assume a representable date).
    """
    if value.__class__ is int:
        ms: int = value  # type: ignore[assignment]
    else:
        try:
            moment = datetime.fromisoformat(value)  # type: ignore[arg-type]
        except ValueError:
            raise EventError(BAD_TIMESTAMP, f"timestamp {_shown(value)} is not ISO 8601") from None  # type: ignore[arg-type]
        if moment.tzinfo is None:
            raise EventError(BAD_TIMESTAMP, f"timestamp {_shown(value)} has no time zone")  # type: ignore[arg-type]
        ms = (moment - _EPOCH) // _ONE_MS  # exact integer arithmetic: no float rounding at edges
    if not _MIN_EPOCH_MS <= ms <= _MAX_EPOCH_MS:
        raise EventError(BAD_TIMESTAMP, f"timestamp {value!r:.60} is outside 2000-2100")
    return ms


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)


def parse_url(url: str) -> tuple[RepoType, str, str | None, str]:
    """Split ``[/datasets|/spaces]/{repo}/resolve/{revision}/{path}`` into its parts.

    ``{repo}`` is ``org/name`` when the third segment is ``resolve`` and a revision and a
    path follow it, else a legacy bare ``name`` (so ``/org/resolve/resolve/main/x`` is the
    repo ``org/resolve``). Every segment must be non-empty. Segments are percent-decoded
    after splitting, so ``refs%2Fpr%2F1`` stays one segment (the revision ``refs/pr/1``);
    a repo segment that decodes to a ``/`` is no name. A ``scheme://host`` before the
    path, and any query string or fragment after it, are ignored.
    """
    if not url.startswith("/"):
        # CDN logs carry the path alone; a full URL is the rare case.
        origin = _ORIGIN.match(url)
        if origin is None:
            raise EventError(BAD_URL, f"url {_shown(url)} is neither a path nor scheme://host/path")
        url = url[origin.end():]
    path_part = url.partition("?")[0].partition("#")[0]
    segments = path_part.split("/")[1:]
    repo_type: RepoType = _URL_PREFIXES.get(segments[0], "model") if segments else "model"
    if repo_type != "model":
        segments = segments[1:]
    if len(segments) >= 5 and segments[2] == "resolve":
        repo_parts, rest = segments[:2], segments[3:]
    elif len(segments) >= 4 and segments[1] == "resolve":
        repo_parts, rest = segments[:1], segments[2:]
    else:
        raise EventError(BAD_URL, f"url {_shown(url)} is not /{{repo}}/resolve/{{revision}}/{{path}}")
    if not (all(repo_parts) and all(rest)):
        raise EventError(BAD_URL, f"url {_shown(url)} has an empty segment")
    if "%" not in path_part:
        return repo_type, "/".join(repo_parts), rest[0], "/".join(rest[1:])
    try:
        names = [unquote(part, errors="strict") for part in repo_parts]
        revision = unquote(rest[0], errors="strict")
        path = "/".join(unquote(part, errors="strict") for part in rest[1:])
    except UnicodeDecodeError:
        raise EventError(BAD_URL, f"url {_shown(url)} percent-encodes bytes that are not UTF-8") from None
    if any("/" in name for name in names):
        raise EventError(BAD_FIELD, f"repo name {_shown('/'.join(names))} in url {_shown(url)} is not a name")
    return repo_type, "/".join(names), revision, path


_ORIGIN: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")
